/*
 * What flood.test.ts and tap-edges.test.ts add to a ToaNet namespace: a place where
 * SYN-ACKs to a spoofed flood source vanish, a bounded SYN flood (syn-flood.py), processes run
 * inside the namespace, and the namespace's own TcpExt counters (/proc/net/netstat is per
 * network namespace). See README.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { ToaNet } from './toa-net';

/** The flood's source: never local, routed into a veth whose other end drops everything. */
export const FLOOD_SOURCE = '203.0.113.66';

/**
 * Routes FLOOD_SOURCE into one end of a veth pair inside the namespace (a fixed neighbour, so no
 * ARP; the other end stays down, so the device drops what it is given): the listener's SYN-ACKs to
 * it leave and nobody answers, and its request sockets stay in the SYN queue until they time out.
 * A blackhole or unreachable route would not do: the kernel then drops the SYN before queueing it.
 */
export async function sinkFloodReplies(netns: ToaNet): Promise<void> {
  const ip = (...args: string[]) => netns.exec('ip', args);
  await ip('link', 'add', 'flood0', 'type', 'veth', 'peer', 'name', 'flood1');
  await ip('link', 'set', 'flood0', 'up');
  await ip('route', 'add', `${FLOOD_SOURCE}/32`, 'dev', 'flood0');
  await ip('neigh', 'replace', FLOOD_SOURCE, 'lladdr', '02:00:5e:00:00:66', 'dev', 'flood0', 'nud', 'permanent');
}

/** TcpExt counters of the namespace (the kernel's SNMP MIB: SyncookiesSent, SyncookiesRecv, ...). */
export async function tcpExt(netns: ToaNet): Promise<Record<string, number>> {
  const { stdout } = await netns.exec('cat', ['/proc/net/netstat']);
  const lines = stdout.split('\n').filter((l) => l.startsWith('TcpExt:'));
  if (lines.length < 2) throw new Error(`no TcpExt lines in /proc/net/netstat: ${stdout.slice(0, 200)}`);
  const names = lines[0].trim().split(/\s+/).slice(1);
  const values = lines[1].trim().split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i]]));
}

export interface NsProcess {
  child: ChildProcess;
  stderr(): string;
  /** The next stdout line (bounded). */
  line(timeoutMs?: number): Promise<string>;
  /** SIGTERM, SIGKILL after 2 s; resolves when it is gone. Safe to call twice. */
  stop(): Promise<void>;
}

const running = new Set<NsProcess>();

/** Runs `cmd args` inside the namespace (`ip netns exec` keeps the pid), stdout read by lines. */
export function spawnInNs(netns: ToaNet, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): NsProcess {
  const child = spawn('ip', ['netns', 'exec', netns.ns, cmd, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: env ?? process.env,
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 65536) stderr += d;
  });
  child.stdin!.on('error', () => undefined);
  const queue: string[] = [];
  const waiters: Array<(l: string) => void> = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else queue.push(l);
  });
  let stopping: Promise<void> | null = null;
  const proc: NsProcess = {
    child,
    stderr: () => stderr,
    line: (timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        if (queue.length > 0) return resolve(queue.shift()!);
        const onExit = (code: number | null, sig: string | null) => {
          clearTimeout(timer);
          reject(new Error(`${cmd} exited (${code ?? sig}) before printing a line: ${stderr}`));
        };
        const timer = setTimeout(() => {
          child.off('exit', onExit);
          reject(new Error(`${cmd}: no line in ${timeoutMs} ms: ${stderr}`));
        }, timeoutMs);
        if (child.exitCode !== null || child.signalCode !== null) return onExit(child.exitCode, child.signalCode);
        child.once('exit', onExit);
        waiters.push((l) => {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(l);
        });
      }),
    stop: () => {
      if (stopping) return stopping;
      running.delete(proc);
      stopping = new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      });
      return stopping;
    },
  };
  running.add(proc);
  return proc;
}

/** Stops every process spawnInNs started and that is still running (for afterAll/afterEach). */
export async function stopAllInNs(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

const FLOOD_PY = path.join(__dirname, 'syn-flood.py');

/**
 * Starts a SYN flood from FLOOD_SOURCE at dst:port, bounded by `seconds` (and `count`); resolves
 * once it sends. `stop()` ends it early; its last line then is { sent, errors, seconds }.
 */
export async function startFlood(
  netns: ToaNet,
  o: { dst: string; port: number; seconds: number; count?: number; toa?: boolean },
): Promise<NsProcess> {
  const args = ['-u', FLOOD_PY, '--src', FLOOD_SOURCE, '--dst', o.dst, '--dport', String(o.port), '--seconds', String(o.seconds)];
  if (o.count !== undefined) args.push('--count', String(o.count));
  if (o.toa === false) args.push('--no-toa');
  const flood = spawnInNs(netns, process.env.TOA_PYTHON || '/usr/bin/python3', args);
  const ready = await flood.line(10_000);
  if (!JSON.parse(ready).ready) throw new Error(`syn-flood: unexpected first line ${ready}`);
  return flood;
}
