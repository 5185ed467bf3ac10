// Preload, HTTP: a new connection per request, TOA in every SYN (the clients run in a ToaCgroup, so
// their own kernel writes it), against a plain node:http server whose handler answers
// `req.socket.remoteAddress`, started three ways in three processes:
//   plain     node server
//   preload   node -r node-toa/preload server (NODE_TOA_TRUST_PROXY=loopback, NODE_TOA_ACK=off):
//             the same code now answers the client the TOA names
//   control   two more plain ones, measured against each other the same way (A/A: the noise)
// Each round loads a pair at once (plain + preload, and the control pair; which pair goes first
// and which side starts first alternate), each server by its own conn-load.js in the cgroup, right
// after an unmeasured warm-up of that pair, and reads each server's own CPU time
// (process.cpuUsage) around it: server CPU per request is what the preload costs a server,
// whatever the load generator does. The servers count the answers they gave
// (TOA client or not), so a preload that silently failed cannot pass for a fast one.
import { fork, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as path from 'node:path';
import { QUICK, ROOT, emit, envInt, log, median, pinToCpu } from './common';

type Variant = 'plain' | 'preload' | 'control';
const WARM = envInt('BENCH_PRELOAD_HTTP_WARM', 500, 0, 100_000);
const COUNT = envInt('BENCH_PRELOAD_HTTP_COUNT', QUICK ? 1500 : 4000, 100, 100_000);
const ROUNDS = envInt('BENCH_PRELOAD_HTTP_ROUNDS', QUICK ? 2 : 6, 1, 40);
const PARALLEL = envInt('BENCH_PRELOAD_HTTP_PARALLEL', 16, 1, 256);
const CONN_LOAD = path.join(ROOT, 'test', 'helpers', 'conn-load.js');

// ---- the server (a child process) ----

interface ServerStats {
  cpuUs: number;
  requests: number;
  toa: number;
}

function serve(): void {
  let requests = 0;
  let toa = 0;
  const server = http.createServer((req, res) => {
    const address = req.socket.remoteAddress as string;
    requests++;
    if (address.startsWith('198.51.100.')) toa++;
    res.setHeader('connection', 'close');
    res.end(address);
  });
  server.listen(0, '127.0.0.1', 4096, () => process.send!({ port: (server.address() as net.AddressInfo).port }));
  process.on('message', (m) => {
    if (m === 'stats') {
      const cpu = process.cpuUsage();
      process.send!({ cpuUs: cpu.user + cpu.system, requests, toa } satisfies ServerStats);
    }
  });
}

// ---- the driver ----

interface Server {
  variant: Variant;
  child: ChildProcess;
  port: number;
}

function startServer(variant: Variant): Promise<Server> {
  const child = fork(__filename, ['serve'], {
    cwd: ROOT, // -r node-toa/preload resolves from here (the package itself)
    execArgv: variant === 'preload' ? ['-r', 'node-toa/preload'] : [],
    env: { ...process.env, NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: 'off' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${variant} server did not start in 10 s`)), 10_000);
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer);
      pinToCpu(child.pid!, 1);
      resolve({ variant, child, port: m.port });
    });
    child.once('exit', (code) => reject(new Error(`${variant} server exited (${code})`)));
  });
}

function stats(s: Server): Promise<ServerStats> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${s.variant}: no stats in 5 s`)), 5000);
    s.child.once('message', (m: ServerStats) => {
      clearTimeout(timer);
      resolve(m);
    });
    s.child.send('stats');
  });
}

interface LoadResult {
  count: number;
  ok: number;
  failures: number;
  elapsedMs: number;
}

type Group = import('../test/helpers/sockops').ToaCgroup;

