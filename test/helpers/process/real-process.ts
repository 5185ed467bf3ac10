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
