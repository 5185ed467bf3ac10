// Micro: what realRemoteAddress() costs on one connection, next to Node's own
// socket.remoteAddress and the bare syscalls (bench/syscall-floor.c, run by run.js). Each round
// accepts fresh connections on a server with TCP_SAVE_SYN, then times, over a whole batch each:
//   first     realRemoteAddress(socket), first call: the saved SYN read (and the tap's answer)
//   cached    realRemoteAddress(socket) again: the per-socket cache
//   remoteFirst   socket.remoteAddress on another batch of fresh sockets: Node's getpeername
//   remoteAgain   the same on a third batch: the A/A control (Node against Node)
//   remoteCached  socket.remoteAddress once Node has cached it
//   firstSubscribed  the first call with a `node-toa:resolve` subscriber: what publishing adds
//                (loopback); in the other modes the fourth batch is a second `first`
//   napiSyscall  one trivial getsockopt through the addon (getSaveSyn) on fresh sockets: what a
//                single syscall costs from inside Node, the floor's equivalent in this process
// The four first-read batches are timed in a rotating order; `ratio` is first / remoteFirst
// per round (and the second first / remoteAgain), `control` remoteAgain / remoteFirst. One sample per batch (ns per connection); the
// first WARMUP rounds are dropped, as in the preload part: V8 optimises the read's few functions
// after some thousand connections, and with one round dropped the ACK road's first 40 rounds read
// 2.71x where the later ones read 1.59-1.76x (loopback 1.43x, then 1.31-1.35x).
//
// BENCH_MICRO_MODE (run.js runs each; the peers, loopback, are trusted: configure()):
//   loopback  enable(server), in-process clients, no TOA: every answer is the peer
//   tap       enable(server, { ack: true }): the same, with the ACK tap open on the server
//   ack       enable(server, { ack: true }), clients in a ToaCgroup whose kernel writes a TOA into
//             the handshake ACK only: every answer must be that client, read from the ACK
// The subscriber and addon-syscall rows are timed in the loopback mode only.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import * as net from 'node:net';
import * as path from 'node:path';
import type * as Binding from '../lib/addon/binding';
import { QUICK, ROOT, acceptN, emit, envInt, loadToa, log, openRotated, skipped, stat, timeInTurn, timeCachedReads } from './common';
import { expectedClient, sockopsUnavailable, taggedClients, toaGroup, type TaggedClients, type ToaGroup } from './toa-clients';

const toa = loadToa();
// Private, and used only for the reference measure: the cheapest syscall the addon can make.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { binding } = require(path.join(ROOT, 'dist', 'addon', 'binding.js')) as typeof Binding;

const BATCH = envInt('BENCH_MICRO_BATCH', 50, 10, 2000);
const ROUNDS = envInt('BENCH_MICRO_ROUNDS', QUICK ? 16 : 80, 2, 500);
const WARMUP = envInt('BENCH_MICRO_WARMUP', QUICK ? 20 : 60, 1, 500);
// Passes over a batch for the cached measures (timed in chunks: common.ts timeCachedReads).
const CACHED_PASSES = 200;

type Mode = 'loopback' | 'tap' | 'ack';
const MODES: readonly Mode[] = ['loopback', 'tap', 'ack'];

function mode(): Mode {
  const raw = process.env.BENCH_MICRO_MODE ?? 'loopback';
  if (!(MODES as readonly string[]).includes(raw)) throw new RangeError(`BENCH_MICRO_MODE must be one of ${MODES.join(', ')}, got '${raw}'`);
  return raw as Mode;
}

// What the resolver read, under the registry symbol every copy of node-toa shares (documented:
// `node-toa.connection-facts.v<N>`). Read only to check that the bench timed the real path: a
// SYN was there for every socket.
function factsOf(socket: net.Socket): Record<string, unknown> | undefined {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description?.startsWith('node-toa.connection-facts'));
  return key === undefined ? undefined : (socket as unknown as Record<symbol, Record<string, unknown>>)[key];
}

interface Batch {
  accepted: net.Socket[];
  close(): void;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', 4096, () => resolve((server.address() as net.AddressInfo).port));
  });
}

async function openLocal(server: net.Server, port: number, count: number): Promise<Batch> {
  const clients: net.Socket[] = [];
  const accepted = await acceptN(server, count, (fail) => {
    for (let i = 0; i < count; i++) {
      const client = net.connect(port, '127.0.0.1');
      client.on('error', fail);
      clients.push(client);
    }
  });
  return {
    accepted,
    close() {
      for (const s of accepted) s.destroy();
      for (const s of clients) s.destroy();
    },
  };
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
  return timeCachedReads(sockets.length, CACHED_PASSES, (n) => {
    for (let pass = 0; pass < n; pass++) {
      for (let i = 0; i < sockets.length; i++) sink += toa.realRemoteAddress(sockets[i]).port;
    }
  });
}

function timeCachedRemoteAddress(sockets: net.Socket[]): number {
  return timeCachedReads(sockets.length, CACHED_PASSES, (n) => {
    for (let pass = 0; pass < n; pass++) {
      for (let i = 0; i < sockets.length; i++) sink += (sockets[i].remoteAddress as string).length;
    }
  });
}

