// The gate's two ways to a header on real loopback sockets: taken off the socket at accept when it
// is already whole there (the peek), or read from the stream when it is not. A client on a worker
// thread writes while this thread is blocked, so what is in the server's receive queue at accept
// is decided by the test, not by timing. Either way the bytes after the header reach the
// application exactly once, in order.
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as toa from '../../lib/index';
import { gateReads } from '../../lib/proxy-protocol/gate';
import { collectWarnings } from '../helpers/sockets/http-client';
import { DST4, DST6, PP2_TYPE, SRC4, SRC6, latin1, proxyV1, proxyV2 } from '../helpers/vectors/proxy-vectors';
import { closeAfterEach } from '../helpers/sockets/pair';

const TRUSTED = { trustProxy: 'loopback' } as const;
const CLIENT = path.join(__dirname, '..', 'helpers', 'children', 'before-accept-client.js');

interface Seen {
  /** Everything the application read, until the client's half-close. */
  data: Buffer;
  real: toa.RealAddress;
  remoteAddress: string | undefined;
}

const servers = closeAfterEach();

/** A net server that collects what it reads until the client's FIN, then answers 'ok' and closes. */
async function collector(options: toa.EnableOptions): Promise<{ port: number; seen: Promise<Seen> }> {
  let found!: (s: Seen) => void;
  const seen = new Promise<Seen>((r) => (found = r));
  const server = net.createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => {
      found({ data: Buffer.concat(chunks), real: toa.realRemoteAddress(socket, TRUSTED), remoteAddress: socket.remoteAddress });
      socket.end('ok');
    });
    socket.on('error', () => socket.destroy());
  });
  toa.enable(server, options);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, seen };
}

/**
 * `first` is in the server's receive queue before the server can accept (this thread waits for
 * the worker's write); `later` follows once the server had a turn, then the client half-closes.
 */
async function connect(port: number, first: Uint8Array, later: Uint8Array = new Uint8Array(0)): Promise<{ data: Buffer; closed: boolean }> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(CLIENT, { workerData: { port, first, later, flag } });
  try {
    const answer = new Promise<{ data: Uint8Array; closed: boolean }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const seen = gateReads.peeked + gateReads.streamed;
    // Blocks this thread (and so the server's accept) until the worker's write is done.
    expect(Atomics.wait(flag, 0, 0, 5000)).not.toBe('timed-out');
    // The rest only once the gate has looked at what was there at accept (bounded: 5 s).
    for (let i = 0; i < 500 && gateReads.peeked + gateReads.streamed === seen; i++) await new Promise((r) => setTimeout(r, 10));
    worker.postMessage('later');
    const r = await answer;
    return { data: Buffer.from(r.data), closed: r.closed };
  } finally {
    await worker.terminate();
  }
}

