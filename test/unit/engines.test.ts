// What package.json's `engines` promises is what CI tests: one range per major of the Node
// matrix (scripts/node-matrix.js), each pinned binary inside it, and the Node running this very
// suite is the one its starter meant (NODE_TOA_EXPECT_NODE: what .ci/run put first on PATH, else
// the `node` on PATH, as test/helpers/jest/expect-node.js sets it): a PATH mix-up that ran jest on the
// machine's own Node would otherwise pass for a run on 18 or 26.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { itNeeds } from '../helpers/jest/requirements';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { NODE_MATRIX } = require('../../scripts/node-matrix.js') as { NODE_MATRIX: Record<string, string> };

const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { engines: { node: string } };

type Triple = [number, number, number];
const triple = (v: string): Triple => {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (!m) throw new Error(`not a version: ${v}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
};

/** engines.node as caret ranges: `^M.m.p || ...`, the only form this package uses. */
function carets(range: string): Triple[] {
  return range.split('||').map((part) => {
    const m = /^\s*\^(\d+\.\d+\.\d+)\s*$/.exec(part);
    if (!m) throw new Error(`engines.node: '${part.trim()}' is not a caret range (^M.m.p)`);
    return triple(m[1]);
  });
}

function satisfies(version: string, range: string): boolean {
  const [M, m, p] = triple(version);
  return carets(range).some(([rM, rm, rp]) => M === rM && (m > rm || (m === rm && p >= rp)));
}

describe('engines', () => {
  it('names exactly the majors of the Node matrix, each pinned version inside its range', () => {
    const majors = carets(pkg.engines.node).map(([M]) => String(M));
    expect(majors).toEqual(Object.keys(NODE_MATRIX));
    for (const version of Object.values(NODE_MATRIX)) expect([version, satisfies(version, pkg.engines.node)]).toEqual([version, true]);
  });

  it('rejects the versions between and around the tested ones', () => {
    for (const v of ['16.20.2', '18.19.1', '19.9.0', '21.7.3', '23.11.1', '25.0.0', '27.0.0']) {
      expect([v, satisfies(v, pkg.engines.node)]).toEqual([v, false]);
    }
  });

  it('the Node running these tests is one engines allows', () => {
    expect(satisfies(process.version, pkg.engines.node)).toBe(true);
  });

  const expected = process.env.NODE_TOA_EXPECT_NODE;
  itNeeds(
    expected ? null : "NODE_TOA_EXPECT_NODE is unset: jest.config.js's globalSetup (test/helpers/jest/expect-node.js) did not run",
    `the Node running these tests is NODE_TOA_EXPECT_NODE (${expected ?? 'unset'})`,
    () => {
      expect(process.version).toBe(expected);
    },
  );
});
