// The ACK tap under load: 20,000 fresh connections per case, 32 at once, from clients whose own
// kernel (a ToaCgroup) puts the TOA only into the handshake ACK or only into the first data
// packet, to an HTTP server in another process that answers every request with
// realRemoteAddress(). The tap must never miss: zero `peer` answers, zero wrong ones. Client and
// server pinned to different CPUs (the case where a tap that is walked after TCP has taken the
// packet loses the race to accept+read) and to the same CPU (softirq, tap and server take turns
// on one core), as issue 18 asks. The server looks the address up in the request handler, as the
// issue describes; for TOA in the ACK also at accept time (the 'connection' event), where the race
// with a tap that sees the ACK after TCP is tightest. One more case adds as many connections from
// an untrusted address (127.0.0.2, its packets tagged the same way) at the same time: the sock_ops
// program keeps nothing of them, not even socket storage, and each must be answered with its own
// address while every trusted one still gets its client.
//
// TOA_TAP_LOAD_COUNT=N changes the count per case (default 20000, also under CI).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { json, watchLines } from '../helpers/process/line-process';
import { ToaCgroup, describeSockops, type ToaPacket } from '../helpers/sockops';

const COUNT = Number(process.env.TOA_TAP_LOAD_COUNT || 20_000);
const PARALLEL = 32;
// About 3k connections/s on a 2-core machine; bounded at about 7 ms per connection plus start-up.
const CLIENT_LIMIT_MS = 30_000 + COUNT * 7;
const TEST_TIMEOUT_MS = CLIENT_LIMIT_MS + 30_000;
const ROOT = path.join(__dirname, '..', '..');
const CONN_LOAD = path.join(__dirname, '..', 'helpers', 'children', 'conn-load.js');
const SERVER = path.join(__dirname, '..', 'helpers', 'children', 'tap-load-server.js');
const BASE = '198.51.100.0';

interface ServerReport {
  requests: number;
  toa: number;
  untrusted: number;
  peer: number;
  wrong: number;
  samples: { peer: unknown[]; wrong: unknown[] };
  stats: Record<string, number>;
  taps: Array<{ source: string; lookups: number; storageLookups: number; unseen: number }>;
}

interface ClientReport {
  count: number;
  ok: number;
  failures: number;
  errors: Record<string, number>;
  elapsedMs: number;
  perSecond: number;
  timedOut: boolean;
}

type Lookup = 'request' | 'connection';
const results: string[] = [];

/** Where client and server run (taskset CPUs). */
type Placement = 'different' | 'same';
const CPUS: Record<Placement, { client: string; server: string; name: string }> = {
  different: { client: '0', server: '1', name: 'client on CPU 0, server on CPU 1' },
  same: { client: '0', server: '0', name: 'client and server on CPU 0' },
};

const UNTRUSTED = '127.0.0.2';

