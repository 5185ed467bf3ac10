// jest gives each test file a copy of `process` whose 'exit' never fires; the real one, reachable
// through vm.runInThisContext, does. The harnesses hang their last-resort cleanup on it.
import * as vm from 'vm';

export function realProcess(): NodeJS.Process {
  try {
    const p = vm.runInThisContext('process') as NodeJS.Process;
    if (p && typeof p.on === 'function') return p;
  } catch {
    /* fall through */
  }
  return process;
}

/**
 * A set, one per real process and `key` (shared by every test file's copy of a harness module),
 * whose members are closed with closeSync() when the real process exits: the last-resort cleanup.
 */
export function closedAtExit<T extends { closeSync(): void }>(key: string): Set<T> {
  const real = realProcess() as NodeJS.Process & { [key: symbol]: Set<T> | undefined };
  const id = Symbol.for(key);
  const existing = real[id];
  if (existing) return existing;
  const open = new Set<T>();
  real[id] = open;
  real.on('exit', () => {
    for (const member of [...open]) member.closeSync();
  });
  return open;
}
