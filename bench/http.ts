// HTTP: throughput of plain http, Express and Fastify, each without and with node-toa, measured
// with autocannon on loopback. Every server runs in its own process (forked from this file);
// autocannon runs here. By default each pair (without, with) is loaded at the same time, so
// whatever else the machine does hits both alike; which one starts first alternates between
// rounds. BENCH_HTTP_METHOD=sequential runs them one after the other instead (alternating the
// order). The ratio of each pair is computed and their median reported, next to an A/A control.
//
// Both routes answer with the client address: `req.socket.remoteAddress` without node-toa, the
// integration's answer with it. Loopback SYNs carry no TOA, so this measures what node-toa adds
// to every connection: the saved SYN read (once per connection) and the cached lookups.
import { fork, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { QUICK, ROOT, emit, envInt, loadToa, log, median, pinToCpu, sleep } from './common';

type Framework = 'http' | 'express' | 'fastify';
type Variant = 'plain' | 'toa';
type Mode = 'keep-alive' | 'close';

const FRAMEWORKS: readonly Framework[] = ['http', 'express', 'fastify'];
const MODES: readonly Mode[] = ['keep-alive', 'close'];

// 'paired' (default): with and without node-toa loaded at the same time, alternating which
// starts first; 'sequential': one after the other, alternating the order (noisier on a shared VM).
const METHOD = process.env.BENCH_HTTP_METHOD === 'sequential' ? 'sequential' : 'paired';
const DURATION = envInt('BENCH_HTTP_SECONDS', METHOD === 'paired' && !QUICK ? 2 : 1, 1, 30);
// An even number: each side goes first equally often.
const ROUNDS = envInt('BENCH_HTTP_ROUNDS', QUICK ? 1 : 4, 1, 20);
const CONNECTIONS = envInt('BENCH_HTTP_CONNECTIONS', 10, 1, 256);

// ---- the servers (child processes) ----

function tryRequire(id: string): unknown {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(id);
  } catch {
    return undefined;
  }
}

function listenHttp(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', 4096, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** What the integrations add to a request. */
interface WithMethod {
  realRemoteAddress(): { address: string };
}

interface Started {
  port: number;
  /** How the toa variant gets the address: the framework integration, or the core call. */
  via: string;
}

async function startServer(framework: Framework, variant: Variant): Promise<Started> {
  const toa = loadToa();
  const useToa = variant === 'toa';
  const core = (socket: net.Socket) => toa.realRemoteAddress(socket).address;
  const peer = (socket: net.Socket) => socket.remoteAddress ?? '';

  if (framework === 'http') {
    const address = useToa ? core : peer;
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(address(req.socket));
    });
    server.keepAliveTimeout = 60_000;
    if (useToa) toa.enable(server);
    return { port: await listenHttp(server), via: useToa ? 'realRemoteAddress' : 'remoteAddress' };
  }

  if (framework === 'express') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const express = require('express') as typeof import('express');
    const app = express();
    app.set('etag', false);
    const integration = useToa
      ? (tryRequire(path.join(ROOT, 'dist', 'express.js')) as { toaMiddleware?: () => unknown } | undefined)
      : undefined;
    let via = 'remoteAddress';
    if (useToa && typeof integration?.toaMiddleware === 'function') {
      app.use(integration.toaMiddleware() as Parameters<typeof app.use>[0]);
      app.get('/', (req, res) => {
        res.type('text/plain').send((req as unknown as WithMethod).realRemoteAddress().address);
      });
      via = 'toaMiddleware';
    } else {
      const address = useToa ? core : peer;
      app.get('/', (req, res) => {
        res.type('text/plain').send(address(req.socket));
      });
      if (useToa) via = 'realRemoteAddress';
    }
    const server = http.createServer(app);
    server.keepAliveTimeout = 60_000;
    if (useToa) toa.enable(server);
    return { port: await listenHttp(server), via };
  }

  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fastify = require('fastify') as typeof import('fastify');
  const app = fastify.default({ logger: false, keepAliveTimeout: 60_000 });
  const plugin = useToa
    ? (tryRequire(path.join(ROOT, 'dist', 'fastify.js')) as { fastifyToa?: unknown } | undefined)
    : undefined;
  let via = 'remoteAddress';
  if (useToa && typeof plugin?.fastifyToa === 'function') {
    await app.register(plugin.fastifyToa as Parameters<typeof app.register>[0]);
    app.get('/', async (req) => (req as unknown as WithMethod).realRemoteAddress().address);
    via = 'fastifyToa';
  } else {
    const address = useToa ? core : peer;
    app.get('/', async (req) => address(req.socket));
    if (useToa) via = 'realRemoteAddress';
  }
  await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
  if (useToa && !toa.isEnabled(app.server)) toa.enable(app.server);
  return { port: (app.server.address() as net.AddressInfo).port, via };
}

