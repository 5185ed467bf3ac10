// Issue 18, point 2, "Nothing lost, also under a flood", as a test. An unmodified node:http app
// (helpers/children/remote-echo-app.js) started with `node -r dist/preload.js`, each tap
// (NODE_TOA_ACK=sockops and packet), NODE_TOA_TRUST_PROXY naming only the legitimate clients'
// address (127.0.0.1), in a network namespace of the test's own (so its sysctls are the test's:
// syncookies on, a SYN queue of 16).
// A SYN flood at the app's port from an untrusted, spoofed source (203.0.113.66, its SYN-ACKs
// routed into a veth where they vanish) keeps the SYN queue full, so the kernel answers every SYN
// with a syncookie and saves none. Meanwhile legitimate clients, whose own kernel writes TOA (a
// ToaCgroup: kind 254, 198.51.100.<port & 0xff>:<port>), connect one after another and ask the
// app what it saw. Every one must get its TOA client: 0 answered the proxy, 0 wrong, with TOA in
// the handshake ACK and with TOA in the SYN.
//
// The test proves nothing unless the flood really forced cookies: it checks that the namespace's
// TcpExt SyncookiesSent grew by the flood and SyncookiesRecv by (nearly) every legitimate client.
//
// TOA_FLOOD_CLIENTS=N changes the number of legitimate clients per road (default 1000, as in the issue).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ToaCgroup, describeSockops, type ToaPacket } from '../helpers/sockops';
import { ToaNet, describeE2E } from '../helpers/netns/toa-net';
import { tapHandles } from '../helpers/process/taps';
import { sinkFloodReplies, spawnInNs, startFlood, stopAllInNs, tcpExt, type NsProcess } from '../helpers/netns/flood-net';

const CLIENTS = Number(process.env.TOA_FLOOD_CLIENTS || 1000);
const ROOT = path.join(__dirname, '..', '..');
const PRELOAD = path.join(ROOT, 'dist', 'preload.js');
const APP = path.join(__dirname, '..', 'helpers', 'children', 'remote-echo-app.js');
const CLIENT = path.join(__dirname, '..', 'helpers', 'children', 'remote-check-client.js');
const BASE = '198.51.100.0';
// The flood's target: a local address of the namespace other than loopback (a SYN-ACK from
// 127.0.0.1 to a non-local address is never routed, so no request socket would stay queued).
const TARGET = '203.0.113.10';
// Bounds: the clients' run, the flood (a little longer, so it covers all of them), the test.
const CLIENT_LIMIT_MS = 25_000;
const FLOOD_SECONDS = CLIENT_LIMIT_MS / 1000 + 5;
const TEST_TIMEOUT_MS = CLIENT_LIMIT_MS + 30_000;

interface ClientReport {
  count: number;
  client: number;
  peer: number;
  wrong: number;
  failures: number;
  errors: Record<string, number>;
  samples: { peer: unknown[]; wrong: unknown[] };
  elapsedMs: number;
  timedOut: boolean;
}

const results: string[] = [];

/** The app in the namespace, outside any cgroup (its own packets carry nothing). */
async function startApp(netns: ToaNet, source: 'sockops' | 'packet'): Promise<{ app: NsProcess; port: number }> {
  const env = {
    ...process.env,
    NODE_OPTIONS: '',
    NODE_TOA_ACK: source,
    NODE_TOA_TRUST_PROXY: '127.0.0.1',
    HOST: '0.0.0.0',
    PORT: '0',
  };
  const app = spawnInNs(netns, process.execPath, ['-r', PRELOAD, APP], env);
  const line = await app.line(15_000);
  const m = /^listening on .*:(\d+)$/.exec(line);
  if (!m) throw new Error(`remote-echo-app: unexpected first line '${line}': ${app.stderr()}`);
  return { app, port: Number(m[1]) };
}

