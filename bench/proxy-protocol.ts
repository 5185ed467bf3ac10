// Alternatives: what node-toa costs per connection next to the other common way of passing the
// client address to a backend, the PROXY protocol (v1 text, v2 binary), read three ways: by
// node-toa's own `proxyProtocol` gate, by findhit-proxywrap (v1 only; it wraps the server's
// 'connection' listeners) and by proxy-protocol-js (a parser only: the server here finds the
// header's end and parses it off the data itself). Every variant serves the same tiny protocol:
// the client connects and sends a request line, the server reads it and answers with the client
// address it knows, then closes.
//   plain            socket.remoteAddress
//   toa              realRemoteAddress(socket) on a server with TCP_SAVE_SYN
//   gate-v1/-v2      enable(server, { trustProxy, proxyProtocol: true }), then a createResolver()
//   proxywrap-v1     findhit-proxywrap's net, then socket.remoteAddress
//   proxy-v1/-v2     proxy-protocol-js on the first bytes
// Each server runs in its own process; the client here offers the same connection rate to each
// (open loop, paced per millisecond), to all of them at the same time so that whatever else the
// machine does hits them alike, and each server reports the CPU time it spent: the table shows
// server CPU per connection at an equal rate.
import { fork, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as proxyProtocol from 'proxy-protocol-js';
import * as path from 'node:path';
import { QUICK, ROOT, emit, envInt, loadToa, log, median, pinToCpu, sleep } from './common';

type Variant = 'plain' | 'toa' | 'gate-v1' | 'gate-v2' | 'proxywrap-v1' | 'proxy-v1' | 'proxy-v2';
const VARIANTS: readonly Variant[] = ['plain', 'toa', 'gate-v1', 'gate-v2', 'proxywrap-v1', 'proxy-v1', 'proxy-v2'];
const LABELS: Record<Variant, string> = {
  plain: 'socket.remoteAddress (no client address)',
  toa: 'node-toa: realRemoteAddress() (saved SYN)',
  'gate-v1': 'PROXY v1, node-toa proxyProtocol: true',
  'gate-v2': 'PROXY v2, node-toa proxyProtocol: true',
  'proxywrap-v1': 'PROXY v1, findhit-proxywrap 0.3.13',
  'proxy-v1': 'PROXY v1, proxy-protocol-js (parser only)',
  'proxy-v2': 'PROXY v2, proxy-protocol-js (parser only)',
};
/** What the client sends before its request line. */
const WIRE: Record<Variant, 'none' | 'v1' | 'v2'> = {
  plain: 'none',
  toa: 'none',
  'gate-v1': 'v1',
  'gate-v2': 'v2',
  'proxywrap-v1': 'v1',
  'proxy-v1': 'v1',
  'proxy-v2': 'v2',
};

// Per server; all seven are loaded at once (2 cores: 7 x 400 conn/s keeps the client on time).
const RATE = envInt('BENCH_PROXY_RATE', 400, 100, 50_000);
const SECONDS = envInt('BENCH_PROXY_SECONDS', QUICK ? 1 : 2, 1, 30);
const ROUNDS = envInt('BENCH_PROXY_ROUNDS', QUICK ? 1 : 4, 1, 20);
// A bound on connections in flight: past it the server is saturated and the rate is not met.
const MAX_IN_FLIGHT = 256;

// The client address the PROXY-speaking client claims (a documentation address).
const CLAIMED = { address: '192.0.2.1', port: 40000 };
const REQUEST = 'hello\n';

// ---- server (child process) ----

function proxyHeaderLength(data: Buffer, variant: 'proxy-v1' | 'proxy-v2'): number {
  if (variant === 'proxy-v1') {
    const end = data.indexOf('\r\n');
    return end < 0 ? -1 : end + 2;
  }
  if (data.length < 16) return -1;
  const total = 16 + data.readUInt16BE(14);
  return data.length < total ? -1 : total;
}

function clientOf(header: Buffer, variant: 'proxy-v1' | 'proxy-v2'): string {
  if (variant === 'proxy-v1') {
    return proxyProtocol.V1ProxyProtocol.parse(header.toString('latin1')).source.ipAddress;
  }
  const parsed = proxyProtocol.V2ProxyProtocol.parse(header);
  const address = parsed.proxyAddress;
  if (!(address instanceof proxyProtocol.IPv4ProxyAddress)) throw new Error('expected an IPv4 PROXY v2 header');
  return address.sourceAddress.address.join('.');
}

interface Proxywrap {
  proxy(iface: typeof net, options?: { strict?: boolean }): typeof net;
}

function serve(variant: Variant): void {
  const toa = loadToa();
  let connections = 0;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const netOf = variant === 'proxywrap-v1' ? (require('findhit-proxywrap') as Proxywrap).proxy(net) : net;
  // The gate reads headers from the peers enable() trusts; the resolver believes its own trust.
  const gateResolve = toa.createResolver({ trustProxy: 'loopback' });
  const server = netOf.createServer((socket) => {
    connections++;
    socket.on('error', () => socket.destroy());
    let buffered: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      let client: string;
      if (variant === 'plain' || variant === 'proxywrap-v1') {
        client = socket.remoteAddress ?? '';
      } else if (variant === 'toa') {
        client = toa.realRemoteAddress(socket).address;
      } else if (variant === 'gate-v1' || variant === 'gate-v2') {
        client = gateResolve(socket).address;
      } else {
        const length = proxyHeaderLength(buffered, variant);
        if (length < 0) {
          if (buffered.length > 536) socket.destroy(); // larger than any valid header
          return;
        }
        client = clientOf(buffered.subarray(0, length), variant);
        buffered = buffered.subarray(length);
      }
      if (buffered.indexOf(10) < 0) return; // wait for the whole request line
      socket.off('data', onData);
      socket.end(`${client}\n`);
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1', 4096, () => {
    if (variant === 'toa') toa.enable(server);
    if (variant === 'gate-v1' || variant === 'gate-v2') toa.enable(server, { trustProxy: 'loopback', proxyProtocol: true });
    process.send?.({ port: (server.address() as net.AddressInfo).port });
  });
  // How the gate found its headers: taken off the socket at accept, or read from the stream.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const reads = (require(path.join(ROOT, 'dist', 'proxy', 'gate.js')) as { gateReads?: { peeked: number; streamed: number } }).gateReads;
  process.on('message', () => {
    const usage = process.cpuUsage();
    process.send?.({ cpu: usage.user + usage.system, connections, peeked: reads?.peeked ?? 0, streamed: reads?.streamed ?? 0 });
  });
  process.on('disconnect', () => process.exit(0));
}

// ---- driver ----

interface ServerProcess {
  variant: Variant;
  child: ChildProcess;
  port: number;
}

function spawnServer(variant: Variant): Promise<ServerProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['serve', variant], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    pinToCpu(child.pid ?? 0, 1);
    const timer = setTimeout(() => reject(new Error(`${variant} server did not start in 10 s`)), 10_000);
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer);
      resolve({ variant, child, port: m.port });
    });
    child.once('exit', (code) => reject(new Error(`${variant} server exited with ${code}`)));
  });
}