function timeRemoteAddress(sockets: net.Socket[]): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < sockets.length; i++) sink += (sockets[i].remoteAddress as string).length;
  return nsPer(start, sockets.length);
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
    const facts = factsOf(s);
    if (facts === undefined || ('synPeer' in facts && facts.synPeer === undefined)) missing++;
  }
  return missing;
}

/** Every answer of the timed batch, against Node's own peer port (getpeername: micro installs nothing). */
function checkAnswers(sockets: net.Socket[], group: ToaGroup | null): void {
  for (const s of sockets) {
    const answer = toa.realRemoteAddress(s);
    const port = s.remotePort as number;
    const ok =
      group === null
        ? answer.address === '127.0.0.1' && answer.port === port && answer.source === 'peer'
        : answer.address === expectedClient(group, port) && answer.port === port && answer.source === 'toa' && answer.packet === 'ack';
    if (!ok) throw new Error(`micro: unexpected answer ${JSON.stringify(answer)} for a connection from port ${port}`);
  }
}

async function main(): Promise<void> {
  const name = mode();
  if (name === 'ack' && skipped('micro', sockopsUnavailable(), name)) return;
  // The peers here (loopback) stand for the proxy: trusted, as a user behind one configures it.
  toa.configure({ trustProxy: 'loopback' });
  const server = net.createServer({ pauseOnConnect: true });
  const port = await listen(server);
  toa.enable(server, name === 'loopback' ? undefined : { ack: true });
  if (!toa.isEnabled(server)) throw new Error('micro: TCP_SAVE_SYN is not on: the syscall path cannot be measured');
  if (name !== 'loopback' && toa.stats().taps.length === 0) throw new Error('micro: enable(server, { ack: true }) opened no tap');
  const group = name === 'ack' ? await toaGroup('ack') : null;
  const tagged: TaggedClients | null = group === null ? null : taggedClients(group, server, port);
  const open = (count: number): Promise<Batch> => (tagged === null ? openLocal(server, port, count) : tagged.open(count));
  const extras = name === 'loopback';

  const samples = {
    first: [] as number[],
    firstSubscribed: [] as number[],
    cached: [] as number[],
    remoteFirst: [] as number[],
    remoteAgain: [] as number[],
    remoteCached: [] as number[],
    napiSyscall: [] as number[],
    ratio: [] as number[],
    control: [] as number[],
  };
  let missingSyn = 0;
  try {
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      // a: realRemoteAddress(); b: socket.remoteAddress; d: the same again, the A/A control;
      // c: realRemoteAddress() with a subscriber (loopback), else again, the second pair with d.
      // Each side reads two batches a round: with Node's read run twice and ours once, Node's code
      // stayed warmer (bench/preload.ts says by how much).
      const [a, b, d, c] = await openRotated(4, round, () => open(BATCH));
      let first = 0;
      let remoteFirst = 0;
      let remoteAgain = 0;
      let firstSubscribed = NaN;
      let firstAgain = NaN;
      const timers = [
        () => (first = timeFirstCalls(a.accepted)),
        () => (remoteFirst = timeRemoteAddress(b.accepted)),
        () => (remoteAgain = timeRemoteAddress(d.accepted)),
        extras ? () => (firstSubscribed = timeFirstCallsSubscribed(c.accepted)) : () => (firstAgain = timeFirstCalls(c.accepted)),
      ];
      timeInTurn(round, timers);
      const napiSyscall = extras ? timeNapiSyscall(b.accepted) : NaN;
      const cached = timeCachedCalls(a.accepted);
      const remoteCached = timeCachedRemoteAddress(b.accepted);
      const ours = extras ? a.accepted : [...a.accepted, ...c.accepted];
      if (group === null) missingSyn += countMissingSyn(ours);
      checkAnswers(ours, group);
      for (const batch of [a, b, d, c]) batch.close();
      if (round < WARMUP) continue;
      samples.first.push(first);
      if (!extras) samples.first.push(firstAgain);
      samples.firstSubscribed.push(firstSubscribed);
      samples.cached.push(cached);
      samples.remoteFirst.push(remoteFirst);
      samples.remoteAgain.push(remoteAgain);
      samples.remoteCached.push(remoteCached);
      samples.napiSyscall.push(napiSyscall);
      samples.ratio.push(first / remoteFirst);
      if (!extras) samples.ratio.push(firstAgain / remoteAgain);
      samples.control.push(remoteAgain / remoteFirst);
    }
  } finally {
    server.close();
    await tagged?.stop();
  }
  if (missingSyn > 0) throw new Error(`micro: ${missingSyn} sockets had no saved SYN`);
  const timed = WARMUP + ROUNDS;
  if (extras && published !== timed * BATCH) throw new Error(`micro: ${published} resolve messages for ${timed * BATCH} connections`);
  log(`micro ${name}: ${ROUNDS} rounds (after ${WARMUP}) of ${BATCH} connections (sink ${sink % 10})`);
  emit({
    mode: name,
    batch: BATCH,
    rounds: ROUNDS,
    warmup: WARMUP,
    first: stat(samples.first),
    firstSubscribed: stat(samples.firstSubscribed),
    cached: stat(samples.cached),
    remoteFirst: stat(samples.remoteFirst),
    remoteAgain: stat(samples.remoteAgain),
    remoteCached: stat(samples.remoteCached),
    napiSyscall: stat(samples.napiSyscall),
    ratio: stat(samples.ratio),
    control: stat(samples.control),
  });
}

main().catch((error: unknown) => {
  log(`micro: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
