/*
 * Clients whose own kernel writes TOA: a cgroup with the sock_ops program of
 * sockops/toa_sockops.bpf.c attached (by sockops/loader.c, which holds the bpf_link), and
 * processes spawned into it. Every TCP connection such a process opens carries a TOA in the
 * packets the config names, at full speed, on loopback, with no proxy. See README.md.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as readline from 'readline';
import { spawn as spawnChild, ChildProcess, StdioOptions } from 'child_process';
import { buildSockops, cgroupRoot, sockopsAvailable, type Availability } from './build';
import { removeOrphans } from '../process/leftovers';
import { childEnv, closedAtExit } from '../process/real-process';
import { closeMadeInBlock, describeNeeds } from '../jest/requirements';

export { sockopsAvailable, buildSockops } from './build';

/** Which packets of each connection a process in the cgroup opens carry the option. */
export type ToaPacket = 'syn' | 'ack' | 'data';

export interface ToaCgroupConfig {
  /** 'syn' (every SYN, retransmissions too), 'ack' (the pure ACK completing the handshake), 'data' (the first packet with payload) */
  packets: readonly ToaPacket[];
  /** option kind; default 254 */
  kind?: number;
  /** IPv4 whose low byte is replaced by the source port's; default 198.51.100.0 */
  base?: string;
  /** hex of a whole option (2 to 8 bytes, byte 1 its length) written instead of kind/base */
  raw?: string;
}

/** The program's counters, since the cgroup was made. */
export interface SockopsCounters {
  /** active opens in the cgroup */
  connects: number;
  /** options written, per packet type */
  syn: number;
  ack: number;
  data: number;
  /** no room left in the header: the packet went out without its TOA */
  reserveFail: number;
  storeFail: number;
  noStorage: number;
}

export interface SpawnOptions {
  /** taskset -c CPUS */
  cpus?: string;
  env?: NodeJS.ProcessEnv;
  stdio?: StdioOptions;
}

export interface RunOptions extends SpawnOptions {
  /** SIGKILL after this; default 60000 */
  timeoutMs?: number;
  input?: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

const BITS: Record<ToaPacket, number> = { syn: 1, ack: 2, data: 4 };
const NAME_RE = /^toa-sockops-(\d+)-[0-9a-f]+$/;
const DEFAULT_BASE = '198.51.100.0';

// Cgroups of test processes that died without cleanup (SIGKILL of the worker and its loader).
function removeStaleCgroups(root: string): void {
  removeOrphans(root, NAME_RE, (name) => removeStaleCgroupDir(path.join(root, name)));
}

function checkConfig(config: ToaCgroupConfig): { mask: number; kind: number; base: string; raw?: string } {
  if (!Array.isArray(config.packets) || config.packets.length === 0) {
    throw new TypeError(`ToaCgroup: packets must name at least one of ${Object.keys(BITS).join(', ')}`);
  }
  let mask = 0;
  for (const p of config.packets as readonly string[]) {
    if (!Object.hasOwn(BITS, p)) throw new TypeError(`ToaCgroup: unknown packet '${p}' (known: ${Object.keys(BITS).join(', ')})`);
    mask |= BITS[p as ToaPacket];
  }
  const kind = config.kind ?? 254;
  if (!Number.isInteger(kind) || kind < 2 || kind > 255) throw new RangeError(`ToaCgroup: kind must be 2..255, got ${kind}`);
  const base = config.base ?? DEFAULT_BASE;
  if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(base) || base.split('.').some((o) => Number(o) > 255)) {
    throw new TypeError(`ToaCgroup: base must be an IPv4 address, got '${base}'`);
  }
  const raw = config.raw;
  if (raw !== undefined) {
    const bytes = /^([0-9a-f]{2}){2,8}$/i.test(raw) ? Buffer.from(raw, 'hex') : null;
    if (!bytes || bytes[1] < 2 || bytes[1] > bytes.length) {
      throw new TypeError(`ToaCgroup: raw must be 2 to 8 bytes of hex whose byte 1 is a length that fits, got '${raw}'`);
    }
  }
  return { mask, kind, base, raw };
}

// ---- process-wide cleanup ---------------------------------------------------
// Every test file's copy of this module shares one set per worker, closed when the worker exits.
const openGroups = closedAtExit<ToaCgroup>('node-toa.test.sockops.registry');
const localGroups = new Set<ToaCgroup>();
let createSeq = 0;

export class ToaCgroup {
  /** The cgroup directory. */
  readonly path: string;
  /** @internal creation order, for describeSockops cleanup */
  readonly seq = ++createSeq;
  private readonly base: number;
  private readonly raw: string | undefined;
  private readonly children = new Set<ChildProcess>();
  private readonly waiting: Array<(line: string) => void> = [];
  private closing: Promise<void> | null = null;
  private stderr = '';

  private constructor(
    dir: string,
    private readonly loader: ChildProcess,
    base: string,
    raw: string | undefined,
  ) {
    this.path = dir;
    this.base = base.split('.').reduce((a, o) => a * 256 + Number(o), 0);
    this.raw = raw;
  }

