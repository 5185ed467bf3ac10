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

/** A list of samples as the parts emit it: its median, and every sample. */
export function stat(samples: number[]): { median: number; samples: number[] } {
  return { median: median(samples), samples };
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

/**
 * ns per read for cached reads: `passes` passes over `count` items, timed in chunks of 10 passes
 * (`chunk(n)` makes n passes), the median chunk. A cached read takes some ns, so one preemption or
 * GC pause in a single timed loop (on a shared VM, a few ms) would be the whole measure; a chunk
 * it hits is one sample of many. Each caller's chunk function holds its own loop, so the read
 * inside stays monomorphic and inlined, as in a server.
 */
export function timeCachedReads(count: number, passes: number, chunk: (n: number) => void): number {
  const CHUNK = 10;
  const times: number[] = [];
  for (let done = 0; done < passes; done += CHUNK) {
    const n = Math.min(CHUNK, passes - done);
    const start = process.hrtime.bigint();
    chunk(n);
    times.push(Number(process.hrtime.bigint() - start) / (n * count));
  }
  return median(times);
}

export function emit(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/**
 * Where a part, or one mode of it, cannot run here (`why`): says so on stderr and as the part's one
 * JSON line, and returns true; false when `why` is undefined.
 */
export function skipped(part: string, why: string | undefined, mode?: string): boolean {
  if (why === undefined) return false;
  log(`${part}: ${mode === undefined ? '' : `${mode} `}skipped: ${why}`);
  emit(mode === undefined ? { skipped: why } : { mode, skipped: why });
  return true;
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

/**
 * Opens `roles` batches and hands them out in an order that changes with `round`: the batch
 * accepted first is colder by the time the last one is read, so a fixed order would favour one
 * side (an A/A pair read 0.85x with one). The accept order shifts every 2 x roles rounds, while
 * the timing order (timeInTurn) goes through its 2 x roles orders, so each side meets every
 * accept position under every timing order.
 */
export async function openRotated<B>(roles: number, round: number, open: () => Promise<B>): Promise<B[]> {
  const opened: B[] = [];
  for (let i = 0; i < roles; i++) opened.push(await open());
  const shift = Math.floor(round / (2 * roles)) % roles;
  return opened.map((_, i) => opened[(i + shift) % roles]);
}

/**
 * Runs `timers` in one of 2n orders, by `round`: the n rotations, then the n rotations reversed.
 * Rotations alone would always run the same one right after another (the A/A pair, twice Node's
 * read, then read 0.90x: the second ran on caches the first had just warmed); with the reversals
 * each neighbour comes before and after as often.
 */
export function timeInTurn(round: number, timers: ReadonlyArray<() => unknown>): void {
  const n = timers.length;
  const k = round % (2 * n);
  for (let i = 0; i < n; i++) {
    const at = k < n ? (k + i) % n : (k - n + n - i) % n;
    timers[at]();
  }
}
