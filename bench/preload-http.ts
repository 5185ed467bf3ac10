// Preload, HTTP: a new connection per request, against a plain node:http server whose handler
// answers `req.socket.remoteAddress`, started as `node server` (plain) and as
// `node -r node-toa/preload server` (NODE_TOA_TRUST_PROXY=loopback), the clients in a ToaCgroup so
// that their own kernel writes the TOA, on one of the roads a proxy uses:
//   syn       TOA in every SYN, the preload with NODE_TOA_ACK=off (SYNs only)
//   syn-tap   TOA in every SYN, NODE_TOA_ACK=on (the tap open, as `auto` opens it for root)
//   ack       TOA in the handshake ACK only, NODE_TOA_ACK=on (the tap reads through the server's
//             sock_ops program, as `auto` and `on` do where it loads)
//   data      TOA in the first data packet only (the request), NODE_TOA_ACK=on
//   ack-packet  TOA in the handshake ACK only, NODE_TOA_ACK=packet (packet sockets, where the
//             program cannot load: the road before the sock_ops program)
// Per road two pairs: a plain server against the road's preload server, and an A/A control (two
// more plain servers, the same clients, measured the same way: the noise). Every server belongs to
// one pair only, so both sides of a pair sit idle while the other pairs run, alike: a plain server
// shared by every road's pair ran five times as often as each preload server and, staying warm,
// made every road read +18-26 % (the SYN road too, which the tap does not touch). Each round runs
// every pair of every road (the order of roads and pairs, and which side starts first, rotate),
// each pair right after an unmeasured warm-up of it, both servers loaded at once by their own
// conn-load.js in the road's cgroup (servers on CPU 1, clients on CPU 0). The measure is each
// server's own CPU time (process.cpuUsage) per request around the load: what the preload costs a
// server, whatever the load generator does. The servers count their answers that named the client the TOA carried
// (198.51.100.<port & 255> for the peer's port): all of the preload's and none of the plain ones',
// or the part fails, so a preload that silently fell back cannot pass for a fast one.
// The server's sock_ops program runs in the softirq, on loopback the client's CPU, where no server's
// CPU time shows it: every server runs in a cgroup of its own (so a program runs for its own
// server's sockets only), and the kernel's count of the program's run time per request is a column
// of its own (kernel-programs.ts).
import { QUICK, emit, envInt, log, median, pinToCpu, skipped } from './common';
import { load, serve, startServer, stats, type Server } from './http-servers';
import { countProgramTime, linkedPrograms, programTime, removeCgroup, serverCgroup } from './kernel-programs';
import { sockopsUnavailable, toaGroup, type ToaGroup, type ToaPacket } from './toa-clients';

type Road = 'syn' | 'syn-tap' | 'ack' | 'data' | 'ack-packet';
const ROAD_SETUP: Record<Road, { packet: ToaPacket; ack: 'on' | 'off' | 'packet' }> = {
  syn: { packet: 'syn', ack: 'off' },
  'syn-tap': { packet: 'syn', ack: 'on' },
  ack: { packet: 'ack', ack: 'on' },
  data: { packet: 'data', ack: 'on' },
  'ack-packet': { packet: 'ack', ack: 'packet' },
};
const WARM = envInt('BENCH_PRELOAD_HTTP_WARM', QUICK ? 50 : 500, 0, 100_000);
const COUNT = envInt('BENCH_PRELOAD_HTTP_COUNT', QUICK ? 200 : 4000, 100, 100_000);
const ROUNDS = envInt('BENCH_PRELOAD_HTTP_ROUNDS', QUICK ? 1 : 6, 1, 40);
// Once per pair before the rounds: a fresh preload server's first measured round read +75-110 %
// (V8 still compiling its path) where the later rounds read +10-20 %.
const INITIAL = envInt('BENCH_PRELOAD_HTTP_INITIAL', QUICK ? 100 : 2000, 0, 100_000);
const PARALLEL = envInt('BENCH_PRELOAD_HTTP_PARALLEL', 16, 1, 256);

