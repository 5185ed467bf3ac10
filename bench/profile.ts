// Profile: where the preload's cost per connection goes. The two servers of the preload-http part
// (a plain node:http app and the same under -r node-toa/preload, the clients in a ToaCgroup whose
// kernel writes the TOA), loaded at once, sampled by `perf record -g` (the servers run with
// --perf-basic-prof, so JavaScript frames have names). Each process's samples are split by call
// stack: those under node-toa's first read (a frame of the preload's getter module, whose
// `_getpeername` and `first` hold the native call, the decision and the answer), under the tap's
// periodic drain, and under Node's own
// getpeername in the plain server. The difference of the first two from the third is what
// node-toa's own code costs, in points of server CPU; the rest of the measured difference is
// Node's code running slower after it (caches and TLB, on a VM where each syscall empties the TLB).
// Needs root, perf (Debian: linux-perf) and the sock_ops harness; else the part says why and
// prints nothing else.
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { QUICK, ROOT, emit, envInt, log, skipped } from './common';
import { load, startServer, stats } from './http-servers';
import { sockopsUnavailable, toaGroup, type ToaPacket } from './toa-clients';

const COUNT = envInt('BENCH_PROFILE_COUNT', QUICK ? 3000 : 12_000, 500, 100_000);
const WARM = envInt('BENCH_PROFILE_WARM', QUICK ? 1000 : 3000, 0, 100_000);
const PARALLEL = 16;

type Road = 'syn' | 'ack' | 'ack-packet';
const ROADS: Record<Road, { packet: ToaPacket; ack: 'on' | 'off' | 'packet' }> = {
  syn: { packet: 'syn', ack: 'off' },
  ack: { packet: 'ack', ack: 'on' },
  'ack-packet': { packet: 'ack', ack: 'packet' },
};

// Call-stack frames (perf script's symbol text) that mark each share.
// Any function of the getter's module: V8 inlines `_getpeername` into Node's getter (a marker on
// it alone read 0.00 % once the resolver's functions got smaller), and may inline more.
const PRELOAD_READ = `${path.join(ROOT, 'dist', 'install', 'sockets.js')}:`;
const DRAIN = `drainAll ${path.join(ROOT, 'dist', 'tap', 'registry.js')}`;
const NODE_READ = 'GetSockOrPeerName<node::TCPWrap, &uv_tcp_getpeername>';

interface Shares {
  samples: number;
  read: number;
  drain: number;
  nodeRead: number;
}

// perf script prints each sample as its pid, one line per frame (address and symbol), a blank line.
/** Per process: its samples, and the share (percent) whose stack holds each marker. */
function shares(data: string, pids: number[]): Map<number, Shares> {
  const r = spawnSync('perf', ['script', '-i', data, '-F', 'pid,ip,sym'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`perf script failed: ${r.stderr}`);
  const counts = new Map(pids.map((pid) => [pid, { samples: 0, read: 0, drain: 0, nodeRead: 0 }]));
  for (const sample of r.stdout.split('\n\n')) {
    const lines = sample.trim().split('\n');
    const c = counts.get(Number.parseInt(lines[0], 10));
    if (c === undefined) continue;
    c.samples++;
    if (lines.some((l) => l.includes(PRELOAD_READ))) c.read++;
    if (lines.some((l) => l.includes(DRAIN))) c.drain++;
    if (lines.some((l) => l.includes(NODE_READ))) c.nodeRead++;
  }
  for (const c of counts.values()) {
    const n = Math.max(1, c.samples);
    c.read = (100 * c.read) / n;
    c.drain = (100 * c.drain) / n;
    c.nodeRead = (100 * c.nodeRead) / n;
  }
  return counts;
}

async function road(name: Road): Promise<unknown> {
  const setup = ROADS[name];
  const group = await toaGroup(setup.packet);
  const plain = await startServer('plain', null, ['--perf-basic-prof']);
  const preload = await startServer('preload', setup.ack, ['--perf-basic-prof']);
  const data = path.join(__dirname, `profile-${name}.data`);
  try {
    await Promise.all([load(group, plain.port, WARM, PARALLEL), load(group, preload.port, WARM, PARALLEL)]);
    const perf = spawn('perf', ['record', '-F', '2999', '-g', '-q', '-o', data, '-p', `${plain.child.pid},${preload.child.pid}`], {
      stdio: 'ignore',
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = await Promise.all([stats(plain), stats(preload)]);
    await Promise.all([load(group, plain.port, COUNT, PARALLEL), load(group, preload.port, COUNT, PARALLEL)]);
    const after = await Promise.all([stats(plain), stats(preload)]);
    perf.kill('SIGINT');
    await new Promise((resolve) => perf.once('exit', resolve));
    const cpu = [0, 1].map((i) => (after[i].cpuUs - before[i].cpuUs) / Math.max(1, after[i].requests - before[i].requests));
    const client = after[1].client - before[1].client;
    if (client !== COUNT) throw new Error(`profile ${name}: the preload answered the TOA client for ${client} of ${COUNT} requests`);
    const s = shares(data, [plain.child.pid!, preload.child.pid!]);
    const p = s.get(plain.child.pid!)!;
    const q = s.get(preload.child.pid!)!;
    log(`profile ${name}: CPU ${cpu[0].toFixed(1)} / ${cpu[1].toFixed(1)} us/req; samples ${p.samples} / ${q.samples}`);
    return { road: name, cpuPlain: cpu[0], cpuPreload: cpu[1], requests: COUNT, plain: p, preload: q };
  } finally {
    plain.child.kill();
    preload.child.kill();
    await group.close();
  }
}

async function main(): Promise<void> {
  const why =
    sockopsUnavailable() ??
    (spawnSync('perf', ['--version'], { stdio: 'ignore' }).status === 0 ? undefined : 'perf is not installed (Debian: apt-get install linux-perf)');
  if (skipped('profile', why)) return;
  const rows = [];
  for (const name of Object.keys(ROADS) as Road[]) rows.push(await road(name));
  emit({ count: COUNT, rows });
}

main().catch((error: unknown) => {
  log(`profile: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
