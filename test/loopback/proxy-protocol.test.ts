// The PROXY protocol gate on real loopback sockets: crafted v1/v2 headers written by a real client,
// in one write with the data or byte by byte, before every server kind Node has. Trusted: the
// loopback peer; "untrusted": a trust list without it (198.51.100.0/24).
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as toa from '../../lib/index';
import { collectWarnings } from '../helpers/sockets/http-client';
import { byteByByte, exchange, prewritten } from '../helpers/producers/proxy-client';
import { DST4, DST6, PP2_TYPE, SRC4, SRC6, latin1, proxyV1, proxyV2, sslTlv } from '../helpers/vectors/proxy-vectors';
import { selfSignedCert } from '../helpers/sockets/tls-cert';
import { closeAfterEach } from '../helpers/sockets/pair';

const TRUSTED = { trustProxy: 'loopback' } as const;
const UNTRUSTED = { trustProxy: '198.51.100.0/24' } as const;

const servers = closeAfterEach();

async function start<T extends net.Server>(server: T, options: toa.EnableOptions): Promise<number> {
  toa.enable(server, options);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as net.AddressInfo).port;
}

/** What the server answers: the resolved client, and the request's bytes as it saw them. */
function describeRequest(req: http.IncomingMessage | http2.Http2ServerRequest, body: Buffer) {
  const real = toa.realRemoteAddress(req.socket, TRUSTED);
  return {
    url: req.url,
    bodyLength: body.length,
    bodySha: createHash('sha256').update(body).digest('hex'),
    source: real.source,
    address: real.address,
    port: real.port,
    family: real.family,
    proxy: real.proxy?.address,
    destination: real.destination,
    command: real.proxyProtocol?.command,
    version: real.proxyProtocol?.version,
  };
}

function jsonHandler(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(describeRequest(req, Buffer.concat(chunks))));
  });
}