function roads(): Road[] {
  const raw = process.env.BENCH_PRELOAD_HTTP_ROADS ?? 'syn,syn-tap,ack,data,ack-packet';
  const list = raw.split(',').map((r) => r.trim()).filter((r) => r !== '');
  for (const r of list) {
    if (!Object.hasOwn(ROAD_SETUP, r)) throw new RangeError(`BENCH_PRELOAD_HTTP_ROADS: unknown road '${r}' (roads: ${Object.keys(ROAD_SETUP).join(', ')})`);
  }
  if (list.length === 0) throw new RangeError('BENCH_PRELOAD_HTTP_ROADS names no road');
  return list as Road[];
}

// ---- the driver ----

/** The sock_ops program ids each measured server holds (none for plain servers and packet sockets). */
const programs = new Map<Server, number[]>();

function stop(s: Server): Promise<void> {
  return new Promise((resolve) => {
    if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
    s.child.once('exit', () => resolve());
    s.child.kill();
  });
}

interface Cell {
  cpuUsPerRequest: number;
  /** The server's sock_ops program, kernel run time per request (NaN: it runs none). */
  programUsPerRequest: number;
  programRunsPerRequest: number;
  requests: number;
  client: number;
  wrong: number;
  perSecond: number;
  failures: number;
}

/** Two servers loaded at once; each one's CPU per request in that time. */
async function pair(group: ToaGroup, a: Server, b: Server, count: number): Promise<[Cell, Cell]> {
  const ids = [programs.get(a) ?? [], programs.get(b) ?? []];
  const before = await Promise.all([stats(a), stats(b)]);
  const programsBefore = ids.map(programTime);
  const results = await Promise.all([load(group, a.port, count, PARALLEL), load(group, b.port, count, PARALLEL)]);
  const programsAfter = ids.map(programTime);
  const after = await Promise.all([stats(a), stats(b)]);
  return [0, 1].map((i) => {
    const requests = after[i].requests - before[i].requests;
    const none = ids[i].length === 0;
    return {
      cpuUsPerRequest: (after[i].cpuUs - before[i].cpuUs) / Math.max(1, requests),
      programUsPerRequest: none ? NaN : (programsAfter[i].ns - programsBefore[i].ns) / 1000 / Math.max(1, requests),
      programRunsPerRequest: none ? NaN : (programsAfter[i].runs - programsBefore[i].runs) / Math.max(1, requests),
      requests,
      client: after[i].client - before[i].client,
      wrong: after[i].wrong - before[i].wrong,
      perSecond: (results[i].ok * 1000) / results[i].elapsedMs,
      failures: results[i].failures,
    };
  }) as [Cell, Cell];
}

type Which = 'preload' | 'control';
type Measured = { plain: Cell; other: Cell };

function summary(list: Measured[]) {
  const ratios = list.map((r) => r.other.cpuUsPerRequest / r.plain.cpuUsPerRequest);
  return {
    cpuPlain: median(list.map((r) => r.plain.cpuUsPerRequest)),
    cpuOther: median(list.map((r) => r.other.cpuUsPerRequest)),
    cpuDiff: median(list.map((r) => r.other.cpuUsPerRequest - r.plain.cpuUsPerRequest)),
    cpuRatio: median(ratios),
    /** The measured side's sock_ops program in the kernel, us and runs per request (NaN: none). */
    programUs: median(list.map((r) => r.other.programUsPerRequest)),
    programRuns: median(list.map((r) => r.other.programRunsPerRequest)),
    cpuRatioMin: Math.min(...ratios),
    cpuRatioMax: Math.max(...ratios),
    rateRatio: median(list.map((r) => r.other.perSecond / r.plain.perSecond)),
    requests: list.reduce((n, r) => n + r.other.requests, 0),
    /** answers of the measured side (the preload's, or the control's second server) that named the client */
    client: list.reduce((n, r) => n + r.other.client, 0),
    plainRequests: list.reduce((n, r) => n + r.plain.requests, 0),
    plainClient: list.reduce((n, r) => n + r.plain.client, 0),
    wrong: list.reduce((n, r) => n + r.plain.wrong + r.other.wrong, 0),
    failures: list.reduce((n, r) => n + r.plain.failures + r.other.failures, 0),
    rounds: list,
  };
}