function serve(framework: Framework, variant: Variant): void {
  startServer(framework, variant).then(
    (started) => process.send?.({ ready: true, ...started }),
    (error: unknown) => {
      log(`http bench server ${framework}/${variant}: ${(error as Error).stack ?? String(error)}`);
      process.exit(1);
    },
  );
  // CPU time so far, for the driver's CPU per request.
  process.on('message', () => {
    const usage = process.cpuUsage();
    process.send?.({ cpu: usage.user + usage.system });
  });
  // The driver going away ends the server too.
  process.on('disconnect', () => process.exit(0));
}

// ---- the driver ----

interface ServerProcess {
  framework: Framework;
  variant: Variant;
  child: ChildProcess;
  port: number;
  via: string;
}

function spawnServer(framework: Framework, variant: Variant): Promise<ServerProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['serve', framework, variant], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    pinToCpu(child.pid ?? 0, 1);
    const timer = setTimeout(() => reject(new Error(`${framework}/${variant} did not start in 10 s`)), 10_000);
    child.once('message', (m: { port: number; via: string }) => {
      clearTimeout(timer);
      resolve({ framework, variant, child, port: m.port, via: m.via });
    });
    child.once('exit', (code) => reject(new Error(`${framework}/${variant} exited with ${code}`)));
  });
}

interface Run {
  rps: number;
  p50: number;
  errors: number;
  /** Server CPU (user + system) per request, microseconds. */
  cpu: number;
}

function serverCpu(server: ServerProcess): Promise<number> {
  return new Promise((resolve) => {
    server.child.once('message', (m: { cpu: number }) => resolve(m.cpu));
    server.child.send('cpu');
  });
}

// Load, unmeasured, right before each measured run. A server that sat idle while the others
// ran starts slow (on a VM, its freed pages come back from the host one fault at a time);
// without this the server that ran more recently is favoured.
const WARM_SECONDS = 0.5;

async function measure(server: ServerProcess, mode: Mode, seconds: number): Promise<Run> {
  await load(server.port, mode, { seconds: WARM_SECONDS });
  const before = await serverCpu(server);
  const run = await load(server.port, mode, { seconds });
  const after = await serverCpu(server);
  return { ...run, cpu: (after - before) / Math.max(1, run.rps * seconds) };
}

/**
 * Both servers under load at the same time, each by its own autocannon instance: whatever the
 * machine does meanwhile (other processes, the VM's host) hits both alike, and the scheduler
 * gives the two server processes equal CPU, so their throughput ratio is the ratio of their
 * cost per request. `first` is started first (alternated by the caller).
 */
async function measurePair(first: ServerProcess, second: ServerProcess, mode: Mode, seconds: number): Promise<[Run, Run]> {
  await Promise.all([first, second].map((s) => load(s.port, mode, { seconds: WARM_SECONDS })));
  const before = await Promise.all([serverCpu(first), serverCpu(second)]);
  const runs = await Promise.all([first, second].map((s) => load(s.port, mode, { seconds })));
  const after = await Promise.all([serverCpu(first), serverCpu(second)]);
  return [0, 1].map((i) => ({
    ...runs[i],
    cpu: (after[i] - before[i]) / Math.max(1, runs[i].rps * seconds),
  })) as [Run, Run];
}