interface Usage {
  cpu: number;
  connections: number;
  peeked: number;
  streamed: number;
}

function usage(server: ServerProcess): Promise<Usage> {
  return new Promise((resolve) => {
    server.child.once('message', resolve);
    server.child.send('usage');
  });
}

function headerFor(variant: Variant, localPort: number): Buffer {
  if (WIRE[variant] === 'v1') {
    const text = new proxyProtocol.V1ProxyProtocol(
      proxyProtocol.INETProtocol.TCP4,
      new proxyProtocol.Peer(CLAIMED.address, localPort),
      new proxyProtocol.Peer('198.51.100.10', 80),
    ).build();
    return Buffer.from(text, 'latin1');
  }
  if (WIRE[variant] === 'v2') {
    const bytes = new proxyProtocol.V2ProxyProtocol(
      proxyProtocol.Command.PROXY,
      proxyProtocol.TransportProtocol.STREAM,
      new proxyProtocol.IPv4ProxyAddress(
        proxyProtocol.IPv4Address.createFrom(CLAIMED.address.split('.').map(Number) as [number, number, number, number]),
        localPort,
        proxyProtocol.IPv4Address.createFrom([198, 51, 100, 10]),
        80,
      ),
    ).build();
    return Buffer.from(bytes);
  }
  return Buffer.alloc(0);
}

interface Run {
  /** The gate's headers taken at accept, of those it read (NaN for the other servers). */
  peekedShare: number;
  rate: number;
  cpuPerConnection: number;
  p50: number;
  errors: number;
}