/** The bodies of the HTTP/1.1 responses in `data` (Content-Length framed, as Node writes them). */
function responses(data: Buffer): { status: number; body: string }[] {
  const out: { status: number; body: string }[] = [];
  let rest = data.toString('latin1');
  for (let i = 0; i < 100 && rest.length > 0; i++) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.slice(0, end);
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]);
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
    out.push({ status, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

const GET = (path = '/', close = true) => `GET ${path} HTTP/1.1\r\nHost: x\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
const completeResponses = (n: number) => (d: Buffer) => responses(d).length >= n && responses(d).every((r) => r.body.endsWith('}'));

/** A net server answering each connection's first data with what it read and resolved. */
function echoServer(): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => undefined);
    let got = '';
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (!got.endsWith('\n')) return;
      const real = toa.realRemoteAddress(socket, TRUSTED);
      socket.write(JSON.stringify({ got, real }) + '\n');
    });
  });
}

async function echo(port: number, pieces: (Uint8Array | string)[], gapMs = 0) {
  const r = await exchange(port, pieces, { gapMs, until: (d) => d.includes(0x0a) });
  expect(r.data.length).toBeGreaterThan(0);
  return JSON.parse(r.data.toString('utf8')) as { got: string; real: toa.RealAddress & { proxyProtocol?: { tlvs: { type: number; value: { data: number[] } }[] } } };
}

describe('v1 on a net server', () => {
  test('TCP4: the client, the proxy, the destination; the data after the header arrives as it was', async () => {
    const port = await start(echoServer(), { proxyProtocol: true, ...TRUSTED });
    const { got, real } = await echo(port, [Buffer.concat([proxyV1('TCP4', SRC4, DST4), latin1('hello\n')])]);
    expect(got).toBe('hello\n');
    expect(real).toMatchObject({
      address: SRC4.address, port: SRC4.port, family: 'IPv4', source: 'proxy-protocol',
      proxy: { address: '127.0.0.1', family: 'IPv4' },
      destination: { address: DST4.address, port: DST4.port, family: 'IPv4' },
      proxyProtocol: { version: 1, command: 'PROXY', tlvs: [], crc32c: false },
    });
  });

  test('TCP6', async () => {
    const port = await start(echoServer(), { proxyProtocol: true, ...TRUSTED });
    const { got, real } = await echo(port, [proxyV1('TCP6', SRC6, DST6), 'six\n'], 20);
    expect(got).toBe('six\n');
    expect(real).toMatchObject({ address: SRC6.address, port: SRC6.port, family: 'IPv6', source: 'proxy-protocol' });
    expect(real.destination).toEqual({ address: DST6.address, port: DST6.port, family: 'IPv6' });
  });

  test('UNKNOWN: the peer, with the header beside it; the connection is kept', async () => {
    const port = await start(echoServer(), { proxyProtocol: true, ...TRUSTED });
    const { got, real } = await echo(port, [proxyV1('UNKNOWN'), 'unknown\n']);
    expect(got).toBe('unknown\n');
    expect(real).toMatchObject({ address: '127.0.0.1', source: 'peer', proxyProtocol: { version: 1, command: 'PROXY' } });
    expect(real.proxy).toBeUndefined();
  });
});

describe('v2 on a net server', () => {
  const ssl = sslTlv({
    client: 0x01 | 0x02,
    verify: 0,
    tlvs: [
      { type: PP2_TYPE.SSL_VERSION, value: 'TLSv1.3' },
      { type: PP2_TYPE.SSL_CN, value: 'client.example' },
      { type: PP2_TYPE.SSL_CIPHER, value: 'TLS_AES_128_GCM_SHA256' },
    ],
  });
  const tlvs = [
    { type: PP2_TYPE.ALPN, value: 'h2' },
    { type: PP2_TYPE.AUTHORITY, value: 'www.example.com' },
    { type: PP2_TYPE.UNIQUE_ID, value: Uint8Array.of(1, 2, 3, 4, 5) },
    ssl,
    { type: PP2_TYPE.NETNS, value: 'blue' },
    { type: 0xea, value: Uint8Array.from([0x01, ...latin1('vpce-0123456789abcdef0')]) },
    { type: 0xee, value: Uint8Array.of(0x01, 0x78, 0x56, 0x34, 0x12) },
    { type: 0xe0, value: Uint8Array.of(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08) },
    { type: 0xe1, value: Uint8Array.from([0x01, ...latin1('vpc-bp1example')]) },
    { type: 0xe1, value: Uint8Array.from([0x02, ...latin1('ep-bp1endpoint')]) },
    { type: 0xe1, value: Uint8Array.from([0x03, ...latin1('epsrv-bp1service')]) },
    { type: 0xf0, value: 'custom' },
  ];

  test('IPv4 with the well-known TLVs and a good CRC32c: every value decoded, the raw list kept', async () => {
    const port = await start(echoServer(), { proxyProtocol: true, ...TRUSTED });
    const header = proxyV2({ source: SRC4, destination: DST4, tlvs, crc: true });
    const { got, real } = await echo(port, [Buffer.concat([header, latin1('v2\n')])]);
    expect(got).toBe('v2\n');
    expect(real).toMatchObject({
      address: SRC4.address, port: SRC4.port, source: 'proxy-protocol',
      destination: { address: DST4.address, port: DST4.port },
      proxyProtocol: {
        version: 2, command: 'PROXY', crc32c: true,
        alpn: 'h2', authority: 'www.example.com', netns: 'blue',
        ssl: { client: 3, verify: 0, verified: true, version: 'TLSv1.3', cn: 'client.example', cipher: 'TLS_AES_128_GCM_SHA256' },
        vpceId: 'vpce-0123456789abcdef0',
        linkId: 0x12345678,
        pscConnectionId: '72623859790382856',
        alibaba: { vpcId: 'vpc-bp1example', endpointId: 'ep-bp1endpoint', endpointServiceId: 'epsrv-bp1service' },
      },
    });
    const raw = real.proxyProtocol!.tlvs;
    expect(raw.map((t) => t.type)).toEqual([...tlvs.map((t) => t.type), PP2_TYPE.CRC32C]);
    expect(Buffer.from(raw[raw.length - 2].value.data).toString()).toBe('custom');
    expect((real.proxyProtocol as unknown as { uniqueId: { data: number[] } }).uniqueId.data).toEqual([1, 2, 3, 4, 5]);
  });

  test('values are Buffers of their own, frozen beside the answer', async () => {
    let seen: toa.RealAddress | undefined;
    const server = net.createServer((socket) => {
      seen = toa.realRemoteAddress(socket, TRUSTED);
      socket.end('ok');
    });
    const port = await start(server, { proxyProtocol: true, ...TRUSTED });
    await exchange(port, [proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: 0xf1, value: 'abc' }] })]);
    const tlv = seen!.proxyProtocol!.tlvs[0];
    expect(Buffer.isBuffer(tlv.value)).toBe(true);
    expect(tlv.value.toString()).toBe('abc');
    expect(Object.isFrozen(seen!.proxyProtocol)).toBe(true);
    expect(Object.isFrozen(seen!.proxyProtocol!.tlvs)).toBe(true);
  });

  test('an SSL TLV without a client certificate is not verified, whatever verify says', async () => {
    const port = await start(echoServer(), { proxyProtocol: true, ...TRUSTED });
    const header = proxyV2({ source: SRC4, destination: DST4, tlvs: [sslTlv({ client: 0x01, verify: 0 })] });
    const { real } = await echo(port, [header, 'x\n'], 10);
    expect(real.proxyProtocol).toMatchObject({ ssl: { client: 1, verify: 0, verified: false } });
  });

  test('IPv6', async () => {
    const port = await start(echoServer(), { proxyProtocol: true, ...TRUSTED });
    const { real } = await echo(port, [Buffer.concat([proxyV2({ source: SRC6, destination: DST6 }), latin1('6\n')])]);
    expect(real).toMatchObject({ address: SRC6.address, family: 'IPv6', source: 'proxy-protocol', destination: { address: DST6.address } });
  });

  test('LOCAL (a health check): the peer, the connection stays open and answers', async () => {
    const port = await start(echoServer(), { proxyProtocol: true, ...TRUSTED });
    const { got, real } = await echo(port, [proxyV2({ command: 'LOCAL' }), 'health\n'], 10);
    expect(got).toBe('health\n');
    expect(real).toMatchObject({ source: 'peer', address: '127.0.0.1', proxyProtocol: { version: 2, command: 'LOCAL' } });
  });

  test('PROXY with UNSPEC and with AF_UNIX: the peer, with the header', async () => {
    const port = await start(echoServer(), { proxyProtocol: true, ...TRUSTED });
    const unspec = await echo(port, [Buffer.concat([proxyV2({ family: 'unspec' }), latin1('u\n')])]);
    expect(unspec.real).toMatchObject({ source: 'peer', address: '127.0.0.1', proxyProtocol: { command: 'PROXY' } });
    const unix = await echo(port, [Buffer.concat([proxyV2({ family: 'unix', source: '/run/a.sock', destination: '/run/b.sock' }), latin1('x\n')])]);
    expect(unix.got).toBe('x\n');
    expect(unix.real).toMatchObject({ source: 'peer', address: '127.0.0.1', proxyProtocol: { version: 2, command: 'PROXY' } });
  });

  test('a bad CRC32c closes the connection, is counted, and warned about once per peer', async () => {
    const port = await start(echoServer(), { proxyProtocol: true, ...TRUSTED });
    const before = toa.metrics();
    const { result, warnings } = await collectWarnings(() =>
      Promise.all([1, 2].map(() => exchange(port, [proxyV2({ source: SRC4, destination: DST4, crc: 'bad' }), 'never\n']))),
    );
    for (const r of result) {
      expect(r.closed).toBe(true);
      expect(r.data.length).toBe(0);
    }
    const after = toa.metrics();
    expect(after.proxyProtocol.malformed - before.proxyProtocol.malformed).toBe(2);
    expect(after.ports[port].proxyProtocol.malformed).toBe(2);
    expect(toa.stats().proxyProtocol.malformed).toBe(after.proxyProtocol.malformed);
    const ours = warnings.filter((w) => w.code === 'NODE_TOA_PROXY_HEADER');
    // The first refusal of this file (jest gives each file its own modules): one warning for two.
    expect(ours).toHaveLength(1);
    expect(ours[0].message).toContain('from 127.0.0.1');
    expect(ours[0].message).toContain('bad CRC32c');
  });
});

describe('every byte after the header, once, to every stack', () => {
  const header = proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: PP2_TYPE.AUTHORITY, value: 'www.example.com' }] });

  test('http: the header and the request in one write', async () => {
    const port = await start(http.createServer(jsonHandler), { proxyProtocol: true, ...TRUSTED });
    const r = await exchange(port, [Buffer.concat([header, latin1(GET('/one'))])], { until: completeResponses(1) });
    const [res] = responses(r.data);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ url: '/one', source: 'proxy-protocol', address: SRC4.address, port: SRC4.port });
  });

  test('http: header and request split byte by byte across segments', async () => {
    const port = await start(http.createServer(jsonHandler), { proxyProtocol: true, ...TRUSTED });
    const body = 'a=1&b=2';
    const request = `POST /split HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    const r = await exchange(port, byteByByte(header, request), { gapMs: 1, until: completeResponses(1), timeoutMs: 10000 });
    const [res] = responses(r.data);
    expect(JSON.parse(res.body)).toMatchObject({
      url: '/split', bodyLength: body.length, bodySha: createHash('sha256').update(body).digest('hex'),
      source: 'proxy-protocol', address: SRC4.address,
    });
  }, 15000);

  test('http: pipelined requests in the header\'s segment, answered in order, each once', async () => {
    let requests = 0;
    const port = await start(http.createServer((req, res) => { requests++; jsonHandler(req, res); }), { proxyProtocol: true, ...TRUSTED });
    const wire = Buffer.concat([proxyV1('TCP4', SRC4, DST4), latin1(GET('/a', false) + GET('/b', false) + GET('/c'))]);
    const r = await exchange(port, [wire], { until: completeResponses(3) });
    const got = responses(r.data).map((x) => JSON.parse(x.body) as { url: string; source: string });
    expect(got.map((x) => x.url)).toEqual(['/a', '/b', '/c']);
    expect(got.every((x) => x.source === 'proxy-protocol')).toBe(true);
    expect(requests).toBe(3);
  });

  test('http: a 1 MiB body behind the header arrives whole', async () => {
    const port = await start(http.createServer(jsonHandler), { proxyProtocol: true, ...TRUSTED });
    const body = Buffer.alloc(1 << 20);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const head = latin1(`POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    const r = await exchange(port, [Buffer.concat([header, head, body.subarray(0, 1000)]), body.subarray(1000)], { until: completeResponses(1), timeoutMs: 10000 });
    expect(JSON.parse(responses(r.data)[0].body)).toMatchObject({
      bodyLength: body.length, bodySha: createHash('sha256').update(body).digest('hex'), source: 'proxy-protocol',
    });
  });

  test('https: the header before the ClientHello', async () => {
    const { key, cert } = selfSignedCert();
    const port = await start(https.createServer({ key, cert }, jsonHandler), { proxyProtocol: true, ...TRUSTED });
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.get({
        host: '127.0.0.1', port, path: '/tls', ca: cert,
        createConnection: () => tls.connect({ socket: prewritten(port, header), ca: cert, servername: 'localhost' }),
      } as https.RequestOptions, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
    });
    expect(JSON.parse(body)).toMatchObject({ url: '/tls', source: 'proxy-protocol', address: SRC4.address });
  });

  test('tls: the header split from the ClientHello, the echo once', async () => {
    const { key, cert } = selfSignedCert();
    const server = tls.createServer({ key, cert }, (s) => {
      s.once('data', (d) => s.end(JSON.stringify({ got: d.toString(), real: toa.realRemoteAddress(s, TRUSTED) })));
    });
    const port = await start(server, { proxyProtocol: true, ...TRUSTED });
    const raw = net.connect(port, '127.0.0.1');
    raw.setNoDelay(true);
    const pieces = byteByByte(proxyV1('TCP6', SRC6, DST6));
    await new Promise<void>((r) => raw.once('connect', () => r()));
    for (const p of pieces) await new Promise<void>((r) => raw.write(p, () => setTimeout(r, 1)));
    const text = await new Promise<string>((resolve, reject) => {
      const t = tls.connect({ socket: raw, ca: cert, servername: 'localhost' }, () => t.write('ping'));
      let out = '';
      t.on('data', (d) => (out += d));
      t.on('end', () => resolve(out));
      t.on('error', reject);
    });
    const { got, real } = JSON.parse(text);
    expect(got).toBe('ping');
    expect(real).toMatchObject({ source: 'proxy-protocol', address: SRC6.address, port: SRC6.port });
  });

  test('http2 over TLS', async () => {
    const { key, cert } = selfSignedCert();
    const port = await start(http2.createSecureServer({ key, cert }, jsonHandler), { proxyProtocol: true, ...TRUSTED });
    const client = http2.connect(`https://127.0.0.1:${port}`, {
      ca: cert,
      createConnection: () => tls.connect({ socket: prewritten(port, header), ca: cert, servername: 'localhost', ALPNProtocols: ['h2'] }),
    });
    try {
      const body = await h2get(client, '/h2');
      expect(JSON.parse(body)).toMatchObject({ url: '/h2', source: 'proxy-protocol', address: SRC4.address });
      expect(JSON.parse(await h2get(client, '/again'))).toMatchObject({ url: '/again', source: 'proxy-protocol' });
    } finally {
      client.close();
    }
  });

  test('h2c: the preface right behind the header', async () => {
    const port = await start(http2.createServer(jsonHandler), { proxyProtocol: true, ...TRUSTED });
    const client = http2.connect(`http://127.0.0.1:${port}`, { createConnection: () => prewritten(port, header) });
    try {
      expect(JSON.parse(await h2get(client, '/h2c'))).toMatchObject({ url: '/h2c', source: 'proxy-protocol', address: SRC4.address });
    } finally {
      client.close();
    }
  });
});