describeSockops('SYN flood (issue 18): every legitimate client answered', () => {
  describeE2E('an unmodified app under the preload, in a namespace of its own', () => {
    let netns: ToaNet;

    beforeAll(async () => {
      if (!fs.existsSync(PRELOAD)) throw new Error('dist/preload.js is missing: run `npm run build:ts` (npm install does it)');
      netns = await ToaNet.create();
      await sinkFloodReplies(netns);
      await netns.sysctl('net.ipv4.tcp_syncookies', 1);
      // The app listens with Node's default backlog (511), capped by somaxconn: a SYN queue of 16.
      await netns.sysctl('net.core.somaxconn', 16);
      await netns.sysctl('net.ipv4.tcp_max_syn_backlog', 16);
    }, 30_000);

    afterEach(() => stopAllInNs());

    afterAll(async () => {
      await stopAllInNs();
      await netns?.close();
      // eslint-disable-next-line no-console
      if (results.length > 0) console.log(`SYN flood, ${CLIENTS} legitimate clients per road:\n${results.join('\n')}`);
    });

    const roads: Array<{ packet: ToaPacket; name: string }> = [
      { packet: 'ack', name: 'TOA in the handshake ACK' },
      { packet: 'syn', name: 'TOA in the SYN' },
    ];

    // Each tap: the sock_ops program keeps the syncookie SYNs of trusted senders at their SYN-ACK
    // (and the ACK in the connection's socket); packet sockets copy the trusted senders' packets.
    for (const { packet, name } of roads) for (const source of ['sockops', 'packet'] as const) {
      it(
        `${name}, ${source} tap: all ${CLIENTS} clients answered with their TOA client, 0 the proxy, 0 wrong`,
        async () => {
          const group = await ToaCgroup.create({ packets: [packet], base: BASE });
          try {
            const { app, port } = await startApp(netns, source);
            // The app's tap is the one asked for (`ip netns exec` hides the cgroup2 mount; the
            // program's loader mounts its own for a moment).
            expect(tapHandles(app.child.pid!)).toEqual(source === 'sockops' ? { bpfLinks: 1, packetSockets: 0 } : { bpfLinks: 0, packetSockets: 2 });
            const before = await tcpExt(netns);
            const flood = await startFlood(netns, { dst: TARGET, port, seconds: FLOOD_SECONDS });
            // Let the flood fill the SYN queue before the first legitimate SYN.
            await new Promise((r) => setTimeout(r, 500));
            const filled = await tcpExt(netns);
            const run = await group.run(
              'ip',
              ['netns', 'exec', netns.ns, process.execPath, CLIENT, '--port', String(port), '--count', String(CLIENTS), '--base', BASE, '--timeout-ms', String(CLIENT_LIMIT_MS)],
              { timeoutMs: CLIENT_LIMIT_MS + 10_000 },
            );
            const after = await tcpExt(netns);
            await flood.stop();
            const floodLine = await flood.line(3000).catch(() => '{}');
            const sent = (JSON.parse(floodLine) as { sent?: number }).sent ?? NaN;
            const client = JSON.parse(run.stdout.trim().split('\n').pop() || 'null') as ClientReport | null;
            if (client === null) throw new Error(`remote-check-client printed nothing (${run.code ?? run.signal}): ${run.stderr}`);
            const counters = await group.counters();
            const cookiesSent = after.SyncookiesSent - before.SyncookiesSent;
            const cookiesRecv = after.SyncookiesRecv - filled.SyncookiesRecv;
            results.push(
              `  ${packet.padEnd(3)} ${source.padEnd(7)}: client ${client.client}, proxy ${client.peer}, wrong ${client.wrong}, failures ${client.failures} ` +
                `of ${client.count} in ${client.elapsedMs} ms; flood ${sent} SYNs, SyncookiesSent +${cookiesSent}, ` +
                `SyncookiesRecv +${cookiesRecv}, SyncookiesFailed +${after.SyncookiesFailed - before.SyncookiesFailed}; options written ${counters[packet]}`,
            );
            // The premise: the flood forced syncookies on the legitimate clients too.
            expect(cookiesSent).toBeGreaterThan(10 * CLIENTS);
            expect(cookiesRecv).toBeGreaterThanOrEqual(Math.floor(0.9 * CLIENTS));
            expect(counters).toMatchObject({ [packet]: CLIENTS, reserveFail: 0, storeFail: 0 });
            // The claim.
            expect({
              count: client.count,
              client: client.client,
              peer: client.peer,
              wrong: client.wrong,
              failures: client.failures,
              errors: client.errors,
              samples: client.samples,
            }).toEqual({
              count: CLIENTS,
              client: CLIENTS,
              peer: 0,
              wrong: 0,
              failures: 0,
              errors: {},
              samples: { peer: [], wrong: [] },
            });
          } finally {
            await stopAllInNs();
            await group.close();
          }
        },
        TEST_TIMEOUT_MS,
      );
    }
  });
});
