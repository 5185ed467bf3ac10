// Preload: what node-toa/preload (install()) costs on `socket.remoteAddress`, against Node's own,
// in one process on fresh loopback sockets of one server (which saves SYNs: the preload's listen
// hook set TCP_SAVE_SYN before listen(2), and opened the server's ACK tap where the mode asks).
// Each round accepts four batches and times, interleaved (the order rotates):
//   first      socket.remoteAddress, first read, preload on: the saved SYN read (and the tap's
//              answer) and the decision
//   nodeFirst  socket.remoteAddress, first read, read by Node's own _getpeername: getpeername
//   firstAgain / nodeAgain   the same two again on two more batches: the second pair, and with
//              nodeFirst the A/A control (Node against Node)
//   cached / nodeCached   later reads of the first two batches (CACHED_PASSES passes)
// Each side reads two batches a round. With Node's read run twice (pair and control) and the
// preload's once, Node's code stayed warmer, and the preload read 0.05-0.2x dearer than with
// both run alike (2026-12-07: no TOA 1.20x against 0.97-1.01x, TOA in the ACK 1.54x against
// 1.31-1.38x), the bias preload-http had until then with its shared plain server.
// Both in one process, without switching the preload on and off (replacing a prototype's method
// sends optimised code back to the interpreter, which would time V8, not the read): the preload
// stays installed, and each socket gets, untimed, the `_getpeername` it is read with as its own
// property, the preload's on one batch and Node's on the others. `remoteAddress` is Node's getter
// calling `this._getpeername()` either way.
// One sample per batch (ns per connection), and the ratios per round. The first WARMUP rounds are
// dropped: the preload's path is a few functions that V8 optimises after some thousand
// connections (a server's first seconds), and a median over them would time the interpreter.
//
// BENCH_PRELOAD_MODE (run.js runs each):
//   loopback  in-process clients, no TOA, SYNs only (NODE_TOA_ACK=off): the answer is Node's own value
//   syn       clients in a ToaCgroup whose kernel writes a TOA into every SYN; SYNs only (ack: false)
//   syn-tap   the same clients, the ACK tap open as well (ack: true, NODE_TOA_ACK=on)
//   ack       clients whose kernel writes the TOA into the handshake ACK only; the tap open (ack: true,
//             read through the server's sock_ops program where it loads)
//   ack-packet  the same, the tap reading packet sockets (ack: { source: 'packet' })
// The peers (loopback) are trusted; with TOA, every answer must be the client the option names,
// read from the packet the mode says, or the part fails.
import * as net from 'node:net';
import { QUICK, emit, envInt, loadToa, log, openRotated, skipped, stat, timeInTurn, timeCachedReads } from './common';
import { listen, localConnector, toaConnector } from './preload-sockets';
import { sockopsUnavailable, type ToaPacket } from './toa-clients';

const toa = loadToa();

const BATCH = envInt('BENCH_MICRO_BATCH', 50, 10, 2000);
const ROUNDS = envInt('BENCH_PRELOAD_ROUNDS', QUICK ? 16 : 80, 2, 500);
const WARMUP = envInt('BENCH_PRELOAD_WARMUP', QUICK ? 20 : 60, 1, 500);
const CACHED_PASSES = 200;

type Mode = 'loopback' | 'syn' | 'syn-tap' | 'ack' | 'ack-packet';
const MODES: Record<Mode, { packet: ToaPacket | null; ack: boolean | { source: 'packet' } }> = {
  loopback: { packet: null, ack: false },
  syn: { packet: 'syn', ack: false },
  'syn-tap': { packet: 'syn', ack: true },
  ack: { packet: 'ack', ack: true },
  'ack-packet': { packet: 'ack', ack: { source: 'packet' } },
};

function mode(): Mode {
  const raw = process.env.BENCH_PRELOAD_MODE ?? 'loopback';
  if (!Object.hasOwn(MODES, raw)) throw new RangeError(`BENCH_PRELOAD_MODE must be one of ${Object.keys(MODES).join(', ')}, got '${raw}'`);
  return raw as Mode;
}

function nsPer(start: bigint, calls: number): number {
  return Number(process.hrtime.bigint() - start) / calls;
}

let sink = 0;

function timeFirstReads(sockets: net.Socket[]): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < sockets.length; i++) sink += (sockets[i].remoteAddress as string).length;
  return nsPer(start, sockets.length);
}

function timeCachedReadsOf(sockets: net.Socket[]): number {
  return timeCachedReads(sockets.length, CACHED_PASSES, (n) => {
    for (let pass = 0; pass < n; pass++) {
      for (let i = 0; i < sockets.length; i++) sink += (sockets[i].remoteAddress as string).length;
    }
  });
}

type GetPeername = (this: net.Socket) => unknown;

