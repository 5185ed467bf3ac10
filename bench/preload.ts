// Preload: what node-toa/preload (install()) costs on `socket.remoteAddress`, against Node's own,
// in one process on fresh loopback sockets of one server (which saves SYNs: the preload's listen
// hook set TCP_SAVE_SYN before listen(2)). Each round accepts two batches and times, interleaved
// (which goes first alternates):
//   first      socket.remoteAddress, first read, preload on: the saved SYN read and the decision
//   nodeFirst  socket.remoteAddress, first read, read by Node's own _getpeername: getpeername
//   cached / nodeCached   later reads of the same sockets (CACHED_PASSES passes)
// Both in one process, without switching the preload on and off (replacing a prototype's method
// sends optimised code back to the interpreter, which would time V8, not the read): the preload
// stays installed, and each socket gets, untimed, the `_getpeername` it is read with as its own
// property, the preload's on one batch and Node's on the other. `remoteAddress` is Node's getter
// calling `this._getpeername()` either way.
// One sample per batch (ns per connection). The first WARMUP rounds are dropped: the preload's
// path is a few functions that V8 optimises after some thousand connections (a server's first
// seconds), and a median over them would time the interpreter.
//
// `BENCH_PRELOAD_TOA=1` (set by run.js when the sock_ops harness can run) makes the connections
// in a child inside a ToaCgroup, so every SYN carries a TOA from a trusted peer (loopback).
import * as net from 'node:net';
import * as path from 'node:path';
import { QUICK, ROOT, acceptN, emit, envInt, loadToa, log, median } from './common';

const toa = loadToa();

const BATCH = envInt('BENCH_MICRO_BATCH', 50, 10, 2000);
const ROUNDS = envInt('BENCH_PRELOAD_ROUNDS', QUICK ? 16 : 80, 2, 500);
const WARMUP = envInt('BENCH_PRELOAD_WARMUP', QUICK ? 20 : 60, 1, 500);
const CACHED_PASSES = 200;
// install() options: trust loopback (the peers here), SYNs only (the tap is measured in tap.ts).
const OPTIONS = { trustProxy: 'loopback', ack: false } as const;

interface Batch {
  accepted: net.Socket[];
  close(): void;
}

/** A source of fresh accepted sockets: in-process clients, or a client in a ToaCgroup. */
interface Connector {
  open(count: number): Promise<Batch>;
  /** What an answer must be for the socket (throws when wrong). */
  check(socket: net.Socket, address: string | undefined, family: string | undefined): void;
  stop(): Promise<void>;
  toa: boolean;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // No host: '::', dual stack, so Node writes these IPv4 peers as ::ffff:127.0.0.1, and so must we.
    server.listen(0, 4096, () => resolve((server.address() as net.AddressInfo).port));
  });
}

function localConnector(server: net.Server, port: number): Connector {
  return {
    toa: false,
    async open(count) {
      const clients: net.Socket[] = [];
      const accepted = await acceptN(server, count, () => {
        for (let i = 0; i < count; i++) clients.push(net.connect(port, '127.0.0.1').on('error', () => undefined));
      });
      return {
        accepted,
        close() {
          for (const s of accepted) s.destroy();
          for (const s of clients) s.destroy();
        },
      };
    },
    check(_socket, address, family) {
      if (address !== '::ffff:127.0.0.1' || family !== 'IPv6') throw new Error(`preload: unexpected answer ${address} ${family}`);
    },
    async stop() {},
  };
}

// Connections from a child in a ToaCgroup: its kernel writes kind 254 into every SYN.
async function toaConnector(server: net.Server, port: number): Promise<Connector> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ToaCgroup } = require(path.join(ROOT, 'build-bench', 'helpers', 'sockops.js')) as typeof import('../test/helpers/sockops');
  const group = await ToaCgroup.create({ packets: ['syn'] });
  // A child that holds `count` connections open on each line it reads ("N\n"), and closes them on "close\n".
  const script = `
    const net = require('node:net');
    let open = [];
    require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
      if (line === 'close') { for (const s of open) s.destroy(); open = []; return; }
      for (let i = 0; i < Number(line); i++) open.push(net.connect(${port}, '127.0.0.1').on('error', () => {}));
    });`;
  const child = group.spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'ignore', 'inherit'] });
  return {
    toa: true,
    async open(count) {
      const accepted = await acceptN(server, count, () => child.stdin!.write(`${count}\n`));
      return {
        accepted,
        close() {
          for (const s of accepted) s.destroy();
          child.stdin!.write('close\n');
        },
      };
    },
    check(socket, address, family) {
      const peer = (socket as unknown as { _handle: { getpeername(out: object): number } })._handle;
      const out: { port?: number } = {};
      peer.getpeername(out);
      const want = group.expected(out.port!).address;
      if (address !== want || family !== 'IPv4') throw new Error(`preload: expected ${want}, got ${address} ${family}`);
    },
    async stop() {
      child.kill('SIGKILL');
      await group.close();
    },
  };
}

