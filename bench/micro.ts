// Micro: what realRemoteAddress() costs on one connection, next to socket.remoteAddress and the
// bare syscalls (bench/syscall-floor.c, run by run.js). Each round accepts fresh loopback
// connections on a server with TCP_SAVE_SYN, then times, over the whole batch:
//   first     realRemoteAddress(socket), first call: reads the saved SYN (the syscall path)
//   cached    realRemoteAddress(socket) again: the per-socket cache
//   remoteAddress (first)   socket.remoteAddress on another batch of fresh sockets: getpeername
//   remoteAddress (cached)  socket.remoteAddress once Node has cached it
//   first (subscribed)  the first call with a `node-toa:resolve` subscriber: what publishing adds
//   napiSyscall  one trivial getsockopt through the addon (getSaveSyn) on fresh sockets: what a
//                single syscall costs from inside Node, the floor's equivalent in this process
// One sample per batch (ns per connection); the first round warms the JIT and is dropped.
import * as net from 'node:net';
import * as path from 'node:path';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type * as Binding from '../lib/addon/binding';
import { QUICK, ROOT, acceptN, emit, envInt, loadToa, log, median } from './common';

const toa = loadToa();
// Private, and used only for the reference measure: the cheapest syscall the addon can make.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { binding } = require(path.join(ROOT, 'dist', 'addon', 'binding.js')) as typeof Binding;

// The facts the resolver read, under the registry symbol every copy of node-toa shares. Read only
// to check that the bench timed the real path: a SYN was there for every socket.
const FACTS = Symbol.for('node-toa.connection-facts.v2');

const BATCH = envInt('BENCH_MICRO_BATCH', 50, 10, 2000);
const ROUNDS = envInt('BENCH_MICRO_ROUNDS', QUICK ? 16 : 80, 2, 500);
// Passes over a batch for the cached measures: enough for the timer's resolution not to matter.
const CACHED_PASSES = 200;

interface Batch {
  accepted: net.Socket[];
  clients: net.Socket[];
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', 4096, () => resolve((server.address() as net.AddressInfo).port));
  });
}

async function openBatch(server: net.Server, port: number, count: number): Promise<Batch> {
  const clients: net.Socket[] = [];
  const accepted = await acceptN(server, count, (fail) => {
    for (let i = 0; i < count; i++) {
      const client = net.connect(port, '127.0.0.1');
      client.on('error', fail);
      clients.push(client);
    }
  });
  return { accepted, clients };
}

function closeBatch(batch: Batch): void {
  for (const s of batch.accepted) s.destroy();
  for (const s of batch.clients) s.destroy();
}

function nsPer(start: bigint, calls: number): number {
  return Number(process.hrtime.bigint() - start) / calls;
}

// Keeps results alive so the JIT cannot drop the calls.
let sink = 0;

function timeFirstCalls(sockets: net.Socket[]): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < sockets.length; i++) sink += toa.realRemoteAddress(sockets[i]).port;
  return nsPer(start, sockets.length);
}

let published = 0;
const onResolve = (): void => {
  published++;
};

function timeFirstCallsSubscribed(sockets: net.Socket[]): number {
  subscribe('node-toa:resolve', onResolve);
  try {
    return timeFirstCalls(sockets);
  } finally {
    unsubscribe('node-toa:resolve', onResolve);
  }
}

function timeCachedCalls(sockets: net.Socket[]): number {
  const start = process.hrtime.bigint();
  for (let pass = 0; pass < CACHED_PASSES; pass++) {
    for (let i = 0; i < sockets.length; i++) sink += toa.realRemoteAddress(sockets[i]).port;
  }
  return nsPer(start, sockets.length * CACHED_PASSES);
}

function timeRemoteAddress(sockets: net.Socket[], passes: number): number {
  const start = process.hrtime.bigint();
  for (let pass = 0; pass < passes; pass++) {
    for (let i = 0; i < sockets.length; i++) sink += (sockets[i].remoteAddress as string).length;
  }
  return nsPer(start, sockets.length * passes);
}