async function load(port: number, mode: Mode, bound: { seconds: number }): Promise<Omit<Run, 'cpu'>> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const autocannon = require('autocannon') as (opts: object) => Promise<{
    requests: { total: number };
    latency: { p50: number };
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
  }>;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/`,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: bound.seconds,
    timeout: 10,
    // Connection-per-request: the server closes after each response and autocannon reconnects.
    // (autocannon's reconnectRate option drops the response it resets on, so it counts nothing.)
    headers: mode === 'close' ? { connection: 'close' } : {},
  });
  return {
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

interface Cell {
  /** What the row shows: a framework, or the control (plain against a second plain server). */
  name: Framework | 'control';
  mode: Mode;
  baseline: string;
  compared: string;
  plain: number[];
  toa: number[];
  ratios: number[];
  cpuPlain: number[];
  cpuToa: number[];
  cpuRatios: number[];
  p50Plain: number[];
  p50Toa: number[];
  errors: number;
}

function newCell(name: Cell['name'], mode: Mode, baseline: string, compared: string): Cell {
  return {
    name,
    mode,
    baseline,
    compared,
    plain: [],
    toa: [],
    ratios: [],
    cpuPlain: [],
    cpuToa: [],
    cpuRatios: [],
    p50Plain: [],
    p50Toa: [],
    errors: 0,
  };
}

async function drive(): Promise<void> {
  const pinned = pinToCpu(process.pid, 0);
  const servers = new Map<string, ServerProcess>();
  try {
    for (const framework of FRAMEWORKS) {
      for (const variant of ['plain', 'toa'] as const) {
        servers.set(`${framework}/${variant}`, await spawnServer(framework, variant));
      }
    }
    // The control: two more plain http servers, measured against each other exactly as the
    // node-toa pairs are (each server of a pair idles as long as the other between its runs).
    // Their ratio shows how far apart two identical servers come out here.
    servers.set('control/a', await spawnServer('http', 'plain'));
    servers.set('control/b', await spawnServer('http', 'plain'));
    // Warm-up: JIT and connection handling of every server, not timed.
    if (!QUICK) for (const s of servers.values()) await load(s.port, 'keep-alive', { seconds: 1 });

    const cells: Cell[] = [];
    for (const mode of MODES) {
      for (const framework of FRAMEWORKS) cells.push(newCell(framework, mode, `${framework}/plain`, `${framework}/toa`));
      cells.push(newCell('control', mode, 'control/a', 'control/b'));
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const cell of cells) {
        const order = round % 2 === 0 ? [cell.baseline, cell.compared] : [cell.compared, cell.baseline];
        const pair = new Map<string, Run>();
        if (METHOD === 'paired') {
          const runs = await measurePair(servers.get(order[0]) as ServerProcess, servers.get(order[1]) as ServerProcess, cell.mode, DURATION);
          order.forEach((key, i) => pair.set(key, runs[i]));
        } else {
          for (const key of order) pair.set(key, await measure(servers.get(key) as ServerProcess, cell.mode, DURATION));
        }
        for (const run of pair.values()) cell.errors += run.errors;
        await sleep(50);
        const plain = pair.get(cell.baseline) as Run;
        const withToa = pair.get(cell.compared) as Run;
        cell.plain.push(plain.rps);
        cell.toa.push(withToa.rps);
        cell.p50Plain.push(plain.p50);
        cell.p50Toa.push(withToa.p50);
        cell.ratios.push(withToa.rps / plain.rps);
        cell.cpuPlain.push(plain.cpu);
        cell.cpuToa.push(withToa.cpu);
        cell.cpuRatios.push(withToa.cpu / plain.cpu);
        log(
          `http: round ${round + 1}/${ROUNDS} ${cell.mode} ${cell.name}: ` +
            `${plain.rps.toFixed(0)} vs ${withToa.rps.toFixed(0)} req/s (${((withToa.rps / plain.rps) * 100).toFixed(1)} %), ` +
            `server CPU ${plain.cpu.toFixed(1)} vs ${withToa.cpu.toFixed(1)} us/req`,
        );
      }
    }
    emit({
      method: METHOD,
      pinned,
      seconds: DURATION,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      via: Object.fromEntries(FRAMEWORKS.map((f) => [f, servers.get(`${f}/toa`)?.via])),
      cells: cells.map((c) => ({
        framework: c.name,
        mode: c.mode,
        plain: median(c.plain),
        toa: median(c.toa),
        ratio: median(c.ratios),
        ratios: c.ratios,
        cpuPlain: median(c.cpuPlain),
        cpuToa: median(c.cpuToa),
        cpuRatio: median(c.cpuRatios),
        cpuRatios: c.cpuRatios,
        p50Plain: median(c.p50Plain),
        p50Toa: median(c.p50Toa),
        errors: c.errors,
      })),
    });
  } finally {
    for (const s of servers.values()) s.child.kill();
  }
}

if (process.argv[2] === 'serve') {
  serve(process.argv[3] as Framework, process.argv[4] as Variant);
} else {
  drive().catch((error: unknown) => {
    log(`http: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  });
}