async function offer(server: ServerProcess, count: number): Promise<Run> {
  const expected = WIRE[server.variant] === 'none' ? '127.0.0.1' : CLAIMED.address;
  const before = await usage(server);
  const latencies: number[] = [];
  let started = 0;
  let finished = 0;
  let errors = 0;
  const t0 = process.hrtime.bigint();
  const elapsedMs = () => Number(process.hrtime.bigint() - t0) / 1e6;

  await new Promise<void>((resolve) => {
    const finish = (ok: boolean, began: number) => {
      finished++;
      if (ok) latencies.push(elapsedMs() - began);
      else errors++;
      if (finished === count) resolve();
    };
    const connectOne = () => {
      const began = elapsedMs();
      const socket = net.connect(server.port, '127.0.0.1');
      let answer = '';
      let settled = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        socket.destroy();
        finish(ok, began);
      };
      socket.setEncoding('latin1');
      socket.on('connect', () => {
        socket.write(Buffer.concat([headerFor(server.variant, socket.localPort ?? 0), Buffer.from(REQUEST)]));
      });
      socket.on('data', (chunk: string) => {
        answer += chunk;
      });
      socket.on('end', () => settle(answer === `${expected}\n`));
      socket.on('error', () => settle(false));
      socket.setTimeout(10_000, () => settle(false));
    };
    // Open loop: start what is due by now (RATE per second), bounded by MAX_IN_FLIGHT.
    const tick = () => {
      const due = Math.min(count, Math.floor((elapsedMs() * RATE) / 1000) + 1);
      while (started < due && started - finished < MAX_IN_FLIGHT) {
        started++;
        connectOne();
      }
      if (started < count) setTimeout(tick, 1);
    };
    tick();
  });

  const seconds = elapsedMs() / 1000;
  const after = await usage(server);
  const served = after.connections - before.connections;
  const peeked = after.peeked - before.peeked;
  const streamed = after.streamed - before.streamed;
  return {
    peekedShare: peeked + streamed > 0 ? peeked / (peeked + streamed) : NaN,
    rate: count / seconds,
    cpuPerConnection: (after.cpu - before.cpu) / Math.max(1, served),
    p50: median(latencies),
    errors: errors + Math.abs(count - served),
  };
}

// What the PROXY server does per connection beyond the plain one: find the header's end and parse
// it. Timed in a loop (ns per header), to set next to node-toa's first call in the micro table.
function parseCost(variant: 'proxy-v1' | 'proxy-v2'): number {
  const data = Buffer.concat([headerFor(variant, CLAIMED.port), Buffer.from(REQUEST)]);
  const iterations = QUICK ? 20_000 : 100_000;
  let sink = 0;
  for (let i = 0; i < 1000; i++) sink += clientOf(data.subarray(0, proxyHeaderLength(data, variant)), variant).length;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    sink += clientOf(data.subarray(0, proxyHeaderLength(data, variant)), variant).length;
  }
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  return sink > 0 ? ns : NaN;
}

async function drive(): Promise<void> {
  const pinned = pinToCpu(process.pid, 0);
  const servers: ServerProcess[] = [];
  try {
    for (const variant of VARIANTS) servers.push(await spawnServer(variant));
    const count = RATE * SECONDS;
    await Promise.all(servers.map((s) => offer(s, Math.min(count, 1000)))); // warm-up, not counted
    const runs = new Map<Variant, Run[]>(VARIANTS.map((v) => [v, []]));
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate which server's client starts first.
      const order = [...servers.slice(round % servers.length), ...servers.slice(0, round % servers.length)];
      // Unmeasured, right before: a server that sat idle since the last round starts slow.
      await Promise.all(order.map((s) => offer(s, Math.ceil(RATE / 5))));
      const results = await Promise.all(order.map((s) => offer(s, count)));
      order.forEach((s, i) => {
        const run = results[i];
        runs.get(s.variant)?.push(run);
        log(
          `proxy: round ${round + 1}/${ROUNDS} ${s.variant}: ${run.rate.toFixed(0)} conn/s, ` +
            `${run.cpuPerConnection.toFixed(1)} us CPU/conn, ${run.errors} errors` +
            (Number.isNaN(run.peekedShare) ? '' : `, ${(run.peekedShare * 100).toFixed(0)}% of headers taken at accept`),
        );
      });
      await sleep(200);
    }
    emit({
      pinned,
      rate: RATE,
      seconds: SECONDS,
      rounds: ROUNDS,
      connectionsPerRun: count,
      parseNs: { 'proxy-v1': parseCost('proxy-v1'), 'proxy-v2': parseCost('proxy-v2') },
      rows: VARIANTS.map((v) => {
        const list = runs.get(v) ?? [];
        return {
          name: v,
          label: LABELS[v],
          rate: median(list.map((r) => r.rate)),
          cpuPerConnection: median(list.map((r) => r.cpuPerConnection)),
          cpuSamples: list.map((r) => r.cpuPerConnection),
          // Per round against plain in the same round (same conditions), then the median.
          cpuVsPlain: median(list.map((r, i) => r.cpuPerConnection - (runs.get('plain') ?? [])[i].cpuPerConnection)),
          p50: median(list.map((r) => r.p50)),
          peekedShare: median(list.map((r) => r.peekedShare)),
          errors: list.reduce((sum, r) => sum + r.errors, 0),
        };
      }),
    });
  } finally {
    for (const s of servers) s.child.kill();
  }
}

if (process.argv[2] === 'serve') {
  serve(process.argv[3] as Variant);
} else {
  drive().catch((error: unknown) => {
    log(`proxy: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  });
}
