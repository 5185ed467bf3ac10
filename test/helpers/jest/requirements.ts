// Tests that need something a machine may lack (root, a tool, a kernel setting). Never a silent
// pass: with CI=true such a test fails and says what is missing; elsewhere it is skipped (jest
// counts it as skipped) and the reason is printed. The same rule as describeE2E (toa-net.ts).

import * as fs from 'fs';
import * as path from 'path';

/**
 * The first executable `name` on PATH or, after it, in the system directories root's PATH may
 * lack (/usr/sbin, /sbin, /usr/bin, /bin); null when there is none.
 */
export function findExe(name: string): string | null {
  const dirs = (process.env.PATH || '').split(':').filter(Boolean).concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return null;
}

/** What is missing to run a test here, or null when nothing is. */
export type Missing = string | null;

/** Like jest's `it`, when `missing` is null; otherwise a failure under CI=true, or a printed skip. */
export function itNeeds(missing: Missing, name: string, fn: jest.ProvidesCallback, timeout?: number): void {
  if (missing === null) {
    it(name, fn, timeout);
    return;
  }
  if (process.env.CI === 'true') {
    it(name, () => {
      throw new Error(`cannot run here (CI=true, so this fails instead of skipping): ${missing}`);
    });
    return;
  }
  // eslint-disable-next-line no-console
  console.warn(`SKIPPING "${name}": ${missing}\n(with CI=true this is a failure)`);
  it.skip(name, fn, timeout);
}

/** The first reason that is not null, or null. */
export function firstMissing(...reasons: Missing[]): Missing {
  return reasons.find((r) => r !== null) ?? null;
}

/**
 * Like jest's describe, for a block that needs a harness (`what`): when `missing` is not null, with
 * CI=true a test that fails with the reason is registered; otherwise a loud warning and
 * describe.skip. Never a silent skip. `cleanUp` runs after the block, for what it left open.
 */
export function describeNeeds(
  what: string,
  missing: Missing,
  name: string,
  fn: () => void,
  cleanUp: { start(): void; end(): Promise<void> },
): void {
  if (missing !== null) {
    if (process.env.CI === 'true') {
      describe(name, () => {
        test(`${what} is available`, () => {
          throw new Error(`${what} unavailable (CI=true, so this fails): ${missing}`);
        });
      });
    } else {
      const bar = '!'.repeat(72);
      // eslint-disable-next-line no-console
      console.warn(`\n${bar}\n!!! SKIPPING ${what} suite "${name}": ${missing}\n!!! (with CI=true this is a failure)\n${bar}\n`);
      describe.skip(name, fn);
    }
    return;
  }
  describe(name, () => {
    beforeAll(() => cleanUp.start());
    fn();
    afterAll(() => cleanUp.end());
  });
}

/**
 * describeNeeds' cleanUp for a harness: the members of `open` made during the block (numbered
 * after `lastSeq()` at its start) and still open at its end are closed, also when a test failed
 * before closing them.
 */
export function closeMadeInBlock<T extends { seq: number; close(): Promise<unknown> }>(
  open: Set<T>,
  lastSeq: () => number,
): { start(): void; end(): Promise<void> } {
  let first = 0;
  return {
    start: () => {
      first = lastSeq();
    },
    end: async () => {
      await Promise.all([...open].filter((m) => m.seq > first).map((m) => m.close()));
    },
  };
}