  /** Makes the cgroup and attaches the program; resolves once packets from it get options. */
  static async create(config: ToaCgroupConfig): Promise<ToaCgroup> {
    const a: Availability = sockopsAvailable();
    if (!a.ok) throw new Error(`ToaCgroup unavailable: ${a.reason}`);
    const { mask, kind, base, raw } = checkConfig(config);
    const build = buildSockops();
    const root = cgroupRoot() as string;
    removeStaleCgroups(root);
    const dir = path.join(root, `toa-sockops-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
    const args = [build.object, dir, String(mask), String(kind), base, ...(raw ? [raw] : [])];
    const loader = spawnChild(build.loader, args, { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv() });
    const group = new ToaCgroup(dir, loader, base, raw);
    openGroups.add(group);
    localGroups.add(group);
    loader.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (group.stderr.length < 65536) group.stderr += d;
    });
    readline.createInterface({ input: loader.stdout! }).on('line', (line) => group.waiting.shift()?.(line));
    try {
      const ready = await group.nextLine(10_000, 'the loader to attach');
      if (!JSON.parse(ready).ready) throw new Error(`unexpected loader answer: ${ready}`);
    } catch (e) {
      await group.close();
      throw e;
    }
    return group;
  }

  private nextLine(timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const loader = this.loader;
      const fail = (why: string) => {
        cleanup();
        reject(new Error(`sock_ops loader: ${why} while waiting for ${what}: ${this.stderr.trim()}`));
      };
      const onExit = (code: number | null, sig: string | null) => fail(`exited (${code ?? sig})`);
      const timer = setTimeout(() => fail(`no answer in ${timeoutMs} ms`), timeoutMs);
      const take = (line: string) => {
        cleanup();
        resolve(line);
      };
      const cleanup = () => {
        clearTimeout(timer);
        loader.off('exit', onExit);
        const i = this.waiting.indexOf(take);
        if (i >= 0) this.waiting.splice(i, 1);
      };
      if (loader.exitCode !== null || loader.signalCode !== null) return fail('is not running');
      loader.on('exit', onExit);
      this.waiting.push(take);
    });
  }

  /** Spawns `cmd` inside the cgroup (it joins before exec, so all its sockets are in it). */
  spawn(cmd: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    if (this.closing) throw new Error('ToaCgroup: spawn after close()');
    const pin = options.cpus !== undefined ? ['taskset', '-c', options.cpus] : [];
    const child = spawnChild(
      '/bin/sh',
      ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', this.path, ...pin, cmd, ...args],
      { env: options.env ?? childEnv(), stdio: options.stdio ?? 'pipe' },
    );
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs `cmd` inside the cgroup to its end (or SIGKILL at timeoutMs) and collects its output. */
  run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const child = this.spawn(cmd, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
    return new Promise((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, options.timeoutMs ?? 60_000);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, timedOut, stdout, stderr });
      });
      child.stdin!.end(options.input ?? '');
    });
  }

  /** The TOA the kernel writes for a connection from `sourcePort` (not for a raw option). */
  expected(sourcePort: number): { address: string; port: number } {
    if (this.raw !== undefined) throw new Error('ToaCgroup.expected(): this cgroup writes a raw option');
    const a = (this.base & ~0xff) + (sourcePort & 0xff);
    return { address: [a >>> 24, (a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff].join('.'), port: sourcePort };
  }

  /** The program's counters (options written per packet type, failures). */
  async counters(): Promise<SockopsCounters> {
    const answer = this.nextLine(5000, 'stats');
    this.loader.stdin!.write('stats\n');
    const parsed = JSON.parse(await answer) as SockopsCounters & { stats?: boolean };
    delete parsed.stats;
    return parsed;
  }

  /** Kills what runs in the cgroup, detaches the program, removes the cgroup. Safe to call twice. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      for (const c of this.children) c.kill('SIGKILL');
      const loader = this.loader;
      if (loader.exitCode === null && loader.signalCode === null) {
        const exited = new Promise<void>((resolve) => loader.once('exit', () => resolve()));
        loader.stdin!.end(); // EOF: the loader detaches, kills the rest of the cgroup, removes it
        const timer = setTimeout(() => loader.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (fs.existsSync(this.path)) removeStaleCgroupDir(this.path);
      openGroups.delete(this);
      localGroups.delete(this);
    })();
    return this.closing;
  }

  /** Last-resort cleanup on process exit: the loader finishes it after this process is gone. */
  closeSync(): void {
    for (const c of this.children) c.kill('SIGKILL');
    if (this.loader.exitCode === null && this.loader.signalCode === null) this.loader.kill('SIGTERM');
    openGroups.delete(this);
  }
}

function removeStaleCgroupDir(dir: string): void {
  try {
    fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1');
  } catch {
    /* gone */
  }
  try {
    fs.rmdirSync(dir);
  } catch {
    /* removeStaleCgroups in a later create() */
  }
}

/**
 * Like jest's describe, but when the harness cannot run: with CI=true a test that fails with the
 * reason; otherwise a loud warning and describe.skip (requirements.ts, describeNeeds). ToaCgroups
 * made inside the block and still open at its end are closed.
 */
export function describeSockops(name: string, fn: () => void): void {
  const a = sockopsAvailable();
  describeNeeds('sock_ops harness', a.ok ? null : a.reason, name, fn, closeMadeInBlock(localGroups, () => createSeq));
}
