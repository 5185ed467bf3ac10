// Every kind of Node server, through the core API and node-toa/register, end to end with TOA
// SYNs from IPv4 and IPv6 proxies: http, https, http2 over TLS and h2c (the compat API, whose
// req.socket is a Proxy, and the stream API), raw net and tls. TLS uses a certificate the test
// makes with openssl, verified by the clients.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { enable, listen, realRemoteAddress, type RealAddress } from '../../lib/index';
import '../../lib/register';
import { close } from '../helpers/sockets/pair';
import { selfSignedCert } from '../helpers/sockets/tls-cert';
import { ADDR, ToaNet, describeE2E, useToaNet } from '../helpers/netns/toa-net';

const trustProxy = [ADDR.lip4, ADDR.lip6];
const options = { trustProxy };
const onLinux = process.platform === 'linux' ? describe : describe.skip;

type Protocol = 'http' | 'https' | 'h2' | 'h2c' | 'tcp';

interface Kind {
  name: string;
  protocol: Protocol;
  /** Several requests on one connection (keep-alive, one h2 session). */
  multi: boolean;
  make(): net.Server;
}

const json = (a: RealAddress) => JSON.stringify(a);

function answerHttp(socket: net.Socket, res: http.ServerResponse | http2.Http2ServerResponse, how: 'core' | 'register') {
  const real = how === 'core' ? realRemoteAddress(socket, options) : socket.realRemoteAddress(options);
  res.setHeader('content-type', 'application/json');
  res.end(json(real));
}

function answerStream(stream: http2.ServerHttp2Stream, how: 'core' | 'register') {
  const socket = stream.session!.socket as net.Socket;
  const real = how === 'core' ? realRemoteAddress(socket, options) : socket.realRemoteAddress(options);
  stream.respond({ ':status': 200, 'content-type': 'application/json' });
  stream.end(json(real));
}

/** A TLS server speaking just enough HTTP/1.1 for the harness's https client. */
function tlsHttpServer(key: string, cert: string): tls.Server {
  return tls.createServer({ key, cert }, (socket) => {
    let head = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      head += chunk;
      if (!head.includes('\r\n\r\n')) return;
      const body = json(realRemoteAddress(socket, options));
      socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
  });
}

function kinds(): Kind[] {
  const { key, cert } = selfSignedCert();
  return [
    { name: 'http, core API', protocol: 'http', multi: true, make: () => http.createServer((q, r) => answerHttp(q.socket, r, 'core')) },
    { name: 'http, node-toa/register', protocol: 'http', multi: true, make: () => http.createServer((q, r) => answerHttp(q.socket, r, 'register')) },
    { name: 'https, core API', protocol: 'https', multi: true, make: () => https.createServer({ key, cert }, (q, r) => answerHttp(q.socket, r, 'core')) },
    { name: 'https, node-toa/register', protocol: 'https', multi: true, make: () => https.createServer({ key, cert }, (q, r) => answerHttp(q.socket, r, 'register')) },
    {
      name: 'http2 over TLS, compat API (req.socket is a Proxy)',
      protocol: 'h2',
      multi: true,
      make: () => http2.createSecureServer({ key, cert }, (q, r) => answerHttp(q.socket as net.Socket, r, 'core')),
    },
    {
      name: 'http2 over TLS, compat API with node-toa/register',
      protocol: 'h2',
      multi: true,
      make: () => http2.createSecureServer({ key, cert }, (q, r) => answerHttp(q.socket as net.Socket, r, 'register')),
    },
    {
      name: 'http2 over TLS, stream API',
      protocol: 'h2',
      multi: true,
      make: () => http2.createSecureServer({ key, cert }).on('stream', (s) => answerStream(s, 'core')),
    },
    { name: 'h2c, compat API', protocol: 'h2c', multi: true, make: () => http2.createServer((q, r) => answerHttp(q.socket as net.Socket, r, 'core')) },
    { name: 'h2c, stream API with node-toa/register', protocol: 'h2c', multi: true, make: () => http2.createServer().on('stream', (s) => answerStream(s, 'register')) },
    { name: 'net, core API', protocol: 'tcp', multi: false, make: () => net.createServer((s) => s.resume().end(json(realRemoteAddress(s, options)))) },
    { name: 'net, node-toa/register', protocol: 'tcp', multi: false, make: () => net.createServer((s) => s.resume().end(json(s.realRemoteAddress(options)))) },
    { name: 'tls, core API', protocol: 'https', multi: false, make: () => tlsHttpServer(key, cert) },
  ];
}

async function stop(server: net.Server): Promise<void> {
  (server as http.Server).closeAllConnections?.();
  if ('closeAllSessions' in server) (server as unknown as { closeAllSessions(): void }).closeAllSessions();
  await close(server);
}