function timeNapiSyscall(sockets: net.Socket[]): number {
  if (binding === null) return NaN;
  const fds = sockets.map((s) => (s as unknown as { _handle: { fd: number } })._handle.fd);
  const start = process.hrtime.bigint();
  for (let i = 0; i < fds.length; i++) sink += binding.getSaveSyn(fds[i]);
  return nsPer(start, fds.length);
}

function countMissingSyn(sockets: net.Socket[]): number {
  let missing = 0;
  for (const s of sockets) {
    const facts = (s as unknown as Record<symbol, { synPeer?: unknown } | undefined>)[FACTS];
    if (facts?.synPeer === undefined) missing++;
  }
  return missing;
}

function checkAnswers(batch: Batch): void {
  const byPort = new Set(batch.clients.map((c) => c.localPort));
  for (const s of batch.accepted) {
    const answer = toa.realRemoteAddress(s);
    if (answer.address !== '127.0.0.1' || !byPort.has(answer.port) || answer.source !== 'peer') {
      throw new Error(`micro: unexpected answer ${JSON.stringify(answer)}`);
    }
  }
}

async function main(): Promise<void> {
  const server = net.createServer({ pauseOnConnect: true });
  const port = await listen(server);
  toa.enable(server);
  if (!toa.isEnabled(server)) throw new Error('micro: TCP_SAVE_SYN is not on: the syscall path cannot be measured');

  const samples = {
    first: [] as number[],
    firstSubscribed: [] as number[],
    cached: [] as number[],
    remoteFirst: [] as number[],
    remoteCached: [] as number[],
    napiSyscall: [] as number[],
  };
  let missingSyn = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const a = await openBatch(server, port, BATCH);
    const b = await openBatch(server, port, BATCH);
    const c = await openBatch(server, port, BATCH);
    // Rotate which batch is timed first, so none always runs right after the accepts.
    let first = 0;
    let remoteFirst = 0;
    let firstSubscribed = 0;
    const timers = [
      () => (first = timeFirstCalls(a.accepted)),
      () => (remoteFirst = timeRemoteAddress(b.accepted, 1)),
      () => (firstSubscribed = timeFirstCallsSubscribed(c.accepted)),
    ];
    for (let i = 0; i < timers.length; i++) timers[(round + i) % timers.length]();
    const napiSyscall = timeNapiSyscall(b.accepted);
    const cached = timeCachedCalls(a.accepted);
    const remoteCached = timeRemoteAddress(a.accepted, CACHED_PASSES);
    missingSyn += countMissingSyn(a.accepted);
    checkAnswers(a);
    closeBatch(a);
    closeBatch(b);
    closeBatch(c);
    if (round === 0) continue; // JIT warm-up
    samples.first.push(first);
    samples.firstSubscribed.push(firstSubscribed);
    samples.cached.push(cached);
    samples.remoteFirst.push(remoteFirst);
    samples.remoteCached.push(remoteCached);
    samples.napiSyscall.push(napiSyscall);
  }
  server.close();
  if (missingSyn > 0) throw new Error(`micro: ${missingSyn} sockets had no saved SYN`);
  if (published !== ROUNDS * BATCH) throw new Error(`micro: ${published} resolve messages for ${ROUNDS * BATCH} connections`);
  log(`micro: ${ROUNDS - 1} rounds of ${BATCH} connections (sink ${sink % 10})`);
  emit({
    batch: BATCH,
    rounds: ROUNDS - 1,
    first: { median: median(samples.first), samples: samples.first },
    firstSubscribed: { median: median(samples.firstSubscribed), samples: samples.firstSubscribed },
    cached: { median: median(samples.cached), samples: samples.cached },
    remoteFirst: { median: median(samples.remoteFirst), samples: samples.remoteFirst },
    remoteCached: { median: median(samples.remoteCached), samples: samples.remoteCached },
    napiSyscall: { median: median(samples.napiSyscall), samples: samples.napiSyscall },
  });
}

main().catch((error: unknown) => {
  log(`micro: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