async function load(group: Group, port: number, count: number): Promise<LoadResult> {
  const r = await group.run(process.execPath, [CONN_LOAD, '--port', String(port), '--count', String(count), '--parallel', String(PARALLEL)], {
    cpus: '0',
    timeoutMs: 120_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line.startsWith('{')) throw new Error(`conn-load failed (${r.code ?? r.signal}): ${r.stderr}`);
  return JSON.parse(line) as LoadResult;
}

interface Cell {
  variant: Variant;
  cpuUsPerRequest: number;
  requests: number;
  toa: number;
  perSecond: number;
  failures: number;
}

/** Two servers loaded at once; each one's CPU per request in that time. */
async function pair(group: Group, a: Server, b: Server, count: number): Promise<[Cell, Cell]> {
  const before = await Promise.all([stats(a), stats(b)]);
  const results = await Promise.all([load(group, a.port, count), load(group, b.port, count)]);
  const after = await Promise.all([stats(a), stats(b)]);
  return [a, b].map((s, i) => {
    const requests = after[i].requests - before[i].requests;
    return {
      variant: s.variant,
      cpuUsPerRequest: (after[i].cpuUs - before[i].cpuUs) / Math.max(1, requests),
      requests,
      toa: after[i].toa - before[i].toa,
      perSecond: (results[i].ok * 1000) / results[i].elapsedMs,
      failures: results[i].failures,
    };
  }) as [Cell, Cell];
}

async function drive(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ToaCgroup, sockopsAvailable } = require(path.join(ROOT, 'build-bench', 'helpers', 'sockops.js')) as typeof import('../test/helpers/sockops');
  const available = sockopsAvailable();
  if (!available.ok) {
    log(`preload-http: skipped, the sock_ops harness cannot run here: ${available.reason}`);
    emit({ skipped: available.reason });
    return;
  }
  pinToCpu(process.pid, 0);
  const group = await ToaCgroup.create({ packets: ['syn'] });
  const servers = await Promise.all((['plain', 'preload', 'plain', 'control'] as const).map(startServer));
  const pairs = { preload: [servers[0], servers[1]], control: [servers[2], servers[3]] } as const;
  const rows: Record<'preload' | 'control', Array<{ plain: Cell; other: Cell }>> = { preload: [], control: [] };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const which of round % 2 === 0 ? (['preload', 'control'] as const) : (['control', 'preload'] as const)) {
        const [base, other] = pairs[which];
        // Unmeasured: a process that sat idle while the other pair ran starts slow.
        if (WARM > 0) await pair(group, base, other, WARM);
        const [x, y] = round % 2 === 0 ? await pair(group, base, other, COUNT) : (await pair(group, other, base, COUNT)).reverse();
        rows[which].push({ plain: x, other: y });
      }
      log(`preload-http: round ${round + 1}/${ROUNDS}`);
    }
  } finally {
    for (const s of servers) s.child.kill();
    await group.close();
  }
  const summary = (list: Array<{ plain: Cell; other: Cell }>) => ({
    cpuPlain: median(list.map((r) => r.plain.cpuUsPerRequest)),
    cpuOther: median(list.map((r) => r.other.cpuUsPerRequest)),
    cpuDiff: median(list.map((r) => r.other.cpuUsPerRequest - r.plain.cpuUsPerRequest)),
    cpuRatio: median(list.map((r) => r.other.cpuUsPerRequest / r.plain.cpuUsPerRequest)),
    rateRatio: median(list.map((r) => r.other.perSecond / r.plain.perSecond)),
    requests: list.reduce((n, r) => n + r.other.requests, 0),
    toa: list.reduce((n, r) => n + r.other.toa, 0),
    plainToa: list.reduce((n, r) => n + r.plain.toa, 0),
    failures: list.reduce((n, r) => n + r.plain.failures + r.other.failures, 0),
    rounds: list,
  });
  const result = { count: COUNT, rounds: ROUNDS, parallel: PARALLEL, preload: summary(rows.preload), control: summary(rows.control) };
  if (result.preload.toa !== result.preload.requests) {
    throw new Error(`preload-http: the preload server answered the TOA client for ${result.preload.toa} of ${result.preload.requests} requests`);
  }
  if (result.preload.plainToa !== 0 || result.control.toa !== 0) throw new Error('preload-http: a plain server answered a TOA client');
  emit(result);
}

if (process.argv[2] === 'serve') {
  serve();
} else {
  drive().catch((error: unknown) => {
    log(`preload-http: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  });
}