describeE2E('http, https, http2, net and tls servers end to end, TOA SYNs through the proxy', () => {
  let netns: ToaNet;
  const ca = () => selfSignedCert().cert;
  useToaNet((created) => (netns = created));

  async function ask(kind: Kind, port: number, vip: string, localAddress: string, count: number) {
    const r = await netns.request({ protocol: kind.protocol, vip, port, localAddress, count, ca: ca(), path: '/' });
    expect(r.responses).toHaveLength(count);
    const answers = r.responses.map((x) => JSON.parse(x.body) as RealAddress);
    return { ...r, answers };
  }

  describe.each(kinds().map((k, i) => [k.name, k, i] as const))('%s', (_name, kind, index) => {
    let server: net.Server;
    let port: number;
    beforeEach(async () => {
      server = kind.make();
      enable(server);
      port = await netns.serve(server);
    });
    afterEach(async () => {
      await stop(server);
    });
    const count = kind.multi ? 3 : 1;
    const c4 = ADDR.clients4[index % ADDR.clients4.length];
    const c6 = ADDR.clients6[index % ADDR.clients6.length];

    it(`an IPv4 proxy: the IPv4 client${kind.multi ? ', the same for 3 requests on one connection' : ''}`, async () => {
      const { answers, localPort, responses } = await ask(kind, port, ADDR.vip4, c4, count);
      expect(new Set(responses.map((r) => r.localPort ?? localPort))).toEqual(new Set([localPort]));
      for (const a of answers) {
        expect(a).toEqual({
          address: c4, port: localPort, family: 'IPv4', source: 'toa', kind: 200, packet: 'syn',
          proxy: { address: ADDR.lip4, port: expect.any(Number), family: 'IPv4' },
        });
      }
    });

    it('an IPv6 proxy: the IPv6 client', async () => {
      const { answers, localPort } = await ask(kind, port, ADDR.vip6, c6, count);
      for (const a of answers) {
        expect(a).toMatchObject({ address: c6, port: localPort, family: 'IPv6', source: 'toa', proxy: { address: ADDR.lip6 } });
      }
    });
  });

  describe('http2 over TLS, compat API: what is not a trusted TOA', () => {
    let server: net.Server;
    let port: number;
    beforeEach(async () => {
      const { key, cert } = selfSignedCert();
      server = http2.createSecureServer({ key, cert }, (q, r) => answerHttp(q.socket as net.Socket, r, 'core'));
      enable(server);
      port = await netns.serve(server);
    });
    afterEach(async () => {
      await stop(server);
    });
    const h2 = { name: 'h2', protocol: 'h2' as const, multi: true, make: () => server };

    it('a connection without TOA: the peer', async () => {
      await netns.rule(ADDR.clients4[0], { where: 'none' });
      const { answers } = await ask(h2, port, ADDR.vip4, ADDR.clients4[0], 1);
      expect(answers[0]).toEqual({ address: ADDR.lip4, port: expect.any(Number), family: 'IPv4', source: 'peer' });
    });

    it("an untrusted peer's TOA is ignored: the peer", async () => {
      await netns.rule(ADDR.clients6[0], { where: 'syn', lip: ADDR.untrusted6 });
      const { answers } = await ask(h2, port, ADDR.vip6, ADDR.clients6[0], 1);
      expect(answers[0]).toEqual({ address: ADDR.untrusted6, port: expect.any(Number), family: 'IPv6', source: 'peer' });
    });
  });
});

onLinux('http2 compat on loopback', () => {
  it('req.socket (a Proxy) resolves, caches on the real socket, and answers the peer for every stream', async () => {
    const { key, cert } = selfSignedCert();
    const sockets = new Set<unknown>();
    const server = http2.createSecureServer({ key, cert }, (req, res) => {
      const first = realRemoteAddress(req.socket);
      sockets.add(req.stream.session!.socket);
      // The same frozen answer through the Proxy and through the session's own socket.
      res.end(JSON.stringify({ first, same: realRemoteAddress(req.stream.session!.socket as net.Socket) === first }));
    });
    await listen(server, { port: 0, host: '::1' });
    const { port } = server.address() as net.AddressInfo;
    const session = http2.connect(`https://[::1]:${port}`, { ca: cert });
    try {
      await new Promise((resolve, reject) => session.once('connect', resolve).once('error', reject));
      const localPort = (session.socket as net.Socket).localPort;
      for (let i = 0; i < 3; i++) {
        const body = await new Promise<string>((resolve, reject) => {
          const st = session.request({ ':path': '/' });
          let data = '';
          st.setEncoding('utf8');
          st.on('data', (c: string) => (data += c)).on('end', () => resolve(data)).on('error', reject);
        });
        expect(JSON.parse(body)).toEqual({ first: { address: '::1', port: localPort, family: 'IPv6', source: 'peer' }, same: true });
      }
      expect(sockets.size).toBe(1);
    } finally {
      session.destroy();
      await stop(server);
    }
  });
});