function nsPer(start: bigint, calls: number): number {
  return Number(process.hrtime.bigint() - start) / calls;
}

let sink = 0;

function timeReads(sockets: net.Socket[], passes: number): number {
  const start = process.hrtime.bigint();
  for (let pass = 0; pass < passes; pass++) {
    for (let i = 0; i < sockets.length; i++) sink += (sockets[i].remoteAddress as string).length;
  }
  return nsPer(start, sockets.length * passes);
}

type GetPeername = (this: net.Socket) => unknown;

/** Gives each socket `fn` as its own `_getpeername` (untimed). */
function readWith(sockets: net.Socket[], fn: GetPeername): void {
  for (const s of sockets) (s as unknown as { _getpeername: GetPeername })._getpeername = fn;
}

function sockopsUnavailable(): string | undefined {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { sockopsAvailable } = require(path.join(ROOT, 'build-bench', 'helpers', 'sockops.js')) as typeof import('../test/helpers/sockops');
  const a = sockopsAvailable();
  return a.ok ? undefined : a.reason;
}

async function main(): Promise<void> {
  if (process.env.BENCH_PRELOAD_TOA === '1') {
    const why = sockopsUnavailable();
    if (why !== undefined) {
      log(`preload: with TOA skipped, the sock_ops harness cannot run here: ${why}`);
      emit({ skipped: why });
      return;
    }
  }
  const proto = net.Socket.prototype as unknown as { _getpeername: GetPeername };
  const nodeOwn = proto._getpeername;
  const undo = toa.install(OPTIONS);
  const preload = proto._getpeername;
  if (preload === nodeOwn) throw new Error('preload: install() did not replace _getpeername');
  const server = net.createServer({ pauseOnConnect: true });
  const port = await listen(server);
  if (!toa.isEnabled(server)) throw new Error('preload: the listen hook did not set TCP_SAVE_SYN');
  const withToa = process.env.BENCH_PRELOAD_TOA === '1';
  const connector = withToa ? await toaConnector(server, port) : localConnector(server, port);

  const samples = { first: [] as number[], nodeFirst: [] as number[], cached: [] as number[], nodeCached: [] as number[] };
  let sources = { toa: 0, peer: 0 };
  try {
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      const a = await connector.open(BATCH); // read with the preload
      const b = await connector.open(BATCH); // read by Node alone
      readWith(a.accepted, preload);
      readWith(b.accepted, nodeOwn);
      let first: number;
      let nodeFirst: number;
      // Which side is timed first alternates.
      if (round % 2 === 0) {
        first = timeReads(a.accepted, 1);
        nodeFirst = timeReads(b.accepted, 1);
      } else {
        nodeFirst = timeReads(b.accepted, 1);
        first = timeReads(a.accepted, 1);
      }
      const nodeCached = timeReads(b.accepted, CACHED_PASSES);
      const cached = timeReads(a.accepted, CACHED_PASSES);
      for (const s of a.accepted) {
        connector.check(s, s.remoteAddress, s.remoteFamily);
        sources[toa.realRemoteAddress(s, { trustProxy: 'loopback' }).source === 'toa' ? 'toa' : 'peer']++;
      }
      for (const s of b.accepted) {
        // Node's own answers: the peer, as getpeername says it.
        if (!(s.remoteAddress as string).includes('127.0.0.1')) throw new Error(`preload: Node said ${s.remoteAddress}`);
      }
      a.close();
      b.close();
      if (round < WARMUP) {
        sources = { toa: 0, peer: 0 };
        continue;
      }
      samples.first.push(first);
      samples.nodeFirst.push(nodeFirst);
      samples.cached.push(cached);
      samples.nodeCached.push(nodeCached);
    }
  } finally {
    undo();
    server.close();
    await connector.stop();
  }
  if (withToa && sources.peer > 0) throw new Error(`preload: ${sources.peer} connections had no TOA answer`);
  const ratios = samples.first.map((f, i) => f / samples.nodeFirst[i]);
  log(`preload: ${ROUNDS} rounds (after ${WARMUP}) of ${BATCH} connections${withToa ? ' with TOA' : ''} (sink ${sink % 10})`);
  emit({
    batch: BATCH,
    rounds: ROUNDS,
    warmup: WARMUP,
    toa: withToa,
    sources,
    first: { median: median(samples.first), samples: samples.first },
    nodeFirst: { median: median(samples.nodeFirst), samples: samples.nodeFirst },
    cached: { median: median(samples.cached), samples: samples.cached },
    nodeCached: { median: median(samples.nodeCached), samples: samples.nodeCached },
    ratio: { median: median(ratios), samples: ratios },
  });
}

main().catch((error: unknown) => {
  log(`preload: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
