// The PROXY protocol gate behind real producers: one HAProxy 2.6 and one nginx 1.22 (stream) on
// loopback, in front of Node servers with `proxyProtocol`, and curl from 127.0.0.2, so the client
// the header names (127.0.0.2:<curl's port>) is not the L3 peer (the producer, 127.0.0.1). Each
// server answers with what node-toa found; the answers must name the client, the frontend curl
// connected to (destination), the producer (proxy) and the header's version, command and TLVs.
// The producers' exact bytes are checked on their own in producers.test.ts.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';
import express from 'express';
import Koa from 'koa';
import fastify from 'fastify';
import { enable, realRemoteAddress, type RealAddress } from '../../lib/index';
import { toaMiddleware } from '../../lib/express';
import { toaKoa } from '../../lib/koa';
import { fastifyToa } from '../../lib/fastify';
import { curlMissing, haproxyMissing, nginxMissing, producersCleanup, startHaproxy, startNginx, type Producer } from '../helpers/producers/haproxy-nginx';
import { describeNeeds, firstMissing } from '../helpers/jest/requirements';
import { selfSignedCert } from '../helpers/sockets/tls-cert';

const CLIENT = '127.0.0.2';
const gate = { trustProxy: 'loopback', proxyProtocol: true } as const;
// The gate reads headers from the peers enable() trusts; realRemoteAddress() believes its own
// trust (the default trusts no one), so it is told the same.
const trust = { trustProxy: 'loopback' } as const;

/** RealAddress as JSON, Buffers as hex (a TLV's value, the unique id). */
function show(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    const b = v as { type?: string; data?: number[] };
    return b && b.type === 'Buffer' && Array.isArray(b.data) ? Buffer.from(b.data).toString('hex') : v;
  });
}

interface Answer {
  real: Record<string, unknown> & { proxyProtocol?: Record<string, unknown> };
  /** The socket's own peer (the producer), or with the preload what the app reads. */
  l3: { address?: string; port?: number };
  ip?: string;
}

function answerOf(socket: net.Socket, real: RealAddress, ip?: string): string {
  return show({ real, l3: { address: socket.remoteAddress, port: socket.remotePort }, ip });
}

function listenOn(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

interface Curled {
  status: number;
  httpVersion: string;
  localPort: number;
  body: string;
}

const META = '\n--curl-meta:';
/** curl from 127.0.0.2; reports its own port (`%{local_port}`), which the answer must name. */
function curl(url: string, args: string[] = []): Promise<Curled> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-sS', '--max-time', '5', '--interface', CLIENT, '--write-out', `${META}%{http_code} %{local_port} %{http_version}`, ...args, url],
      { timeout: 10_000 },
      (error, stdout, stderr) => {
        const at = stdout.lastIndexOf(META);
        if (at < 0) return reject(new Error(`curl ${url}: ${stderr || error?.message}`));
        const [status, localPort, httpVersion] = stdout.slice(at + META.length).split(' ');
        resolve({ status: Number(status), localPort: Number(localPort), httpVersion, body: stdout.slice(0, at) });
      },
    );
  });
}

/** The answer of a curl that must have succeeded. */
async function ask(url: string, args: string[] = []): Promise<{ answer: Answer; curled: Curled }> {
  const curled = await curl(url, args);
  if (curled.status !== 200) throw new Error(`${url}: HTTP ${curled.status}: ${curled.body}`);
  return { answer: JSON.parse(curled.body) as Answer, curled };
}

/** What every answer through a producer says: the client, the frontend, the producer. */
function expectThrough(answer: Answer, curled: Curled, frontendPort: number, version: 1 | 2): void {
  const { real, l3 } = answer;
  expect(real).toMatchObject({
    source: 'proxy-protocol',
    address: CLIENT,
    port: curled.localPort,
    family: 'IPv4',
    destination: { address: '127.0.0.1', port: frontendPort, family: 'IPv4' },
    proxy: { address: '127.0.0.1', port: l3.port, family: 'IPv4' },
  });
  expect(l3.address).toBe('127.0.0.1');
  expect(real.proxyProtocol).toMatchObject({ version, command: 'PROXY' });
}

const { key, cert } = selfSignedCert();
const cleanUp = producersCleanup();
const servers: net.Server[] = [];
const healthChecks: Answer[] = [];
let haproxy: Producer;
let nginx: Producer;
let preloaded: ChildProcess | undefined;
const ports: Record<string, number> = {};
const setupErrors: Record<string, Error> = {};