/** The server, outside the cgroup (it must not tag its own packets), pinned when `cpus` is set. */
async function startServer(cpus: string | undefined, lookup: Lookup, untrusted: boolean) {
  const args = [SERVER, '--base', BASE, '--lookup', lookup, '--lifetime-ms', String(TEST_TIMEOUT_MS)];
  if (untrusted) args.push('--untrusted', UNTRUSTED);
  const child =
    cpus === undefined
      ? spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] })
      : spawn('taskset', ['-c', cpus, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const watch = watchLines(child, 'tap-load-server');
  const { port } = await watch.next((l) => json<{ port: number }>(l), 20_000);
  /** The counts it prints on a "report" line. */
  const report = async (): Promise<ServerReport> => {
    child.stdin!.write('report\n');
    return watch.next((l) => {
      const r = json<ServerReport>(l);
      return r?.requests !== undefined ? r : undefined;
    }, 20_000);
  };
  return { child, port, report };
}

function newestMtime(dir: string, ext: string): number {
  return Math.max(...fs.readdirSync(dir).filter((f) => f.endsWith(ext)).map((f) => fs.statSync(path.join(dir, f)).mtimeMs));
}

describeSockops('ACK tap under load: TOA only in the handshake ACK or the first data packet', () => {
  beforeAll(() => {
    // The server runs the compiled package: a dist/ older than lib/ would measure old code.
    const dist = path.join(ROOT, 'dist', 'index.js');
    if (!fs.existsSync(dist)) throw new Error('dist/index.js is missing: run `npm run build:ts` (npm install does it)');
    if (fs.statSync(dist).mtimeMs < newestMtime(path.join(ROOT, 'lib'), '.ts')) {
      throw new Error('dist/ is older than lib/: run `npm run build:ts` first');
    }
  });

  afterAll(() => {
    // eslint-disable-next-line no-console
    if (results.length > 0) console.log(`ACK tap load, ${COUNT} connections per case, ${PARALLEL} at once:\n${results.join('\n')}`);
  });

  const cases: Array<{ packet: ToaPacket; placement: Placement; lookup: Lookup; untrusted?: boolean }> = [
    { packet: 'ack', placement: 'different', lookup: 'request' },
    { packet: 'ack', placement: 'same', lookup: 'request' },
    { packet: 'data', placement: 'different', lookup: 'request' },
    { packet: 'data', placement: 'same', lookup: 'request' },
    { packet: 'ack', placement: 'different', lookup: 'connection' },
    { packet: 'ack', placement: 'same', lookup: 'connection' },
    { packet: 'ack', placement: 'different', lookup: 'request', untrusted: true },
  ];

  for (const { packet, placement, lookup, untrusted = false } of cases) {
    const cpus = CPUS[placement];
    const where = cpus.name;
    const when = lookup === 'request' ? 'looked up per request' : 'looked up at accept';
    const beside = untrusted ? `, as many from an untrusted ${UNTRUSTED} at once` : '';
    it(
      `TOA only in the ${packet === 'ack' ? 'handshake ACK' : 'first data packet'}, ${when}, ${where}${beside}: no miss`,
      async () => {
        const t0 = Date.now();
        const group = await ToaCgroup.create({ packets: [packet], base: BASE });
        const server = await startServer(cpus.server, lookup, untrusted);
        try {
          const load = (from: string[]) =>
            group.run(
              process.execPath,
              [CONN_LOAD, '--port', String(server.port), '--count', String(COUNT), '--parallel', String(PARALLEL), '--timeout-ms', String(CLIENT_LIMIT_MS), ...from],
              { cpus: cpus.client, timeoutMs: CLIENT_LIMIT_MS + 10_000 },
            );
          const [run, other] = await Promise.all([load([]), untrusted ? load(['--local-address', UNTRUSTED]) : undefined]);
          const client = JSON.parse(run.stdout.trim().split('\n').pop() || 'null') as ClientReport | null;
          if (client === null) throw new Error(`conn-load printed nothing (${run.code ?? run.signal}): ${run.stderr}`);
          const untrustedClient = other === undefined ? null : (JSON.parse(other.stdout.trim().split('\n').pop() || 'null') as ClientReport | null);
          if (other !== undefined && untrustedClient === null) throw new Error(`conn-load from ${UNTRUSTED} printed nothing (${other.code ?? other.signal}): ${other.stderr}`);
          const report = await server.report();
          const counters = await group.counters();
          const seconds = (Date.now() - t0) / 1000;
          const miss = report.requests ? (100 * report.peer) / report.requests : 0;
          results.push(
            `  ${packet.padEnd(4)} ${lookup.padEnd(10)} ${where.padEnd(32)} peer ${String(report.peer).padStart(5)} / ${report.requests} ` +
              `(${miss.toFixed(3)} %), wrong ${report.wrong}, client failures ${client.failures}, ` +
              `${client.perSecond} conn/s, ${seconds.toFixed(1)} s; tap hits ${report.stats.hits}/${report.stats.lookups}, ` +
              `drops ${report.stats.drops}; options written ${counters[packet]}` +
              (untrusted ? `; from ${UNTRUSTED}: ${report.untrusted} answered with it` : '') +
              `; ${report.taps.map((t) => `${t.source}: storage lookups ${t.storageLookups}, unseen ${t.unseen}`).join('; ')}`,
          );
          expect({ failures: client.failures, errors: client.errors, timedOut: client.timedOut }).toEqual({
            failures: 0,
            errors: {},
            timedOut: false,
          });
          expect(client.ok).toBe(COUNT);
          const connections = untrusted ? 2 * COUNT : COUNT;
          if (untrustedClient !== null) expect({ ok: untrustedClient.ok, failures: untrustedClient.failures }).toEqual({ ok: COUNT, failures: 0 });
          expect(counters).toMatchObject({ connects: connections, [packet]: connections, reserveFail: 0, storeFail: 0 });
          expect(report.requests).toBe(connections);
          expect({ toa: report.toa, untrusted: report.untrusted }).toEqual({ toa: COUNT, untrusted: untrusted ? COUNT : 0 });
          // Every connection was the program's (or the packet sockets'): none unseen.
          expect(report.taps.map((t) => t.unseen)).toEqual([0]);
          expect({ peer: report.peer, wrong: report.wrong, samples: report.samples }).toEqual({
            peer: 0,
            wrong: 0,
            samples: { peer: [], wrong: [] },
          });
        } finally {
          server.child.kill('SIGKILL');
          await group.close();
        }
      },
      TEST_TIMEOUT_MS,
    );
  }
});
