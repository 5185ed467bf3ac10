// First read: where the preload's first `socket.remoteAddress` spends its time, rung by rung,
// each against Node's own first read in the same round. The rungs are the preload's own code cut
// short (the same reader, record and resolver it uses, reached through dist/):
//   read     the addon's reader alone: getsockopt(TCP_SAVED_SYN), its parse and, with the tap
//            open, the tap's answer, written into the record (no JavaScript object made)
//   decode   read, then the record decoded into the facts the policy reads
//   decide   the installed resolver: read, decode, decide, count, keep (what the preload's getter
//            asks for, without its own checks and Node's `_peername`)
//   preload  the preload's whole first `socket.remoteAddress`, as `preload` measures it
// The `read` rung is the floor of any design that keeps the policy in JavaScript: the one system
// call and the parse, with nothing decided. Each rung has a batch of Node's own first reads as its
// pair, so both sides read as many batches a round (preload.ts says why that matters); the eight
// batches are timed in a rotating order, and the ratio of each rung is the median of its per-round
// ratios to its pair. `control` is Node against Node (the first two pairs' Node batches).
//
// BENCH_FIRST_READ_MODE (run.js runs each): loopback (no TOA), syn (TOA in the SYN), ack (TOA in
// the handshake ACK, the tap open: the sock_ops program where it loads), as in preload.ts.
import * as net from 'node:net';
import * as path from 'node:path';
import type * as Binding from '../lib/addon/binding';
import type * as Record from '../lib/addon/record';
import type * as Kinds from '../lib/core/kinds';
import type * as Defaults from '../lib/resolve/defaults';
import type * as Facts from '../lib/resolve/facts';
import type * as Registry from '../lib/tap/registry';
import { QUICK, ROOT, emit, envInt, loadToa, log, openRotated, skipped, stat, timeInTurn } from './common';
import { listen, localConnector, toaConnector, type Connector } from './preload-sockets';
import { sockopsUnavailable, type ToaPacket } from './toa-clients';

const toa = loadToa();
// The preload's internals, for the rungs below its whole read.
function internal<T>(file: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ROOT, 'dist', file)) as T;
}
const { binding } = internal<typeof Binding>('addon/binding.js');
const { RECORD_SIZE, decodeRecord } = internal<typeof Record>('addon/record.js');
const { kindTableAll } = internal<typeof Kinds>('core/kinds.js');
const { defaultResolver } = internal<typeof Defaults>('resolve/defaults.js');
const { blankFacts } = internal<typeof Facts>('resolve/facts.js');
const { tapOf } = internal<typeof Registry>('tap/registry.js');

const BATCH = envInt('BENCH_MICRO_BATCH', 50, 10, 2000);
const ROUNDS = envInt('BENCH_PRELOAD_ROUNDS', QUICK ? 16 : 80, 2, 500);
const WARMUP = envInt('BENCH_PRELOAD_WARMUP', QUICK ? 20 : 60, 1, 500);

type Mode = 'loopback' | 'syn' | 'ack';
const MODES: Record<Mode, { packet: ToaPacket | null; ack: boolean }> = {
  loopback: { packet: null, ack: false },
  syn: { packet: 'syn', ack: false },
  ack: { packet: 'ack', ack: true },
};

const RUNGS = ['read', 'decode', 'decide', 'preload'] as const;
type Rung = (typeof RUNGS)[number];

function mode(): Mode {
  const raw = process.env.BENCH_FIRST_READ_MODE ?? 'loopback';
  if (!Object.hasOwn(MODES, raw)) throw new RangeError(`BENCH_FIRST_READ_MODE must be one of ${Object.keys(MODES).join(', ')}, got '${raw}'`);
  return raw as Mode;
}

type GetPeername = (this: net.Socket) => unknown;
interface Handle {
  fd: number;
}

let sink = 0;

function timed(sockets: net.Socket[], each: (socket: net.Socket) => number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < sockets.length; i++) sink += each(sockets[i]);
  return Number(process.hrtime.bigint() - start) / sockets.length;
}

