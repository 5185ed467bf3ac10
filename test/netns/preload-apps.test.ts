// End to end: the unmodified apps of examples/preload/, started only with `node -r node-toa/preload`
// (or `--import`) and the environment, and clients whose own kernel writes TOA into their packets
// (a ToaCgroup on loopback: kind 254, the client 198.51.100.<source port & 0xff>:<source port>).
// The apps' own output (access logs, req.ip, rate-limit headers, what the handler reads from
// req.socket) must show the client when the proxy (loopback) is trusted, and exactly Node's own
// value otherwise: for an untrusted peer, for a connection without TOA, for the app's own client
// socket.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ToaCgroup, describeSockops } from '../helpers/sockops';
import { watchLines } from '../helpers/process/line-process';
import { tapHandles } from '../helpers/process/taps';
import { ADDR, ToaNet, describeE2E, useToaNet } from '../helpers/netns/toa-net';
import { selfSignedCert } from '../helpers/sockets/tls-cert';

const ROOT = path.join(__dirname, '..', '..');
const EXAMPLES = path.join(ROOT, 'examples', 'preload');
const CLIENT = path.join(__dirname, '..', 'helpers', 'children', 'preload-client.js');
const START_TIMEOUT_MS = 15_000;

interface App {
  child: ChildProcess;
  port: number;
  lines: readonly string[];
  stderr(): string;
  /** Resolves once a stdout line matches (bounded). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
}

const running = new Set<App>();

/** Starts an example with the preload; resolves once it printed "listening on <host>:<port>". */
async function start(file: string, env: Record<string, string>, flag: '-r' | '--import' = '-r', prefix: string[] = []): Promise<App> {
  const argv = [...prefix, process.execPath, flag, 'node-toa/preload', file];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: EXAMPLES,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const watch = watchLines(child, file);
  const waitFor = (re: RegExp, timeoutMs = 10_000) => watch.next((l) => (re.test(l) ? l : undefined), timeoutMs);
  try {
    const port = await watch.next((l) => /^listening on .*:(\d+)$/.exec(l)?.[1], START_TIMEOUT_MS);
    const app: App = { child, port: Number(port), lines: watch.lines, stderr: watch.stderr, waitFor };
    running.add(app);
    return app;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

function stop(app: App): Promise<void> {
  running.delete(app);
  return new Promise((resolve) => {
    if (app.child.exitCode !== null || app.child.signalCode !== null) return resolve();
    const timer = setTimeout(() => app.child.kill('SIGKILL'), 3000);
    app.child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    app.child.kill('SIGTERM');
  });
}

interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}
interface Connection {
  localPort: number;
  responses: Response[];
}
interface ClientSpec {
  kind: 'http' | 'https' | 'h2' | 'ws';
  port: number;
  path?: string;
  ca?: string;
  connections: Array<{ requests: number; localPort?: number }>;
}

function parseClient(stdout: string, stderr: string, code: number | null): Connection[] {
  const line = stdout.trim().split('\n').pop() ?? '';
  if (code !== 0 || !line.startsWith('[')) throw new Error(`preload-client failed (${code}): ${stdout}\n${stderr}`);
  return JSON.parse(line) as Connection[];
}

/** The client inside the cgroup: its kernel writes TOA. */
async function withToa(group: ToaCgroup, spec: ClientSpec): Promise<Connection[]> {
  const r = await group.run(process.execPath, [CLIENT, JSON.stringify(spec)], { timeoutMs: 40_000 });
  return parseClient(r.stdout, r.stderr, r.code);
}

/** The same client outside it: no TOA. */
function withoutToa(spec: ClientSpec): Promise<Connection[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLIENT, JSON.stringify(spec)], { timeout: 40_000 }, (error, stdout, stderr) => {
      try {
        resolve(parseClient(stdout, stderr, error ? ((error as { code?: number }).code ?? 1) : 0));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** Two source ports with different low bytes (so two different clients), random per call. */
// Below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default): no
// other process's outgoing connection holds them (a busy machine made 41000-59000 collide).
function twoPorts(): [number, number] {
  const a = 20000 + 2 * Math.floor(Math.random() * 6000);
  return [a, a + 1];
}

const body = (c: Connection, i = 0) => JSON.parse(c.responses[i].body) as Record<string, unknown>;

let certDir: string;
let certFiles: { KEY_FILE: string; CERT_FILE: string };

describeSockops('node -r node-toa/preload: unmodified apps see the client', () => {
  let group: ToaCgroup;
  let ackGroup: ToaCgroup;
  let dataGroup: ToaCgroup;

  beforeAll(async () => {
    group = await ToaCgroup.create({ packets: ['syn'] });
    ackGroup = await ToaCgroup.create({ packets: ['ack'] });
    dataGroup = await ToaCgroup.create({ packets: ['data'] });
    const cert = selfSignedCert();
    certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-toa-preload-'));
    certFiles = { KEY_FILE: path.join(certDir, 'key.pem'), CERT_FILE: path.join(certDir, 'cert.pem') };
    fs.writeFileSync(certFiles.KEY_FILE, cert.key);
    fs.writeFileSync(certFiles.CERT_FILE, cert.cert);
  }, 30_000);

  afterEach(async () => {
    await Promise.all([...running].map(stop));
  });

  afterAll(async () => {
    await Promise.all([group?.close(), ackGroup?.close(), dataGroup?.close()]);
    if (certDir) fs.rmSync(certDir, { recursive: true, force: true });
  });

  const TRUSTED = { NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: 'off' };

  describe('Express + morgan + express-rate-limit', () => {
    it('req.ip, the morgan line and req.socket are the client; two clients behind one proxy get separate budgets', async () => {
      const app = await start('express.js', { ...TRUSTED, RATE_LIMIT: '3' });
      const [a, b] = twoPorts();
      const [ca, cb] = await withToa(group, {
        kind: 'http',
        port: app.port,
        connections: [
          { requests: 4, localPort: a },
          { requests: 4, localPort: b },
        ],
      });
      for (const [c, port] of [[ca, a], [cb, b]] as const) {
        const want = group.expected(port);
        expect(c.localPort).toBe(port);
        expect(body(c)).toEqual({ ip: want.address, remoteAddress: want.address, remotePort: port, remoteFamily: 'IPv4' });
        // Each client its own budget of 3: 3, 2, 1 left, then refused.
        expect(c.responses.map((r) => r.status)).toEqual([200, 200, 200, 429]);
        expect(c.responses.map((r) => r.headers['ratelimit-remaining'])).toEqual(['2', '1', '0', '0']);
        await app.waitFor(new RegExp(`^${want.address.replace(/\./g, '\\.')} GET / 200$`));
      }
      expect(app.lines.filter((l) => / GET \/ 429$/.test(l))).toHaveLength(2);
      expect(app.stderr()).not.toMatch(/NODE_TOA_TRUST_NONE|Error/);
    });

    it('an untrusted proxy and a connection without TOA get Node\u2019s own value (dual stack: ::ffff:127.0.0.1), and share the peer\u2019s budget', async () => {
      const app = await start('express.js', { NODE_TOA_TRUST_PROXY: '192.0.2.0/24', NODE_TOA_ACK: 'off', RATE_LIMIT: '3' });
      const [viaProxy] = await withToa(group, { kind: 'http', port: app.port, connections: [{ requests: 2 }] });
      expect(body(viaProxy)).toEqual({ ip: '::ffff:127.0.0.1', remoteAddress: '::ffff:127.0.0.1', remotePort: viaProxy.localPort, remoteFamily: 'IPv6' });
      const [direct] = await withoutToa({ kind: 'http', port: app.port, connections: [{ requests: 2 }] });
      expect(body(direct)).toEqual({ ip: '::ffff:127.0.0.1', remoteAddress: '::ffff:127.0.0.1', remotePort: direct.localPort, remoteFamily: 'IPv6' });
      // One peer, one budget: 4 requests against 3.
      expect([...viaProxy.responses, ...direct.responses].map((r) => r.status)).toEqual([200, 200, 200, 429]);
      await app.waitFor(/^::ffff:127\.0\.0\.1 GET \/ 200$/);
      expect(app.stderr()).toMatch(/NODE_TOA_UNTRUSTED_PEER.*127\.0\.0\.1/);
    });

    it('with NODE_TOA_ACK=on, TOA only in the handshake ACK or only in the first data packet', async () => {
      const app = await start('express.js', { NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: 'on' });
      for (const g of [ackGroup, dataGroup]) {
        const [c] = await withToa(g, { kind: 'http', port: app.port, connections: [{ requests: 2 }] });
        const want = g.expected(c.localPort);
        expect(body(c)).toMatchObject({ ip: want.address, remoteAddress: want.address, remotePort: want.port });
        expect(body(c, 1)).toMatchObject({ ip: want.address });
      }
      // And a SYN-tagged client still works beside the tap.
      const [s] = await withToa(group, { kind: 'http', port: app.port, connections: [{ requests: 1 }] });
      expect(body(s)).toMatchObject({ ip: group.expected(s.localPort).address });
    });
  });

  describe('Fastify with its logger + @fastify/rate-limit', () => {
    it("request.ip, the 'incoming request' log line and the rate limit key are the client", async () => {
      const app = await start('fastify.js', { ...TRUSTED, RATE_LIMIT: '2', HOST: '127.0.0.1' });
      const [a, b] = twoPorts();
      const [ca, cb] = await withToa(group, {
        kind: 'http',
        port: app.port,
        connections: [
          { requests: 3, localPort: a },
          { requests: 3, localPort: b },
        ],
      });
      for (const [c, port] of [[ca, a], [cb, b]] as const) {
        const want = group.expected(port);
        expect(body(c)).toEqual({ ip: want.address, remoteAddress: want.address, remotePort: port, remoteFamily: 'IPv4' });
        expect(c.responses.map((r) => r.status)).toEqual([200, 200, 429]);
        expect(c.responses.map((r) => r.headers['x-ratelimit-remaining'])).toEqual(['1', '0', '0']);
        const logged = await app.waitFor(new RegExp(`"remoteAddress":"${want.address.replace(/\./g, '\\.')}"`));
        expect(JSON.parse(logged)).toMatchObject({ msg: 'incoming request', req: { remoteAddress: want.address, remotePort: port } });
      }
    });

    it('a connection without TOA logs and answers 127.0.0.1, as Node says', async () => {
      const app = await start('fastify.js', { ...TRUSTED, HOST: '127.0.0.1' });
      const [c] = await withoutToa({ kind: 'http', port: app.port, connections: [{ requests: 1 }] });
      expect(body(c)).toEqual({ ip: '127.0.0.1', remoteAddress: '127.0.0.1', remotePort: c.localPort, remoteFamily: 'IPv4' });
      const logged = await app.waitFor(/"msg":"incoming request"/);
      expect(JSON.parse(logged).req).toMatchObject({ remoteAddress: '127.0.0.1', remotePort: c.localPort });
    });
  });

  describe('Koa', () => {
    it('ctx.ip and its log line are the client', async () => {
      const app = await start('koa.js', TRUSTED);
      const [c] = await withToa(group, { kind: 'http', port: app.port, connections: [{ requests: 2 }] });
      const want = group.expected(c.localPort);
      expect(body(c)).toEqual({ ip: want.address, remoteAddress: want.address, remotePort: want.port, remoteFamily: 'IPv4' });
      await app.waitFor(new RegExp(`^${want.address.replace(/\./g, '\\.')} GET / 200$`));
    });
  });

  describe('plain http + pino-http', () => {
    it("the handler's req.socket and pino-http's remoteAddress are the client; the app's own client socket is unchanged", async () => {
      const app = await start('http.js', { ...TRUSTED, HOST: '127.0.0.1' });
      const [c] = await withToa(group, { kind: 'http', port: app.port, path: '/upstream', connections: [{ requests: 1 }] });
      const want = group.expected(c.localPort);
      const answer = body(c) as { remoteAddress: string; client: unknown; upstream: { remoteAddress: string; remotePort: number } };
      expect(answer).toMatchObject({ remoteAddress: want.address, remotePort: want.port, remoteFamily: 'IPv4' });
      // The app's own request: the client socket says the server it dialled, as without node-toa;
      // its accepted side (loopback, no TOA) is Node's own value.
      expect(answer.client).toEqual({ remoteAddress: '127.0.0.1', remotePort: app.port, remoteFamily: 'IPv4' });
      expect(answer.upstream.remoteAddress).toBe('127.0.0.1');
      const logged = await app.waitFor(new RegExp(`"remoteAddress":"${want.address.replace(/\./g, '\\.')}"`));
      expect(JSON.parse(logged)).toMatchObject({ msg: 'request completed', req: { remoteAddress: want.address, remotePort: want.port } });
    });
  });

  describe('NODE_TOA_KINDS and NODE_TOA_MULTIPLE, end to end', () => {
    // Alibaba Cloud CDN's option (kind 28, version 1, no port): 192.0.2.5, opt-in by kind.
    const ALI = '1c0701c0000205';
    it('kind 28 is read only when NODE_TOA_KINDS names it', async () => {
      const ali = await ToaCgroup.create({ packets: ['syn'], raw: ALI });
      try {
        const on = await start('koa.js', { ...TRUSTED, NODE_TOA_KINDS: '200,253,254,28', NODE_TOA_MULTIPLE: 'first' });
        const [c] = await withToa(ali, { kind: 'http', port: on.port, connections: [{ requests: 1 }] });
        expect(body(c)).toEqual({ ip: '192.0.2.5', remoteAddress: '192.0.2.5', remotePort: 0, remoteFamily: 'IPv4' });
        const off = await start('koa.js', TRUSTED);
        const [d] = await withToa(ali, { kind: 'http', port: off.port, connections: [{ requests: 1 }] });
        expect(body(d)).toEqual({ ip: '::ffff:127.0.0.1', remoteAddress: '::ffff:127.0.0.1', remotePort: d.localPort, remoteFamily: 'IPv6' });
      } finally {
        await ali.close();
      }
    });
  });

  describe('https', () => {
    it('the TLS socket is the client', async () => {
      const app = await start('https.js', { ...TRUSTED, ...certFiles });
      const [c] = await withToa(group, { kind: 'https', port: app.port, ca: certFiles.CERT_FILE, connections: [{ requests: 2 }] });
      const want = group.expected(c.localPort);
      expect(body(c)).toEqual({ remoteAddress: want.address, remotePort: want.port, remoteFamily: 'IPv4' });
      expect(body(c, 1)).toEqual(body(c));
      await app.waitFor(new RegExp(`^${want.address.replace(/\./g, '\\.')} GET /$`));
      const [d] = await withoutToa({ kind: 'https', port: app.port, ca: certFiles.CERT_FILE, connections: [{ requests: 1 }] });
      expect(body(d)).toEqual({ remoteAddress: '::ffff:127.0.0.1', remotePort: d.localPort, remoteFamily: 'IPv6' });
    });
  });

  describe('http2', () => {
    it('the compat req.socket and session.socket agree: the client', async () => {
      const app = await start('http2.js', { ...TRUSTED, ...certFiles });
      const [c] = await withToa(group, { kind: 'h2', port: app.port, ca: certFiles.CERT_FILE, connections: [{ requests: 3 }] });
      const want = group.expected(c.localPort);
      for (let i = 0; i < 3; i++) {
        expect(body(c, i)).toEqual({ remoteAddress: want.address, remotePort: want.port, remoteFamily: 'IPv4', session: { remoteAddress: want.address, remotePort: want.port } });
      }
    });
  });

  describe('ws (an ES module, --import)', () => {
    it("the upgrade request's socket is the client", async () => {
      const app = await start('ws.mjs', TRUSTED, '--import');
      const [c] = await withToa(group, { kind: 'ws', port: app.port, connections: [{ requests: 1 }] });
      const want = group.expected(c.localPort);
      expect(body(c)).toEqual({ remoteAddress: want.address, remotePort: want.port, remoteFamily: 'IPv4' });
      await app.waitFor(new RegExp(`^websocket from ${want.address.replace(/\./g, '\\.')}:${want.port}$`));
    });
  });

  describe('node:cluster, two workers', () => {
    it('both workers see the client (the primary saved the SYNs; the preload ran in all three)', async () => {
      const app = await start('cluster.js', TRUSTED);
      const pids = new Set<number>();
      // Round-robin: new connections alternate between the workers. Bounded.
      for (let i = 0; i < 10 && pids.size < 2; i++) {
        const conns = await withToa(group, { kind: 'http', port: app.port, connections: [{ requests: 1 }, { requests: 1 }] });
        for (const c of conns) {
          const b = body(c) as { pid: number; remoteAddress: string; remotePort: number };
          expect(b).toMatchObject({ remoteAddress: group.expected(c.localPort).address, remotePort: c.localPort, remoteFamily: 'IPv4' });
          pids.add(b.pid);
        }
      }
      expect(pids.size).toBe(2);
      expect(app.stderr()).not.toMatch(/NODE_TOA_NO_LISTENING_FD|Error/);
    });

    // Each worker taps the port itself: with NODE_TOA_ACK=on through the sock_ops program (a link
    // each, no packet socket), with NODE_TOA_ACK=packet through two packet sockets each. The
    // primary, which only hands the connections on, holds neither: the program its preload
    // loaded is attached only while a port is watched, and an attached one would run for every
    // connection of the cgroup for nothing.
    it.each([
      ['on', { bpfLinks: 1, packetSockets: 0 }],
      ['packet', { bpfLinks: 0, packetSockets: 2 }],
    ] as const)('with NODE_TOA_ACK=%s each worker taps the port itself: TOA only in the handshake ACK reaches both', async (ack, handles) => {
      const app = await start('cluster.js', { NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: ack });
      const pids = new Set<number>();
      for (let i = 0; i < 10 && pids.size < 2; i++) {
        const conns = await withToa(ackGroup, { kind: 'http', port: app.port, connections: [{ requests: 1 }, { requests: 1 }] });
        for (const c of conns) {
          const b = body(c) as { pid: number };
          expect(b).toMatchObject({ remoteAddress: ackGroup.expected(c.localPort).address, remotePort: c.localPort, remoteFamily: 'IPv4' });
          pids.add(b.pid);
        }
      }
      expect(pids.size).toBe(2);
      expect(app.stderr()).not.toMatch(/Error|NODE_TOA_ACK_FAILED|ERR_TOA/);
      expect(tapHandles(app.child.pid!)).toEqual({ bpfLinks: 0, packetSockets: 0 });
      for (const pid of pids) expect(tapHandles(pid)).toEqual(handles);
    });
  });
});

// Behind a real full-NAT proxy (the netns harness: LVS-like, the proxy's own source address on
// every packet, TOA in the SYN or the ACK), the Express example running inside the namespace.
describeE2E('node -r node-toa/preload behind the full-NAT proxy', () => {
  let netns: ToaNet;
  useToaNet((created) => (netns = created));
  afterEach(async () => {
    await Promise.all([...running].map(stop));
  });

  const inNs = () => ['ip', 'netns', 'exec', netns.ns];
  const LIPS = `${ADDR.lip4}, ${ADDR.lip6}`;
  const ask = async (app: App, vip: string, localAddress: string) => {
    const r = await netns.request({ protocol: 'http', vip, port: app.port, localAddress });
    expect(r.responses).toHaveLength(1);
    return { json: JSON.parse(r.responses[0].body) as Record<string, unknown>, localPort: r.localPort };
  };

  it('IPv4 and IPv6 clients through IPv4 and IPv6 proxies: req.ip and the access log are the client', async () => {
    const app = await start('express.js', { NODE_TOA_TRUST_PROXY: LIPS, NODE_TOA_ACK: 'off' }, '-r', inNs());
    for (const [vip, client, family] of [
      [ADDR.vip4, ADDR.clients4[0], 'IPv4'],
      [ADDR.vip4to6, ADDR.clients4[1], 'IPv4'],
      [ADDR.vip6, ADDR.clients6[0], 'IPv6'],
      [ADDR.vip6to4, ADDR.clients6[1], 'IPv6'],
    ]) {
      const { json, localPort } = await ask(app, vip, client);
      expect(json).toEqual({ ip: client, remoteAddress: client, remotePort: localPort, remoteFamily: family });
      await app.waitFor(new RegExp(`^${client.replace(/\./g, '\\.')} GET / 200$`));
    }
  });

  it('an untrusted proxy address: Node\u2019s own value (the proxy, ::ffff: on this dual-stack socket)', async () => {
    const app = await start('express.js', { NODE_TOA_TRUST_PROXY: ADDR.lip4, NODE_TOA_ACK: 'off' }, '-r', inNs());
    await netns.rule(ADDR.clients4[2], { lip: ADDR.untrusted4 });
    try {
      const { json } = await ask(app, ADDR.vip4, ADDR.clients4[2]);
      expect(json).toMatchObject({ ip: `::ffff:${ADDR.untrusted4}`, remoteAddress: `::ffff:${ADDR.untrusted4}`, remoteFamily: 'IPv6' });
    } finally {
      await netns.rule(ADDR.clients4[2], null);
    }
  });

  it('two options in one SYN: refused by default, the first with NODE_TOA_MULTIPLE=first', async () => {
    // kind 200, len 8: 192.0.2.7:1111, then 192.0.2.8:2222
    const raw = 'c808' + '0457' + 'c0000207' + 'c808' + '08ae' + 'c0000208';
    await netns.rule(ADDR.clients4[3], { raw });
    try {
      const refusing = await start('express.js', { NODE_TOA_TRUST_PROXY: LIPS, NODE_TOA_ACK: 'off' }, '-r', inNs());
      expect((await ask(refusing, ADDR.vip4, ADDR.clients4[3])).json).toMatchObject({ ip: `::ffff:${ADDR.lip4}` });
      await stop(refusing);
      const first = await start('express.js', { NODE_TOA_TRUST_PROXY: LIPS, NODE_TOA_ACK: 'off', NODE_TOA_MULTIPLE: 'first' }, '-r', inNs());
      expect((await ask(first, ADDR.vip4, ADDR.clients4[3])).json).toMatchObject({ ip: '192.0.2.7', remotePort: 1111, remoteFamily: 'IPv4' });
    } finally {
      await netns.rule(ADDR.clients4[3], null);
    }
  });

  // The request goes out as soon as the app says it listens: the tap must be open by then (it
  // opens before listen(2), as the SYNs are saved from before it).
  it('a proxy that tags only the handshake ACK: the client with NODE_TOA_ACK=on, from the first connection', async () => {
    const app = await start('express.js', { NODE_TOA_TRUST_PROXY: LIPS, NODE_TOA_ACK: 'on' }, '-r', inNs());
    await netns.rule(ADDR.clients4[4], { where: 'ack' });
    try {
      const { json, localPort } = await ask(app, ADDR.vip4, ADDR.clients4[4]);
      expect(json).toEqual({ ip: ADDR.clients4[4], remoteAddress: ADDR.clients4[4], remotePort: localPort, remoteFamily: 'IPv4' });
    } finally {
      await netns.rule(ADDR.clients4[4], null);
    }
  });
});
