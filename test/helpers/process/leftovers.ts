// What a harness leaves when its jest worker is killed (a network namespace, a cgroup) is named
// after the worker's pid, so the next harness to start can tell it is an orphan and remove it.
import * as fs from 'fs';

/** Whether `pid` is running (EPERM: it is, as another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Calls `remove(name)` for each entry of `dir` whose name `pattern` matches (its group 1 the
 * owner's pid) and whose owner is dead. A missing or unreadable `dir` has none.
 */
export function removeOrphans(dir: string, pattern: RegExp, remove: (name: string) => void): void {
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = pattern.exec(name);
    if (m && !pidAlive(Number(m[1]))) remove(name);
  }
}
