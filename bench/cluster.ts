// Cluster: what the ACK road's sock_ops program costs the kernel per connection when the server is
// a node:cluster app whose workers all tap its port. The processes of a cgroup share one program
// (issue 18; with one program per worker, every connection ran it once per worker). An unmodified
// cluster app (test/helpers/children/echo-cluster.js) under -r node-toa/preload (NODE_TOA_ACK=on,
// NODE_TOA_TRUST_PROXY=loopback) with 1, 2 and 4 workers, each app in a cgroup of its own, loaded
// in turn by clients whose kernel writes the TOA into the handshake ACK; per connection, the run
// count and run time of every program the app's processes hold attached (kernel-programs.ts), and
// a check that answers name the client. One more app, of one worker, trusts another proxy
// (192.0.2.1): what a connection straight at the server, past the proxy, costs the program (no
// socket storage; its answers must be the peer). Needs root and the sock_ops harness; else says why.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { QUICK, ROOT, emit, envInt, log, median, skipped } from './common';
import { load } from './http-servers';
import { countProgramTime, linkedPrograms, programTime, removeCgroup, serverCgroup } from './kernel-programs';
import { sockopsUnavailable, toaGroup, type ToaGroup } from './toa-clients';

const CHILDREN = path.join(ROOT, 'test', 'helpers', 'children');
const APP = path.join(CHILDREN, 'echo-cluster.js');
const CHECK = path.join(CHILDREN, 'remote-check-client.js');
const JOIN_CGROUP = path.join(__dirname, 'join-cgroup.js');
/** The apps: how many workers, and whether the clients' address (loopback) is a trusted proxy. */
const APPS: ReadonlyArray<{ workers: number; trusted: boolean }> = [
  { workers: 1, trusted: true },
  { workers: 2, trusted: true },
  { workers: 4, trusted: true },
  { workers: 1, trusted: false },
];
const COUNT = envInt('BENCH_CLUSTER_COUNT', QUICK ? 500 : 3000, 100, 100_000);
const ROUNDS = envInt('BENCH_CLUSTER_ROUNDS', QUICK ? 1 : 4, 1, 20);
const WARM = QUICK ? 200 : 1000;
const CHECKED = 50;
const PARALLEL = 16;

interface App {
  workers: number;
  trusted: boolean;
  child: ChildProcess;
  port: number;
  pids: number[];
  cgroup: string;
}

type Lines = typeof import('../test/helpers/process/line-process');

/** The tests' watch of a child's stdout lines (transpiled by run.js). */
function lineHelpers(): Lines {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ROOT, 'build-bench', 'helpers', 'process', 'line-process.js')) as Lines;
}

async function start(workers: number, trusted: boolean): Promise<App> {
  const name = `cluster of ${workers}${trusted ? '' : ', clients untrusted'}`;
  const cgroup = serverCgroup(name);
  const child = spawn(process.execPath, ['-r', JOIN_CGROUP, '-r', 'node-toa/preload', APP], {
    cwd: ROOT, // -r node-toa/preload resolves from here (the package itself)
    env: {
      ...process.env,
      BENCH_CGROUP: cgroup,
      NODE_TOA_ACK: 'on',
      NODE_TOA_TRUST_PROXY: trusted ? 'loopback' : '192.0.2.1',
      WORKERS: String(workers),
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const { json, watchLines } = lineHelpers();
  type Ready = { ready?: boolean; port: number; workers: number[] };
  const ready = await watchLines(child, name).next((l) => {
    const m = json<Ready>(l);
    return m?.ready === true ? m : undefined;
  }, 15_000);
  return { workers, trusted, child, port: ready.port, pids: [child.pid!, ...ready.workers], cgroup };
}

async function stop(app: App): Promise<void> {
  if (app.child.exitCode === null && app.child.signalCode === null) {
    const exited = new Promise((resolve) => app.child.once('exit', resolve));
    app.child.stdin!.end();
    const timer = setTimeout(() => app.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  await removeCgroup(app.cgroup);
}

/**
 * Connections one after another, each answer sorted (remote-check-client.js): how many were right,
 * the client where the clients' address is a trusted proxy, else the peer.
 */
async function answeredRight(group: ToaGroup, app: App): Promise<number> {
  const r = await group.run(process.execPath, [CHECK, '--port', String(app.port), '--count', String(CHECKED)], { timeoutMs: 60_000 });
  const report = JSON.parse(r.stdout.trim().split('\n').pop() || 'null') as { client: number; peer: number } | null;
  if (report === null) throw new Error(`remote-check-client printed nothing (${r.code ?? r.signal}): ${r.stderr}`);
  return app.trusted ? report.client : report.peer;
}

async function main(): Promise<void> {
  const counting = countProgramTime();
  if (skipped('cluster', sockopsUnavailable() ?? (counting.on ? undefined : 'kernel.bpf_stats_enabled cannot be set here'))) {
    counting.restore();
    return;
  }
  const group = await toaGroup('ack');
  const apps: App[] = [];
  try {
    for (const a of APPS) apps.push(await start(a.workers, a.trusted));
    const programs = apps.map((app) => [...new Set(app.pids.flatMap(linkedPrograms))]);
    for (const app of apps) await load(group, app.port, WARM, PARALLEL);
    const samples = apps.map(() => ({ us: [] as number[], runs: [] as number[], failures: 0 }));
    for (let round = 0; round < ROUNDS; round++) {
      for (let j = 0; j < apps.length; j++) {
        // Rotated, so that no app always follows the same one.
        const i = (j + round) % apps.length;
        const before = programTime(programs[i]);
        const r = await load(group, apps[i].port, COUNT, PARALLEL);
        const after = programTime(programs[i]);
        samples[i].us.push((after.ns - before.ns) / 1000 / COUNT);
        samples[i].runs.push((after.runs - before.runs) / COUNT);
        samples[i].failures += r.failures;
      }
      log(`cluster: round ${round + 1}/${ROUNDS}`);
    }
    const rows = [];
    for (let i = 0; i < apps.length; i++) {
      rows.push({
        workers: apps[i].workers,
        trusted: apps[i].trusted,
        programs: programs[i].length,
        us: samples[i].us,
        usMedian: median(samples[i].us),
        runs: median(samples[i].runs),
        failures: samples[i].failures,
        right: await answeredRight(group, apps[i]),
        checked: CHECKED,
      });
    }
    const wrong = rows.find((r) => r.right !== CHECKED);
    if (wrong !== undefined) {
      throw new Error(`cluster of ${wrong.workers}: ${wrong.right} of ${CHECKED} answers named the ${wrong.trusted ? 'client' : 'peer'}`);
    }
    emit({ count: COUNT, rounds: ROUNDS, rows });
  } finally {
    for (const app of apps) await stop(app);
    await group.close();
    counting.restore();
  }
}

main().catch((error: unknown) => {
  log(`cluster: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