function h2get(client: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':path': path });
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (text += d));
    req.on('end', () => resolve(text));
    req.on('error', reject);
    req.end();
  });
}

describe('trust first', () => {
  test('untrusted peer, forged header: HTTP 400 from http, and the answer is the peer', async () => {
    const seen: toa.RealAddress[] = [];
    const server = http.createServer((req, res) => { seen.push(toa.realRemoteAddress(req.socket, TRUSTED)); res.end(); });
    const port = await start(server, { proxyProtocol: true, ...UNTRUSTED });
    const r = await exchange(port, [Buffer.concat([proxyV1('TCP4', SRC4, DST4), latin1(GET())])]);
    expect(r.data.toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
    expect(seen).toHaveLength(0);
  });

  test('untrusted peer on net: the header reaches the application as data; the peer is the answer', async () => {
    const port = await start(echoServer(), { proxyProtocol: true, ...UNTRUSTED });
    const forged = proxyV1('TCP4', SRC4, DST4);
    const { got, real } = await echo(port, [forged]);
    expect(got).toBe(Buffer.from(forged).toString('latin1'));
    expect(real).toMatchObject({ source: 'peer', address: '127.0.0.1' });
    expect(real.proxyProtocol).toBeUndefined();
  });

  test('the gate follows configure() when enable() is given no trustProxy', async () => {
    const port = await start(echoServer(), { proxyProtocol: true });
    toa.configure({ trustProxy: 'loopback' });
    try {
      const { got, real } = await echo(port, [Buffer.concat([header4(), latin1('c\n')])]);
      expect(got).toBe('c\n');
      expect(real.source).toBe('proxy-protocol');
    } finally {
      toa.configure({});
    }
    // Trusting no one now: the header is data, and one warning says why (the first in this file).
    const { result, warnings } = await collectWarnings(async () => [
      await echo(port, [Buffer.concat([header4(), latin1('d\n')])]),
      await echo(port, [Buffer.concat([header4(), latin1('e\n')])]),
    ]);
    expect(result[0].got.endsWith('d\n')).toBe(true);
    expect(result[0].got.length).toBeGreaterThan(2);
    expect(result[1].got.endsWith('e\n')).toBe(true);
    expect(warnings.filter((w) => w.code?.startsWith('NODE_TOA_PROXY'))).toEqual([
      {
        code: 'NODE_TOA_PROXY_NO_TRUST',
        message:
          `node-toa: proxyProtocol is on (port ${port}) but trustProxy trusts no one, so no PROXY protocol header is ` +
          'read and each reaches the application as data. Pass trustProxy with proxyProtocol (enable(), listen(), ' +
          'install(), the Fastify plugin) or set it with configure({ trustProxy }).',
      },
    ]);
  });

  test("the header the server's trust read is every resolver's answer (theirs is for TOA), with no options too", async () => {
    const answers: toa.RealAddress[] = [];
    const server = net.createServer((s) => {
      answers.push(toa.realRemoteAddress(s, UNTRUSTED), toa.realRemoteAddress(s), toa.createResolver({ trustProxy: false })(s));
      s.end('.');
    });
    const port = await start(server, { proxyProtocol: true, ...TRUSTED });
    await exchange(port, [header4()]);
    expect(answers).toHaveLength(3);
    for (const a of answers) expect(a).toMatchObject({ source: 'proxy-protocol', address: SRC4.address, proxy: { address: '127.0.0.1' } });
  });
});

const header4 = () => proxyV2({ source: SRC4, destination: DST4 });

describe('headers that close the connection', () => {
  async function closedWith(options: toa.EnableOptions, pieces: (Uint8Array | string)[], outcome: keyof toa.ProxyProtocolCounts, gapMs = 0) {
    let served = 0;
    const port = await start(http.createServer((req, res) => { served++; res.end('x'); }), { ...TRUSTED, ...options });
    const before = toa.metrics().proxyProtocol[outcome];
    const r = await exchange(port, pieces, { gapMs, timeoutMs: 8000 });
    expect(r.closed).toBe(true);
    expect(r.data.length).toBe(0);
    expect(served).toBe(0);
    expect(toa.metrics().proxyProtocol[outcome] - before).toBe(1);
    expect(toa.metrics().ports[port].proxyProtocol[outcome]).toBe(1);
    return r;
  }

  test('malformed v1', () => closedWith({ proxyProtocol: true }, ['PROXY TCP4 192.0.2.1 nonsense\r\n' + GET()], 'malformed'));

  test('larger than maxHeaderSize (a v2 TLV of 400 bytes, the limit 300)', () =>
    closedWith(
      { proxyProtocol: { maxHeaderSize: 300 } },
      [proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: 0xf2, value: Buffer.alloc(400, 1) }] }), GET()],
      'tooLarge',
    ));

  test('a small maxHeaderSize (40): a v1 TCP6 line longer than it is refused, in one write and split', async () => {
    const line = Buffer.from(proxyV1('TCP6', SRC6, DST6));
    expect(line.length).toBeGreaterThan(40);
    await closedWith({ proxyProtocol: { maxHeaderSize: 40 } }, [Buffer.concat([line, latin1(GET())])], 'tooLarge');
    await closedWith({ proxyProtocol: { maxHeaderSize: 40 } }, [line.subarray(0, 30), Buffer.concat([line.subarray(30), latin1(GET())])], 'tooLarge', 30);
  });

  test('a small maxHeaderSize (40) still takes a v2 IPv4 header (28 bytes)', async () => {
    const port = await start(echoServer(), { proxyProtocol: { maxHeaderSize: 40 }, ...TRUSTED });
    const { got, real } = await echo(port, [Buffer.concat([header4(), latin1('small\n')])]);
    expect(got).toBe('small\n');
    expect(real).toMatchObject({ source: 'proxy-protocol', address: SRC4.address });
  });

  test('required and missing', () => closedWith({ proxyProtocol: 'required' }, [GET()], 'missing'));

  test('the peer stops inside the header', async () => {
    const port = await start(echoServer(), { proxyProtocol: true, ...TRUSTED });
    const before = toa.metrics().proxyProtocol.malformed;
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.end(Buffer.from(header4()).subarray(0, 20));
    await new Promise<void>((r) => socket.once('close', () => r()));
    expect(toa.metrics().proxyProtocol.malformed - before).toBe(1);
  });

  test('slow: closed at about the timeout, while other connections are served', async () => {
    let served = 0;
    const port = await start(echoServer().on('connection', () => served++), { proxyProtocol: { timeout: 400 }, ...TRUSTED });
    const before = toa.metrics().proxyProtocol.timeout;
    const half = Buffer.from(header4()).subarray(0, 10);
    const slow = exchange(port, [half], { timeoutMs: 5000 });
    // Meanwhile, whole headers on other connections are answered at once.
    for (let i = 0; i < 3; i++) {
      const fast = await echo(port, [Buffer.concat([header4(), latin1(`f${i}\n`)])]);
      expect(fast.got).toBe(`f${i}\n`);
    }
    const r = await slow;
    expect(r.closed).toBe(true);
    expect(r.ms).toBeGreaterThanOrEqual(350);
    expect(r.ms).toBeLessThan(3000);
    expect(toa.metrics().proxyProtocol.timeout - before).toBe(1);
    expect(served).toBe(3);
  });
});