async function drive(): Promise<void> {
  if (skipped('preload-http', sockopsUnavailable())) return;
  const list = roads();
  pinToCpu(process.pid, 0);
  const counting = countProgramTime();
  const cgroups: string[] = [];
  const groups = new Map<Road, ToaGroup>();
  const servers: Server[] = [];
  const rows = new Map<Road, Record<Which, Measured[]>>(list.map((r) => [r, { preload: [], control: [] }]));
  try {
    for (const road of list) groups.set(road, await toaGroup(ROAD_SETUP[road].packet));
    // Four servers per road, each in one pair only (see the top): plain and preload, control a and b.
    const pairs = new Map<string, [Server, Server]>();
    for (const road of list) {
      // Each in a cgroup of its own: a preload server's program then runs for its own sockets only,
      // and every server is treated alike.
      const start = (label: string, ack: 'on' | 'off' | 'packet' | null) => {
        const dir = serverCgroup(label);
        cgroups.push(dir);
        return startServer(label, ack, [], dir);
      };
      const four = await Promise.all([
        start(`plain ${road}`, null),
        start(`preload ${road}`, ROAD_SETUP[road].ack),
        start(`control a ${road}`, null),
        start(`control b ${road}`, null),
      ]);
      servers.push(...four);
      if (counting.on) programs.set(four[1], linkedPrograms(four[1].child.pid!));
      pairs.set(`${road} preload`, [four[0], four[1]]);
      pairs.set(`${road} control`, [four[2], four[3]]);
    }
    const jobs = list.flatMap((road) => (['preload', 'control'] as const).map((which) => ({ road, which })));
    const serversOf = (road: Road, which: Which): [Server, Server] => pairs.get(`${road} ${which}`)!;
    if (INITIAL > 0) {
      for (const { road, which } of jobs) await pair(groups.get(road)!, ...serversOf(road, which), INITIAL);
      log(`preload-http: every pair warmed up with ${INITIAL} requests per server`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (let j = 0; j < jobs.length; j++) {
        // Rotate the order, so no pair always follows the same one.
        const { road, which } = jobs[(j + round) % jobs.length];
        const group = groups.get(road)!;
        const [base, other] = serversOf(road, which);
        // Unmeasured: a process that sat idle while the other pairs ran starts slow.
        if (WARM > 0) await pair(group, base, other, WARM);
        const [x, y] = round % 2 === 0 ? await pair(group, base, other, COUNT) : (await pair(group, other, base, COUNT)).reverse();
        rows.get(road)![which].push({ plain: x, other: y });
      }
      log(`preload-http: round ${round + 1}/${ROUNDS}`);
    }
  } finally {
    await Promise.all(servers.map(stop));
    // A cgroup can be removed once its server has exited.
    for (const dir of cgroups) await removeCgroup(dir);
    for (const g of groups.values()) await g.close();
    counting.restore();
  }
  const result = {
    count: COUNT,
    rounds: ROUNDS,
    parallel: PARALLEL,
    warm: WARM,
    initial: INITIAL,
    roads: list.map((road) => ({
      road,
      packet: ROAD_SETUP[road].packet,
      ack: ROAD_SETUP[road].ack,
      preload: summary(rows.get(road)!.preload),
      control: summary(rows.get(road)!.control),
    })),
  };
  const problems: string[] = [];
  for (const r of result.roads) {
    const p = r.preload;
    if (p.client !== p.requests) problems.push(`${r.road}: the preload server answered the TOA client for ${p.client} of ${p.requests} requests`);
    if (p.plainClient !== 0 || r.control.client !== 0 || r.control.plainClient !== 0) problems.push(`${r.road}: a plain server answered a TOA client`);
    if (p.wrong + r.control.wrong > 0) problems.push(`${r.road}: ${p.wrong + r.control.wrong} answers named another connection's client`);
  }
  if (problems.length > 0) {
    // The numbers still say something about the road that failed: on stderr, for a look.
    for (const r of result.roads) {
      log(`preload-http ${r.road}: CPU ${r.preload.cpuPlain.toFixed(1)} / ${r.preload.cpuOther.toFixed(1)} us/req, answers ${r.preload.client} / ${r.preload.requests}`);
    }
    throw new Error(problems.join('; '));
  }
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
