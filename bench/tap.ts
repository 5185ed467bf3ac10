// The ACK tap's cost: connections per second on loopback, one request per connection, with the
// SYN path only (`enable(server)`) and with the tap as well (`enable(server, { ack: true })`).
// The server runs in its own process (forked from this file) and answers each connection with
// realRemoteAddress(socket).address after its first bytes; the client here keeps a fixed number
// of connections in flight (closed loop) for a fixed time. Runs alternate (syn, tap, tap, syn, ...)
// so drift hits both alike; the table shows medians and the median of the pairwise ratios.
//
// Loopback SYNs and ACKs carry no TOA, so this measures what the tap adds to every connection:
// `{ ack: true }` opens the sock_ops program where it loads (its run per connection in the
// kernel, and per lookup a read of its slot), else packet sockets (the SYN copied by the
// kernel's filter, the ring read per lookup). Needs root.
//
// A second table times the lookup itself in one process: the first realRemoteAddress() call on
// each of a batch of accepted loopback sockets, SYN path only vs SYN + tap (which then also reads
// the tap's queue and the table), median of alternating batches.
//
// Run: node bench/run.js builds build-bench/tap.js (with every other bench file); then
//   node build-bench/tap.js            # BENCH_TAP_SECONDS (5), BENCH_TAP_ROUNDS (3), BENCH_TAP_CONCURRENCY (32)
// It prints the table on stderr and one JSON line on stdout.
import { fork, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { QUICK, emit, envInt, loadToa, log, median, sleep } from './common';

type Variant = 'syn' | 'tap';
const LABELS: Record<Variant, string> = {
  syn: 'enable(server): SYN path only',
  tap: 'enable(server, { ack: true }): SYN + tap',
};

const SECONDS = envInt('BENCH_TAP_SECONDS', QUICK ? 1 : 5, 1, 30);
const ROUNDS = envInt('BENCH_TAP_ROUNDS', QUICK ? 1 : 3, 1, 10);
const CONCURRENCY = envInt('BENCH_TAP_CONCURRENCY', 32, 1, 512);

// ---- server (child process) ----

function serve(variant: Variant): void {
  const toa = loadToa();
  let connections = 0;
  let wrong = 0;
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.once('data', () => {
      connections++;
      const answer = toa.realRemoteAddress(socket);
      if (answer.address !== '127.0.0.1') wrong++;
      socket.end(answer.address);
    });
  });
  toa.enable(server, variant === 'tap' ? { ack: true } : undefined);
  server.listen(0, '127.0.0.1', 4096, () => {
    process.send!({ port: (server.address() as net.AddressInfo).port });
  });
  let cpu = process.cpuUsage();
  process.on('message', (m: { op: string }) => {
    if (m.op === 'mark') {
      cpu = process.cpuUsage();
      connections = 0;
      process.send!({ marked: true });
    } else if (m.op === 'report') {
      const used = process.cpuUsage(cpu);
      const tap = toa.stats();
      process.send!({ connections, wrong, cpuUs: used.user + used.system, tap: { lookups: tap.lookups, packets: tap.packets, drops: tap.drops } });
    } else if (m.op === 'exit') {
      server.close();
      process.exit(0);
    }
  });
}

// ---- client (this process) ----

interface Report {
  connections: number;
  wrong: number;
  cpuUs: number;
  tap: { lookups: number; packets: number; drops: number };
}

function request<T>(child: ChildProcess, op: string, key: keyof T): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (m: T) => {
      if (m !== null && typeof m === 'object' && key in (m as object)) {
        child.off('message', onMessage);
        resolve(m);
      }
    };
    child.on('message', onMessage);
    child.send({ op });
  });
}

/** Keeps CONCURRENCY connections going until the deadline; returns completed and failed ones. */
async function load(port: number, seconds: number): Promise<{ done: number; errors: number }> {
  const deadline = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('connect', () => socket.write('hi'));
      socket.on('data', () => undefined);
      socket.on('end', () => {
        done++;
        resolve();
      });
      socket.on('error', () => {
        errors++;
        socket.destroy();
        resolve();
      });
    });
  const lane = async () => {
    while (Date.now() < deadline) await one();
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return { done, errors };
}

interface Run {
  variant: Variant;
  rate: number;
  cpuUsPerConnection: number;
  errors: number;
  wrong: number;
  drops: number;
}