/** Gives each socket `fn` as its own `_getpeername` (untimed). */
function readWith(sockets: net.Socket[], fn: GetPeername): void {
  for (const s of sockets) (s as unknown as { _getpeername: GetPeername })._getpeername = fn;
}

async function main(): Promise<void> {
  const name = mode();
  const { packet, ack } = MODES[name];
  if (packet !== null && skipped('preload', sockopsUnavailable(), name)) return;
  const proto = net.Socket.prototype as unknown as { _getpeername: GetPeername };
  const nodeOwn = proto._getpeername;
  // What the preload does with NODE_TOA_TRUST_PROXY=loopback and NODE_TOA_ACK=on|off.
  const undo = toa.install({ trustProxy: 'loopback', ack });
  const preload = proto._getpeername;
  if (preload === nodeOwn) throw new Error('preload: install() did not replace _getpeername');
  const server = net.createServer({ pauseOnConnect: true });
  const port = await listen(server);
  if (!toa.isEnabled(server)) throw new Error('preload: the listen hook did not set TCP_SAVE_SYN');
  if (ack && toa.stats().taps.length === 0) throw new Error('preload: install({ ack: true }) opened no tap');
  const connector = packet === null ? localConnector(server, port) : await toaConnector(server, port, packet);

  const samples = {
    first: [] as number[],
    nodeFirst: [] as number[],
    nodeAgain: [] as number[],
    cached: [] as number[],
    nodeCached: [] as number[],
    ratio: [] as number[],
    control: [] as number[],
  };
  // Where the answers came from (source, and the packet for 'toa'), over the measured rounds.
  let sources: Record<string, number> = {};
  try {
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      // a, d: read with the preload; b, c: by Node alone (c/b is the A/A control).
      const [a, b, c, d] = await openRotated(4, round, () => connector.open(BATCH));
      readWith(a.accepted, preload);
      readWith(b.accepted, nodeOwn);
      readWith(c.accepted, nodeOwn);
      readWith(d.accepted, preload);
      let first = 0;
      let nodeFirst = 0;
      let nodeAgain = 0;
      let firstAgain = 0;
      const timers = [
        () => (first = timeFirstReads(a.accepted)),
        () => (nodeFirst = timeFirstReads(b.accepted)),
        () => (nodeAgain = timeFirstReads(c.accepted)),
        () => (firstAgain = timeFirstReads(d.accepted)),
      ];
      timeInTurn(round, timers);
      const nodeCached = timeCachedReadsOf(b.accepted);
      const cached = timeCachedReadsOf(a.accepted);
      for (const s of [...a.accepted, ...d.accepted]) {
        connector.check(s, s.remoteAddress, s.remoteFamily);
        const answer = toa.realRemoteAddress(s, { trustProxy: 'loopback' });
        const key = answer.source === 'toa' ? `toa/${answer.packet}` : answer.source;
        sources[key] = (sources[key] ?? 0) + 1;
      }
      for (const s of [...b.accepted, ...c.accepted]) {
        // Node's own answers: the peer, as getpeername says it.
        if (!(s.remoteAddress as string).includes('127.0.0.1')) throw new Error(`preload: Node said ${s.remoteAddress}`);
      }
      a.close();
      b.close();
      c.close();
      d.close();
      if (round < WARMUP) {
        sources = {};
        continue;
      }
      samples.first.push(first);
      samples.nodeFirst.push(nodeFirst);
      samples.nodeAgain.push(nodeAgain);
      samples.cached.push(cached);
      samples.nodeCached.push(nodeCached);
      samples.first.push(firstAgain);
      samples.ratio.push(first / nodeFirst, firstAgain / nodeAgain);
      samples.control.push(nodeAgain / nodeFirst);
    }
  } finally {
    undo();
    server.close();
    await connector.stop();
  }
  const want = packet === null ? 'peer' : `toa/${packet}`;
  const answered = sources[want] ?? 0;
  if (answered !== 2 * ROUNDS * BATCH) {
    throw new Error(`preload ${name}: ${answered} of ${2 * ROUNDS * BATCH} answers were ${want} (${JSON.stringify(sources)})`);
  }
  log(`preload ${name}: ${ROUNDS} rounds (after ${WARMUP}) of ${BATCH} connections (sink ${sink % 10})`);
  emit({
    mode: name,
    packet,
    ack,
    batch: BATCH,
    rounds: ROUNDS,
    warmup: WARMUP,
    sources,
    first: stat(samples.first),
    nodeFirst: stat(samples.nodeFirst),
    nodeAgain: stat(samples.nodeAgain),
    cached: stat(samples.cached),
    nodeCached: stat(samples.nodeCached),
    ratio: stat(samples.ratio),
    control: stat(samples.control),
  });
}

main().catch((error: unknown) => {
  log(`preload: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
