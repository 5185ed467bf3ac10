// The HTTP servers the preload parts measure (preload-http, profile), both sides of their small
// protocol: the child (serve(): a node:http app answering `req.socket.remoteAddress`, counting the
// answers that named the TOA client, its CPU time on request), started as `preload-http.js serve`
// plain or under -r node-toa/preload, and the driver's side (start it, ask its stats, load it from
// a ToaCgroup with conn-load.js).
import { fork, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as path from 'node:path';
import { ROOT, pinToCpu } from './common';
import type { ToaGroup } from './toa-clients';

const SERVE = path.join(__dirname, 'preload-http.js');
const CONN_LOAD = path.join(ROOT, 'test', 'helpers', 'children', 'conn-load.js');
const JOIN_CGROUP = path.join(__dirname, 'join-cgroup.js');

// ---- the server (a child process: preload-http.js serve) ----

export interface ServerStats {
  cpuUs: number;
  requests: number;
  /** answers that named the client the TOA carried for this connection */
  client: number;
  /** answers in the TOA clients' range that named another connection's client */
  wrong: number;
}

export function serve(): void {
  let requests = 0;
  let client = 0;
  let wrong = 0;
  const server = http.createServer((req, res) => {
    const address = req.socket.remoteAddress as string;
    requests++;
    if (address.startsWith('198.51.100.')) {
      // The cgroup's kernel writes 198.51.100.<source port & 255> with the source port.
      if (address === `198.51.100.${(req.socket.remotePort as number) & 255}`) client++;
      else wrong++;
    }
    res.setHeader('connection', 'close');
    res.end(address);
  });
  server.listen(0, '127.0.0.1', 4096, () => process.send!({ port: (server.address() as net.AddressInfo).port }));
  process.on('message', (m) => {
    if (m === 'stats') {
      const cpu = process.cpuUsage();
      process.send!({ cpuUs: cpu.user + cpu.system, requests, client, wrong } satisfies ServerStats);
    }
  });
}

export interface Server {
  label: string;
  child: ChildProcess;
  port: number;
}

/**
 * A server process: plain (`ack` null), or under -r node-toa/preload with NODE_TOA_ACK=`ack`;
 * `nodeArgs` go to its node (the profile part's --perf-basic-prof); `cgroup`: a cgroup v2
 * directory it moves into before the preload loads (kernel-programs.ts).
 */
export function startServer(
  label: string,
  ack: 'on' | 'off' | 'packet' | null,
  nodeArgs: readonly string[] = [],
  cgroup?: string,
): Promise<Server> {
  const join = cgroup === undefined ? [] : ['-r', JOIN_CGROUP];
  const child = fork(SERVE, ['serve'], {
    cwd: ROOT, // -r node-toa/preload resolves from here (the package itself)
    execArgv: [...join, ...(ack === null ? [] : ['-r', 'node-toa/preload']), ...nodeArgs],
    env: { ...process.env, NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: ack ?? 'off', BENCH_CGROUP: cgroup ?? '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} server did not start in 10 s`)), 10_000);
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer);
      pinToCpu(child.pid!, 1);
      resolve({ label, child, port: m.port });
    });
    child.once('exit', (code) => reject(new Error(`${label} server exited (${code})`)));
  });
}

export function stats(s: Server): Promise<ServerStats> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${s.label}: no stats in 5 s`)), 5000);
    s.child.once('message', (m: ServerStats) => {
      clearTimeout(timer);
      resolve(m);
    });
    s.child.send('stats');
  });
}

export interface LoadResult {
  count: number;
  ok: number;
  failures: number;
  elapsedMs: number;
}

export async function load(group: ToaGroup, port: number, count: number, parallel: number): Promise<LoadResult> {
  const r = await group.run(process.execPath, [CONN_LOAD, '--port', String(port), '--count', String(count), '--parallel', String(parallel)], {
    cpus: '0',
    timeoutMs: 120_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line.startsWith('{')) throw new Error(`conn-load failed (${r.code ?? r.signal}): ${r.stderr}`);
  return JSON.parse(line) as LoadResult;
}
