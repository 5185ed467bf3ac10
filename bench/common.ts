// What every part of the benchmark shares: where the package is, statistics, and how a part hands
// its result to bench/run.js (one JSON line on stdout; everything human goes to stderr).
import { spawnSync } from 'node:child_process';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as Toa from '../lib/index';

/** The repository root, both from bench/ and from build-bench/ (where run.js compiles these). */
export const ROOT = path.resolve(__dirname, '..');

/** The built package, as a user gets it (dist/, not the TypeScript sources). */
export function loadToa(): typeof Toa {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ROOT, 'dist', 'index.js')) as typeof Toa;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Integer from the environment, clamped, so a typo cannot start an unbounded run. */
export function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new RangeError(`${name} must be an integer, got '${raw}'`);
  return Math.min(max, Math.max(min, value));
}

export const QUICK = process.env.BENCH_QUICK === '1';

export function emit(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Pins a process to one CPU (Linux, with util-linux's taskset, on 2 or more CPUs): the load
 * generator on CPU 0, the servers it measures on CPU 1, so the servers of a pair share one core
 * fairly and the client never competes with them. Returns whether it did.
 */
export function pinToCpu(pid: number, cpu: number): boolean {
  if (process.platform !== 'linux' || os.cpus().length < 2 || process.env.BENCH_NO_PIN === '1') return false;
  const r = spawnSync('taskset', ['-pc', String(cpu), String(pid)], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * The next `count` connections `server` accepts (bounded at 10 s). `start` opens them once the
 * listener is in place; it may fail the wait (a client's error).
 */
export function acceptN(server: net.Server, count: number, start: (fail: (error: Error) => void) => void): Promise<net.Socket[]> {
  return new Promise((resolve, reject) => {
    const accepted: net.Socket[] = [];
    const timer = setTimeout(() => reject(new Error(`accepted ${accepted.length} of ${count} in 10 s`)), 10_000);
    const onConnection = (socket: net.Socket) => {
      accepted.push(socket);
      if (accepted.length === count) {
        clearTimeout(timer);
        server.off('connection', onConnection);
        resolve(accepted);
      }
    };
    server.on('connection', onConnection);
    start(reject);
  });
}
