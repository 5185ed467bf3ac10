// What a server's sock_ops program costs in the kernel, per connection. The program runs in the
// softirq that handles the connection's packets, which on loopback is the client's CPU: no
// server's process.cpuUsage() shows it. So a server whose program is measured runs in a cgroup of
// its own (the program runs for that cgroup's sockets only), the kernel counts each program's runs
// and run time while kernel.bpf_stats_enabled is 1, and build-bench/bpf-run-time reads them.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './common';

type Build = typeof import('../test/helpers/sockops/build');
type Taps = typeof import('../test/helpers/process/taps');

/** The cgroup v2 hierarchy, found as the tests' sock_ops harness finds it (transpiled by run.js). */
function cgroupRoot(): string | null {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(path.join(ROOT, 'build-bench', 'helpers', 'sockops', 'build.js')) as Build).cgroupRoot();
}

const STATS_SWITCH = '/proc/sys/kernel/bpf_stats_enabled';
const RUN_TIME = path.join(__dirname, 'bpf-run-time');

export interface ProgramTime {
  runs: number;
  ns: number;
}

/**
 * Turns the kernel's BPF run-time counting on, where it can (a container's /proc/sys may be read
 * only: then `on` is false and nothing is counted); `restore` puts the old setting back.
 */
export function countProgramTime(): { on: boolean; restore: () => void } {
  try {
    const old = fs.readFileSync(STATS_SWITCH, 'utf8').trim();
    fs.writeFileSync(STATS_SWITCH, '1');
    return { on: true, restore: () => fs.writeFileSync(STATS_SWITCH, old) };
  } catch {
    return { on: false, restore: () => undefined };
  }
}

/** A new cgroup v2 directory for one server; its path. */
export function serverCgroup(label: string): string {
  const root = cgroupRoot();
  if (root === null) throw new Error('no cgroup2 hierarchy is mounted');
  const dir = path.join(root, `node-toa-bench-${process.pid}-${label.replace(/[^a-z0-9]+/gi, '-')}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Removes a server's cgroup once its processes have exited (retried: the kernel lets go late). */
export async function removeCgroup(dir: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The ids of the BPF programs a process holds through a cgroup link (its sock_ops program). */
export function linkedPrograms(pid: number): number[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(path.join(ROOT, 'build-bench', 'helpers', 'process', 'taps.js')) as Taps).linkedPrograms(pid);
}

/** The summed runs and run time of these programs, as the kernel counted them so far. */
export function programTime(ids: readonly number[]): ProgramTime {
  if (ids.length === 0) return { runs: 0, ns: 0 };
  const r = spawnSync(RUN_TIME, ids.map(String), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bpf-run-time failed (${r.status}): ${r.stderr}`);
  const all = JSON.parse(r.stdout) as Record<string, ProgramTime>;
  let runs = 0;
  let ns = 0;
  for (const t of Object.values(all)) {
    runs += t.runs;
    ns += t.ns;
  }
  return { runs, ns };
}