function counts() {
  const start = { ...gateReads };
  return () => ({ peeked: gateReads.peeked - start.peeked, streamed: gateReads.streamed - start.streamed });
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('a header already whole at accept: taken off the socket', () => {
  test('v2: the client, and the bytes after the header once (some before accept, some after)', async () => {
    const { port, seen } = await collector({ proxyProtocol: true, ...TRUSTED });
    const reads = counts();
    const header = proxyV2({ source: SRC4, destination: DST4 });
    const r = await connect(port, Buffer.concat([header, latin1('GET / HTTP/1.1\r\n')]), latin1('Host: x\r\n\r\n'));
    const s = await seen;
    expect(r.data.toString()).toBe('ok');
    expect(s.data.toString('latin1')).toBe('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(s.real).toMatchObject({ source: 'proxy-protocol', address: SRC4.address, port: SRC4.port, destination: DST4 });
    expect(s.real.proxy).toMatchObject({ address: '127.0.0.1' });
    expect(s.real.proxyProtocol).toMatchObject({ version: 2, command: 'PROXY', tlvs: [], crc32c: false });
    // Node's own getter still says who connected (the gate's getpeername, cached for it).
    expect(s.remoteAddress).toBe('127.0.0.1');
    expect(reads()).toEqual({ peeked: 1, streamed: 0 });
  });

  test('v1 over IPv6 addresses', async () => {
    const { port, seen } = await collector({ proxyProtocol: true, ...TRUSTED });
    const reads = counts();
    await connect(port, Buffer.concat([proxyV1('TCP6', SRC6, DST6), latin1('x')]));
    const s = await seen;
    expect(s.data.toString('latin1')).toBe('x');
    expect(s.real).toMatchObject({ source: 'proxy-protocol', address: SRC6.address, port: SRC6.port, family: 'IPv6', destination: DST6 });
    expect(s.real.proxyProtocol).toMatchObject({ version: 1, command: 'PROXY' });
    expect(reads()).toEqual({ peeked: 1, streamed: 0 });
  });

  test('v2 with TLVs and a CRC32c: decoded from the header\'s bytes at the first resolution', async () => {
    const { port, seen } = await collector({ proxyProtocol: true, ...TRUSTED });
    const reads = counts();
    const header = proxyV2({ source: SRC4, destination: DST4, crc: true, tlvs: [{ type: PP2_TYPE.AUTHORITY, value: 'www.example.com' }] });
    await connect(port, Buffer.concat([header, latin1('after')]));
    const s = await seen;
    expect(s.data.toString('latin1')).toBe('after');
    expect(s.real.proxyProtocol).toMatchObject({ authority: 'www.example.com', crc32c: true });
    expect(s.real.proxyProtocol?.tlvs.map((t) => t.type)).toEqual([PP2_TYPE.AUTHORITY, PP2_TYPE.CRC32C]);
    expect(reads()).toEqual({ peeked: 1, streamed: 0 });
  });

  test('a LOCAL header: the peer, with the header beside it', async () => {
    const { port, seen } = await collector({ proxyProtocol: true, ...TRUSTED });
    const reads = counts();
    await connect(port, proxyV2({ command: 'LOCAL', family: 'unspec' }));
    const s = await seen;
    expect(s.data.length).toBe(0);
    expect(s.real).toMatchObject({ source: 'peer', address: '127.0.0.1', proxyProtocol: { command: 'LOCAL' } });
    expect(reads()).toEqual({ peeked: 1, streamed: 0 });
  });

  test('32 KiB before accept and 1 MiB after: every byte once, in order', async () => {
    const { port, seen } = await collector({ proxyProtocol: true, ...TRUSTED });
    const reads = counts();
    const body = Buffer.alloc((1 << 20) + (32 << 10));
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 9)) & 0xff;
    const header = proxyV1('TCP4', SRC4, DST4);
    await connect(port, Buffer.concat([header, body.subarray(0, 32 << 10)]), body.subarray(32 << 10));
    const s = await seen;
    expect(s.data.length).toBe(body.length);
    expect(sha(s.data)).toBe(sha(body));
    expect(reads()).toEqual({ peeked: 1, streamed: 0 });
  }, 15000);

  test('optional and no header: the bytes stay in the socket for the application, once', async () => {
    const { port, seen } = await collector({ proxyProtocol: 'optional', ...TRUSTED });
    const reads = counts();
    await connect(port, latin1('GET / HTTP/1.1\r\n'), latin1('\r\n'));
    const s = await seen;
    expect(s.data.toString('latin1')).toBe('GET / HTTP/1.1\r\n\r\n');
    expect(s.real).toMatchObject({ source: 'peer', address: '127.0.0.1' });
    expect(reads()).toEqual({ peeked: 1, streamed: 0 });
  });

  test.each([
    ['malformed', () => proxyV2({ source: SRC4, destination: DST4, crc: 'bad' }), 'bad CRC32c'],
    ['missing', () => latin1('GET / HTTP/1.1\r\n\r\n'), undefined],
    ['tooLarge', () => proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: PP2_TYPE.NOOP, value: Buffer.alloc(400) }] }), 'longer than maxSize'],
  ] as const)('%s: closed at accept, counted (warned once per peer: the first case here)', async (outcome, bytes, reason) => {
    const { port } = await collector({ proxyProtocol: { mode: 'required', maxHeaderSize: 232 }, ...TRUSTED });
    const reads = counts();
    const before = toa.metrics().proxyProtocol[outcome];
    const { result, warnings } = await collectWarnings(() => connect(port, bytes()));
    expect(result.closed).toBe(true);
    expect(result.data.length).toBe(0);
    expect(toa.metrics().proxyProtocol[outcome]).toBe(before + 1);
    const ours = warnings.filter((w) => w.code === 'NODE_TOA_PROXY_HEADER');
    expect(ours).toHaveLength(outcome === 'malformed' ? 1 : 0);
    if (outcome === 'malformed') expect(ours[0].message).toContain(reason);
    expect(reads()).toEqual({ peeked: 1, streamed: 0 });
  });
});

describe('a header not whole at accept: read from the stream', () => {
  test('v2 split: its first 10 bytes before accept, the rest after; the bytes after it once', async () => {
    const { port, seen } = await collector({ proxyProtocol: true, ...TRUSTED });
    const reads = counts();
    const header = proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: PP2_TYPE.AUTHORITY, value: 'a.example' }] });
    await connect(port, header.subarray(0, 10), Buffer.concat([header.subarray(10), latin1('rest of the stream')]));
    const s = await seen;
    expect(s.data.toString('latin1')).toBe('rest of the stream');
    expect(s.real).toMatchObject({ source: 'proxy-protocol', address: SRC4.address, proxyProtocol: { authority: 'a.example' } });
    expect(reads()).toEqual({ peeked: 0, streamed: 1 });
  });

  test('nothing at accept: v1 and data after it, once', async () => {
    const { port, seen } = await collector({ proxyProtocol: true, ...TRUSTED });
    const reads = counts();
    await connect(port, new Uint8Array(0), Buffer.concat([proxyV1('TCP4', SRC4, DST4), latin1('hello')]));
    const s = await seen;
    expect(s.data.toString('latin1')).toBe('hello');
    expect(s.real).toMatchObject({ source: 'proxy-protocol', address: SRC4.address });
    expect(s.remoteAddress).toBe('127.0.0.1');
    expect(reads()).toEqual({ peeked: 0, streamed: 1 });
  });
});

describe('one getpeername per connection', () => {
  test("socket.remoteAddress answers from the gate's peer name, without a syscall of its own", async () => {
    let calls = -1;
    let remote: string | undefined;
    const server = net.createServer((socket) => {
      const handle = (socket as unknown as { _handle: { getpeername: (out: object) => number } })._handle;
      const own = handle.getpeername.bind(handle);
      calls = 0;
      handle.getpeername = (out: object) => {
        calls++;
        return own(out);
      };
      remote = socket.remoteAddress;
      socket.on('data', () => {});
      socket.on('end', () => socket.end());
    });
    toa.enable(server, { proxyProtocol: true, ...TRUSTED });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    await connect((server.address() as net.AddressInfo).port, proxyV1('TCP4', SRC4, DST4));
    expect(remote).toBe('127.0.0.1');
    expect(calls).toBe(0);
  });
});