async function main(): Promise<void> {
  const name = mode();
  const { packet, ack } = MODES[name];
  if (packet !== null && skipped('first-read', sockopsUnavailable(), name)) return;
  if (binding === null) throw new Error('first-read: the addon did not load');
  const proto = net.Socket.prototype as unknown as { _getpeername: GetPeername };
  const nodeOwn = proto._getpeername;
  const undo = toa.install({ trustProxy: 'loopback', ack });
  const preload = proto._getpeername;
  const server = net.createServer({ pauseOnConnect: true });
  const port = await listen(server);
  const connector: Connector = packet === null ? localConnector(server, port) : await toaConnector(server, port, packet);

  // The reader the resolver makes (resolve/facts.ts): bound to a record, the kind table and, with
  // the tap open, the server's tap. Made at the first read, when the tap is known.
  const record = new Uint8Array(RECORD_SIZE);
  let reader: ((fd: number) => number) | undefined;
  const readerOf = (socket: net.Socket) => {
    const tap = tapOf(socket, server);
    return (reader ??= binding.makeSynReader(kindTableAll(), record, false, ...(tap === undefined ? [] : [tap.tap])));
  };
  const fdOf = (socket: net.Socket) => (socket as unknown as { _handle: Handle })._handle.fd;
  const nodeEndpoint = (socket: object) => {
    const p = nodeOwn.call(socket as net.Socket) as { address: string; port: number; family: string };
    return { address: p.address, port: p.port, family: p.family === 'IPv6' ? ('IPv6' as const) : ('IPv4' as const) };
  };
  const rungs: Record<Rung, (socket: net.Socket) => number> = {
    read: (s) => readerOf(s)(fdOf(s)) + record[0],
    decode: (s) => {
      readerOf(s)(fdOf(s));
      const facts = decodeRecord(record, blankFacts(undefined));
      return facts.savedSyn === true ? 1 : 0;
    },
    decide: (s) => defaultResolver().peerName(s, fdOf(s), server, nodeEndpoint).address.length,
    preload: (s) => (s.remoteAddress as string).length,
  };

  const samples = Object.fromEntries(RUNGS.map((r) => [r, { ns: [] as number[], ratio: [] as number[] }])) as Record<
    Rung,
    { ns: number[]; ratio: number[] }
  >;
  const node: number[] = [];
  const control: number[] = [];
  let checked = 0;
  try {
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      // Batch 2k: rung k; batch 2k + 1: Node's own first read, its pair.
      const batches = await openRotated(2 * RUNGS.length, round, () => connector.open(BATCH));
      RUNGS.forEach((_, k) => {
        for (const s of batches[2 * k].accepted) (s as unknown as { _getpeername: GetPeername })._getpeername = preload;
        for (const s of batches[2 * k + 1].accepted) (s as unknown as { _getpeername: GetPeername })._getpeername = nodeOwn;
      });
      const ours: number[] = new Array(RUNGS.length).fill(0);
      const theirs: number[] = new Array(RUNGS.length).fill(0);
      const timers = RUNGS.flatMap((rung, k) => [
        () => (ours[k] = timed(batches[2 * k].accepted, rungs[rung])),
        () => (theirs[k] = timed(batches[2 * k + 1].accepted, (s) => (s.remoteAddress as string).length)),
      ]);
      timeInTurn(round, timers);
      // What the preload answered (its rung's batch, and the decide rung's, which kept its answer).
      for (const s of [...batches[4].accepted, ...batches[6].accepted]) {
        connector.check(s, s.remoteAddress, s.remoteFamily);
        checked++;
      }
      for (const b of batches) b.close();
      if (round < WARMUP) continue;
      RUNGS.forEach((rung, k) => {
        samples[rung].ns.push(ours[k]);
        samples[rung].ratio.push(ours[k] / theirs[k]);
      });
      node.push(theirs[0]);
      control.push(theirs[1] / theirs[0]);
    }
  } finally {
    undo();
    server.close();
    await connector.stop();
  }
  log(`first-read ${name}: ${ROUNDS} rounds (after ${WARMUP}) of ${2 * RUNGS.length} x ${BATCH} connections, ${checked} answers checked (sink ${sink % 10})`);
  emit({
    mode: name,
    batch: BATCH,
    rounds: ROUNDS,
    warmup: WARMUP,
    rungs: Object.fromEntries(RUNGS.map((r) => [r, { ns: stat(samples[r].ns), ratio: stat(samples[r].ratio) }])),
    node: stat(node),
    control: stat(control),
  });
}

main().catch((error: unknown) => {
  log(`first-read: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