async function measure(variant: Variant): Promise<Run> {
  const child = fork(__filename, ['--server', variant], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const { port } = await new Promise<{ port: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { port: number }));
      child.once('error', reject);
    });
    await load(port, 0.5); // warm-up
    await sleep(200);
    await request<{ marked: boolean }>(child, 'mark', 'marked');
    const started = process.hrtime.bigint();
    const { done, errors } = await load(port, SECONDS);
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    const report = await request<Report>(child, 'report', 'connections');
    return {
      variant,
      rate: done / elapsed,
      cpuUsPerConnection: report.cpuUs / Math.max(1, report.connections),
      errors,
      wrong: report.wrong,
      drops: report.tap.drops,
    };
  } finally {
    child.send({ op: 'exit' });
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

function pad(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
}

const MICRO_BATCH = 200;
const MICRO_ROUNDS = envInt('BENCH_TAP_MICRO_ROUNDS', QUICK ? 5 : 30, 1, 200);

/** ns per first realRemoteAddress() call on fresh accepted sockets, per variant (medians). */
async function micro(): Promise<Record<Variant, number>> {
  const toa = loadToa();
  const accepted: net.Socket[] = [];
  const servers = {} as Record<Variant, { server: net.Server; port: number }>;
  for (const v of ['syn', 'tap'] as Variant[]) {
    const server = net.createServer((s) => accepted.push(s));
    toa.enable(server, v === 'tap' ? { ack: true } : undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 1024, resolve));
    servers[v] = { server, port: (server.address() as net.AddressInfo).port };
  }
  const samples: Record<Variant, number[]> = { syn: [], tap: [] };
  for (let r = 0; r < MICRO_ROUNDS; r++) {
    for (const v of (r % 2 === 0 ? ['syn', 'tap'] : ['tap', 'syn']) as Variant[]) {
      const clients = await Promise.all(
        Array.from({ length: MICRO_BATCH }, () => new Promise<net.Socket>((resolve) => {
          const c = net.connect(servers[v].port, '127.0.0.1', () => resolve(c));
        })),
      );
      while (accepted.length < MICRO_BATCH) await sleep(1);
      const batch = accepted.splice(0);
      const started = process.hrtime.bigint();
      for (const socket of batch) toa.realRemoteAddress(socket);
      samples[v].push(Number(process.hrtime.bigint() - started) / batch.length);
      for (const s of [...batch, ...clients]) s.destroy();
    }
  }
  for (const { server } of Object.values(servers)) server.close();
  return { syn: median(samples.syn), tap: median(samples.tap) };
}

async function main(): Promise<void> {
  const toa = loadToa();
  if (!toa.support().savedSyn) throw new Error('bench/tap: needs Linux and the addon');
  const perCall = await micro();
  log(`\nACK tap: ns per first realRemoteAddress() call, median of ${MICRO_ROUNDS} batches of ${MICRO_BATCH} fresh loopback connections`);
  log(`  SYN path only    ${perCall.syn.toFixed(0)} ns`);
  log(`  SYN + tap        ${perCall.tap.toFixed(0)} ns  (+${(perCall.tap - perCall.syn).toFixed(0)} ns)\n`);
  const runs: Run[] = [];
  const order: Variant[] = [];
  for (let r = 0; r < ROUNDS; r++) order.push(...((r % 2 === 0 ? ['syn', 'tap'] : ['tap', 'syn']) as Variant[]));
  for (const variant of order) {
    const run = await measure(variant);
    log(`tap bench: ${variant} ${run.rate.toFixed(0)} conn/s, ${run.cpuUsPerConnection.toFixed(1)} us CPU/conn, errors ${run.errors}`);
    runs.push(run);
  }
  const of = (v: Variant) => runs.filter((r) => r.variant === v);
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const syn = of('syn')[r];
    const tap = of('tap')[r];
    ratios.push(tap.rate / syn.rate);
  }
  const rows = (['syn', 'tap'] as Variant[]).map((v) => {
    const list = of(v);
    return {
      variant: v,
      label: LABELS[v],
      rate: median(list.map((r) => r.rate)),
      cpuUsPerConnection: median(list.map((r) => r.cpuUsPerConnection)),
      errors: list.reduce((n, r) => n + r.errors, 0),
      wrong: list.reduce((n, r) => n + r.wrong, 0),
      drops: list.reduce((n, r) => n + r.drops, 0),
    };
  });
  const ratio = median(ratios);
  const headers = ['server', 'conn/s', 'server CPU us/conn', 'vs SYN only', 'errors', 'tap drops'];
  const cells = rows.map((r) => [
    r.label,
    r.rate.toFixed(0),
    r.cpuUsPerConnection.toFixed(1),
    r.variant === 'syn' ? '100.0 %' : `${(ratio * 100).toFixed(1)} %`,
    String(r.errors + r.wrong),
    r.variant === 'syn' ? '-' : String(r.drops),
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  log(
    `\nACK tap: connections/s on loopback, one request per connection, ${CONCURRENCY} in flight, ` +
      `median of ${ROUNDS} alternating ${SECONDS} s runs`,
  );
  log(pad(headers, widths));
  log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) log(pad(c, widths));
  emit({ seconds: SECONDS, rounds: ROUNDS, concurrency: CONCURRENCY, rows, ratio, ratios, perCallNs: perCall });
}

if (process.argv[2] === '--server') {
  serve(process.argv[3] as Variant);
} else {
  main().catch((error: Error) => {
    log(`bench/tap: ${error.stack ?? error.message}`);
    process.exit(1);
  });
}