function plainApp(): http.Server {
  return http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(answerOf(req.socket, realRemoteAddress(req.socket, trust)));
  });
}

/** Starts examples/preload/http.js with the preload from NODE_OPTIONS; resolves with its port. */
function startPreloaded(): Promise<number> {
  const cwd = path.join(__dirname, '..', '..', 'examples', 'preload');
  const child = spawn(process.execPath, ['http.js'], {
    cwd,
    env: {
      ...process.env,
      NODE_OPTIONS: '--require node-toa/preload',
      NODE_TOA_PROXY_PROTOCOL: 'required',
      NODE_TOA_TRUST_PROXY: 'loopback',
      NODE_TOA_ACK: 'off',
      PORT: '0',
      HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  preloaded = child;
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`preloaded http.js did not listen in 15 s: ${stderr}`)), 15_000);
    child.once('exit', (code) => reject(new Error(`preloaded http.js exited (${code}): ${stderr}`)));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^listening on .*:(\d+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
}

describeNeeds(
  'HAProxy, nginx and curl',
  firstMissing(haproxyMissing(), nginxMissing(), curlMissing()),
  'the proxyProtocol gate behind real HAProxy and nginx',
  () => {
    beforeAll(async () => {
      const plain = enable(plainApp(), gate);
      const control = plainApp(); // no gate: the header reaches Node's HTTP parser as data
      const tlsServer = enable(
        https.createServer({ key, cert }, (req, res) => {
          res.setHeader('content-type', 'application/json');
          res.end(answerOf(req.socket, realRemoteAddress(req.socket, trust)));
        }),
        gate,
      );
      const h2Server = enable(
        http2.createSecureServer({ key, cert }, (req, res) => {
          res.setHeader('content-type', 'application/json');
          res.end(answerOf(req.socket as net.Socket, realRemoteAddress(req.socket as net.Socket, trust)));
        }),
        gate,
      );
      const checked = enable(
        http.createServer((req, res) => {
          healthChecks.push(JSON.parse(answerOf(req.socket, realRemoteAddress(req.socket, trust))) as Answer);
          res.end('ok');
        }),
        gate,
      );
      const expressApp = express();
      expressApp.use(toaMiddleware({ trustProxy: 'loopback', setIp: true }));
      expressApp.get('/', (req, res) => {
        res.type('application/json').send(answerOf(req.socket, req.realRemoteAddress(), req.ip));
      });
      const expressServer = enable(http.createServer(expressApp), gate);
      const koa = new Koa();
      koa.use(toaKoa({ trustProxy: 'loopback', setIp: true }));
      koa.use((ctx) => {
        ctx.type = 'application/json';
        ctx.body = answerOf(ctx.req.socket, ctx.realRemoteAddress(), ctx.ip);
      });
      const koaServer = enable(http.createServer(koa.callback()), gate);
      servers.push(plain, control, tlsServer, h2Server, checked, expressServer, koaServer);
      const [pPlain, pControl, pTls, pH2, pChecked, pExpress, pKoa] = await Promise.all(servers.map(listenOn));

      // These two fail only their own case when they cannot start (the frontend then points at a
      // closed port): the rest still runs.
      let pFastify = 1;
      try {
        const app = fastify();
        await app.register(fastifyToa, { ...gate, setIp: true });
        app.get('/', async (request, reply) => {
          reply.type('application/json');
          return answerOf(request.raw.socket, request.realRemoteAddress(), request.ip);
        });
        await app.listen({ port: 0, host: '127.0.0.1' });
        servers.push(app.server);
        pFastify = (app.server.address() as net.AddressInfo).port;
      } catch (error) {
        setupErrors.fastify = error as Error;
      }
      let pPreload = 1;
      try {
        pPreload = await startPreloaded();
      } catch (error) {
        setupErrors.preload = error as Error;
      }

      [haproxy, nginx] = await Promise.all([
        startHaproxy([
          { name: 'v1', backend: pPlain, server: 'send-proxy' },
          { name: 'v2', backend: pPlain, server: 'send-proxy-v2' },
          { name: 'control', backend: pControl, server: 'send-proxy' },
          { name: 'sslcn', backend: pPlain, server: 'send-proxy-v2-ssl-cn', tls: 'terminate' },
          {
            name: 'options',
            backend: pPlain,
            server: 'send-proxy-v2 proxy-v2-options ssl,cert-cn,ssl-cipher,cert-sig,cert-key,authority,crc32c,unique-id',
            tls: 'terminate',
            bind: 'alpn http/1.1',
            frontendLines: ['unique-id-format %{+X}o%ci:%cp'],
          },
          { name: 'https', backend: pTls, server: 'send-proxy-v2' },
          { name: 'h2', backend: pH2, server: 'send-proxy-v2' },
          {
            name: 'check',
            backend: pChecked,
            server: 'send-proxy-v2 check check-send-proxy inter 200ms',
            backendLines: ['option httpchk GET /health', 'http-check expect status 200', 'option log-health-checks'],
          },
          { name: 'express', backend: pExpress, server: 'send-proxy-v2' },
          { name: 'fastify', backend: pFastify, server: 'send-proxy-v2' },
          { name: 'koa', backend: pKoa, server: 'send-proxy' },
          { name: 'preload', backend: pPreload, server: 'send-proxy-v2' },
        ]),
        startNginx([{ name: 'stream', backend: pPlain }]),
      ]);
      for (const name of ['v1', 'v2', 'control', 'sslcn', 'options', 'https', 'h2', 'check', 'express', 'fastify', 'koa', 'preload']) {
        ports[name] = haproxy.port(name);
      }
      ports.nginx = nginx.port('stream');
    }, 30_000);

    afterAll(async () => {
      if (preloaded && preloaded.exitCode === null) preloaded.kill('SIGKILL');
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              (s as http.Server).closeAllConnections?.();
              s.close(() => resolve());
            }),
        ),
      );
    });

    const tlsArgs = () => ['--cacert', haproxy.certs.serverCertFile];
    const clientCert = () => ['--cert', haproxy.certs.clientCertFile, '--key', haproxy.certs.clientKeyFile];
    /** https://localhost:<port>/ resolved to 127.0.0.1, so curl sends SNI (the authority TLV). */
    const viaLocalhost = (port: number) => ({ url: `https://localhost:${port}/`, args: ['--resolve', `localhost:${port}:127.0.0.1`] });

    it('control: the same server without proxyProtocol gets the v1 line as data (HTTP 400 from Node)', async () => {
      const curled = await curl(`http://127.0.0.1:${ports.control}/`);
      expect(curled.status).toBe(400);
    });

    it('HAProxy send-proxy (v1): the client, the frontend as destination, the producer as proxy', async () => {
      const { answer, curled } = await ask(`http://127.0.0.1:${ports.v1}/`);
      expectThrough(answer, curled, ports.v1, 1);
      expect(answer.real.proxyProtocol!.tlvs).toEqual([]);
    });

    it('HAProxy send-proxy-v2: v2, PROXY, no TLV', async () => {
      const { answer, curled } = await ask(`http://127.0.0.1:${ports.v2}/`);
      expectThrough(answer, curled, ports.v2, 2);
      expect(answer.real.proxyProtocol!.tlvs).toEqual([]);
    });

    it('HAProxy send-proxy-v2-ssl-cn after TLS termination: ssl { version, cn, verified } from the client certificate', async () => {
      const { answer, curled } = await ask(`https://127.0.0.1:${ports.sslcn}/`, [...tlsArgs(), ...clientCert()]);
      expectThrough(answer, curled, ports.sslcn, 2);
      const pp = answer.real.proxyProtocol!;
      expect(pp.ssl).toMatchObject({ client: 0x07, verify: 0, verified: true, version: expect.stringMatching(/^TLSv1\.[23]$/), cn: haproxy.certs.clientCn });
      expect((pp.tlvs as Array<{ type: number }>).map((t) => t.type)).toEqual([0x20]);
    });

    it('HAProxy send-proxy-v2-ssl-cn, no client certificate: TLS but verified false, no cn (HAProxy still sends verify 0)', async () => {
      const { answer, curled } = await ask(`https://127.0.0.1:${ports.sslcn}/`, tlsArgs());
      expectThrough(answer, curled, ports.sslcn, 2);
      const ssl = answer.real.proxyProtocol!.ssl as Record<string, unknown>;
      expect(ssl).toMatchObject({ client: 0x01, verify: 0, verified: false });
      expect(ssl.cn).toBeUndefined();
    });

    it('HAProxy proxy-v2-options (HAProxy 2.6 has no set-proxy-v2-tlv-fmt): ALPN, authority, unique id, CRC32C checked, SSL cipher and algorithms', async () => {
      const { url, args } = viaLocalhost(ports.options);
      const { answer, curled } = await ask(url, [...args, ...tlsArgs(), ...clientCert()]);
      expectThrough(answer, curled, ports.options, 2);
      const pp = answer.real.proxyProtocol!;
      const uniqueId = Buffer.from(`7F000002:${curled.localPort.toString(16).toUpperCase().padStart(4, '0')}`).toString('hex');
      expect(pp).toMatchObject({ alpn: 'http/1.1', authority: 'localhost', uniqueId, crc32c: true });
      expect(pp.ssl).toMatchObject({
        verified: true,
        cn: haproxy.certs.clientCn,
        cipher: expect.stringMatching(/^TLS_/),
        sigAlg: 'ecdsa-with-SHA256',
        keyAlg: 'EC256',
      });
      // HAProxy's order (producers.test.ts): CRC32C, ALPN, authority, unique id, SSL.
      expect((pp.tlvs as Array<{ type: number }>).map((t) => t.type)).toEqual([0x03, 0x01, 0x02, 0x05, 0x20]);
    });

    it('TLS passthrough (mode tcp) to an https server: the header before the ClientHello', async () => {
      const { answer, curled } = await ask(`https://127.0.0.1:${ports.https}/`, ['--cacert', haproxy.certs.serverCertFile, '--http1.1']);
      expectThrough(answer, curled, ports.https, 2);
    });

    it('TLS passthrough (mode tcp) to an http2 secure server: curl --http2 gets HTTP/2', async () => {
      const { answer, curled } = await ask(`https://127.0.0.1:${ports.h2}/`, ['--cacert', haproxy.certs.serverCertFile, '--http2']);
      expect(curled.httpVersion).toBe('2');
      expectThrough(answer, curled, ports.h2, 2);
    });

    it('nginx stream proxy_protocol on (v1)', async () => {
      const { answer, curled } = await ask(`http://127.0.0.1:${ports.nginx}/`);
      expectThrough(answer, curled, ports.nginx, 1);
    });

    it('Express behind HAProxy (v2): req.realRemoteAddress() and req.ip are the client', async () => {
      const { answer, curled } = await ask(`http://127.0.0.1:${ports.express}/`);
      expectThrough(answer, curled, ports.express, 2);
      expect(answer.ip).toBe(CLIENT);
    });

    it('Fastify (plugin option proxyProtocol) behind HAProxy (v2): request.realRemoteAddress() and request.ip', async () => {
      if (setupErrors.fastify) throw setupErrors.fastify;
      const { answer, curled } = await ask(`http://127.0.0.1:${ports.fastify}/`);
      expectThrough(answer, curled, ports.fastify, 2);
      expect(answer.ip).toBe(CLIENT);
    });

    it('Koa (its server enabled with proxyProtocol) behind HAProxy (v1): ctx.realRemoteAddress() and ctx.ip', async () => {
      const { answer, curled } = await ask(`http://127.0.0.1:${ports.koa}/`);
      expectThrough(answer, curled, ports.koa, 1);
      expect(answer.ip).toBe(CLIENT);
    });

    it('the preload (NODE_OPTIONS, NODE_TOA_PROXY_PROTOCOL=required) behind HAProxy: the unmodified app reads the client from req.socket', async () => {
      if (setupErrors.preload) throw setupErrors.preload;
      const curled = await curl(`http://127.0.0.1:${ports.preload}/`);
      expect(curled.status).toBe(200);
      expect(JSON.parse(curled.body)).toEqual({ remoteAddress: CLIENT, remotePort: curled.localPort, remoteFamily: 'IPv4' });
    });

    it('HAProxy health checks (check-send-proxy, httpchk) send LOCAL: answered as the peer, the server stays UP', async () => {
      const deadline = Date.now() + 5000;
      while (healthChecks.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(healthChecks.length).toBeGreaterThanOrEqual(2);
      for (const check of healthChecks) {
        expect(check.real).toMatchObject({ source: 'peer', address: '127.0.0.1', port: check.l3.port, proxyProtocol: { version: 2, command: 'LOCAL' } });
      }
      // HAProxy's first check can land while this process is still busy in beforeAll (a busy CI
      // machine: 'Layer7 timeout'); what counts is that the gated server's answers pass the checks.
      const lastState = () => [...haproxy.log().matchAll(/Server be_check\/s is (UP|DOWN)/g)].map((m) => m[1]).pop() ?? 'UP';
      const upBy = Date.now() + 5000;
      while (lastState() !== 'UP' && Date.now() < upBy) await new Promise((r) => setTimeout(r, 50));
      expect(haproxy.log()).toMatch(/be_check\/s succeeded, reason: Layer7 check passed/);
      expect(lastState()).toBe('UP');
    });
  },
  cleanUp,
);