describe('optional', () => {
  test('a header is read; without one the bytes pass as they are', async () => {
    const port = await start(http.createServer(jsonHandler), { proxyProtocol: 'optional', ...TRUSTED });
    const withHeader = await exchange(port, [Buffer.concat([header4(), latin1(GET('/h'))])], { until: completeResponses(1) });
    expect(JSON.parse(responses(withHeader.data)[0].body)).toMatchObject({ url: '/h', source: 'proxy-protocol' });
    const without = await exchange(port, [GET('/plain')], { until: completeResponses(1) });
    expect(JSON.parse(responses(without.data)[0].body)).toMatchObject({ url: '/plain', source: 'peer', address: '127.0.0.1' });
  });

  test('a peer that says nothing is passed on at the timeout (it may wait for the server to speak)', async () => {
    const server = net.createServer((s) => s.end('hello first\n'));
    const port = await start(server, { proxyProtocol: { mode: 'optional', timeout: 200 }, ...TRUSTED });
    const r = await exchange(port, [], { until: (d) => d.includes(0x0a) });
    expect(r.data.toString()).toBe('hello first\n');
    expect(r.ms).toBeGreaterThanOrEqual(150);
  });
});

describe('where the option goes', () => {
  test('listen(server, { proxyProtocol, trustProxy })', async () => {
    const server = http.createServer(jsonHandler);
    servers.push(server);
    await toa.listen(server, { port: 0, host: '127.0.0.1', proxyProtocol: true, ...TRUSTED });
    const port = (server.address() as net.AddressInfo).port;
    const r = await exchange(port, [Buffer.concat([header4(), latin1(GET('/listen'))])], { until: completeResponses(1) });
    expect(JSON.parse(responses(r.data)[0].body)).toMatchObject({ url: '/listen', source: 'proxy-protocol', address: SRC4.address });
  });

  test('enable() on a server that already listens, and a listener added after enable()', async () => {
    const server = echoServer();
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    toa.enable(server, { proxyProtocol: true, ...TRUSTED });
    const late: string[] = [];
    server.on('connection', (s: net.Socket) => late.push(toa.realRemoteAddress(s, TRUSTED).source));
    const port = (server.address() as net.AddressInfo).port;
    const { got } = await echo(port, [Buffer.concat([header4(), latin1('late\n')])]);
    expect(got).toBe('late\n');
    expect(late).toEqual(['proxy-protocol']);
  });

  test('a socket a user emits itself is passed through untouched', async () => {
    const server = http.createServer((req, res) => res.end('ok'));
    toa.enable(server, { proxyProtocol: true, ...TRUSTED });
    const seen: unknown[] = [];
    server.on('connection', (s) => seen.push(s));
    const { Duplex } = await import('node:stream');
    const fake = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
    server.emit('connection', fake);
    expect(seen).toEqual([fake]);
    fake.destroy();
  });
});
