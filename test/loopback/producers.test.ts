// The producer harness on its own (test/helpers/producers/haproxy-nginx.ts): real HAProxy 2.6 and nginx 1.22 in
// front of a raw recording server, and real clients from 127.0.0.2, so the PROXY header's source
// (the client) differs from the L3 peer (the producer, 127.0.0.1). Each case checks the bytes the
// producer wrote before the client's own data, byte for byte: these are the headers the
// end-to-end tests (proxy-producers.test.ts) feed to node-toa. What was found here about the
// producers themselves (which TLVs, in which order, what a health check sends) is written in the
// test names.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { describeNeeds, firstMissing } from '../helpers/jest/requirements';
import { binary, haproxyMissing, nginxMissing, producersCleanup, startHaproxy, startNginx, type Producer } from '../helpers/producers/haproxy-nginx';

const CLIENT = '127.0.0.2';
const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

interface Recorded {
  bytes: Buffer;
  ended: boolean;
}

/** A raw TCP server on 127.0.0.1 that keeps every byte of every connection. */
class Recorder {
  readonly server: net.Server;
  readonly connections: Recorded[] = [];
  port = 0;

  constructor() {
    this.server = net.createServer((socket) => {
      const r: Recorded = { bytes: Buffer.alloc(0), ended: false };
      this.connections.push(r);
      socket.on('data', (d: Buffer) => {
        if (r.bytes.length < 4096) r.bytes = Buffer.concat([r.bytes, d]);
      });
      socket.on('end', () => {
        r.ended = true;
        socket.end();
      });
      // A health check may end with a reset (HAProxy closes checks with SO_LINGER 0): what was
      // read before it is all there is.
      socket.on('error', () => socket.destroy());
      socket.on('close', () => {
        r.ended = true;
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => {
      this.port = (this.server.address() as net.AddressInfo).port;
      resolve();
    }));
  }

  /** The connection whose bytes end with `tail` (the client's own data), once it ended; bounded. */
  async endingWith(tail: string, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.connections.find((c) => c.ended && c.bytes.subarray(-tail.length).toString('latin1') === tail);
      if (found) return found.bytes;
      if (Date.now() > deadline) throw new Error(`no connection ending with ${JSON.stringify(tail)} in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Sent {
  localPort: number;
  tail: string;
  cipher?: string;
  protocol?: string;
}

let seq = 0;
/** One real client connection from 127.0.0.2: sends a unique line, then ends. */
function send(port: number, how: { tls?: { ca: string; cert?: string; key?: string; servername?: string; ALPNProtocols?: string[] } } = {}): Promise<Sent> {
  const tail = `hello ${++seq}\n`;
  return new Promise((resolve, reject) => {
    const socket = how.tls
      ? // localAddress reaches net.connect, though tls.ConnectionOptions does not name it
        tls.connect({ host: '127.0.0.1', port, localAddress: CLIENT, ...how.tls } as tls.ConnectionOptions)
      : net.connect({ host: '127.0.0.1', port, localAddress: CLIENT });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`client to ${port}: no answer in 5 s`));
    }, 5000);
    const sent: Sent = { localPort: 0, tail };
    socket.on(how.tls ? 'secureConnect' : 'connect', () => {
      sent.localPort = socket.localPort ?? 0;
      if (socket instanceof tls.TLSSocket) {
        sent.cipher = socket.getCipher().standardName;
        sent.protocol = socket.getProtocol() ?? undefined;
      }
      socket.end(tail);
    });
    socket.resume();
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(sent);
    });
  });
}

function v1(src: string, dst: string, sport: number, dport: number): Buffer {
  return Buffer.from(`PROXY TCP4 ${src} ${dst} ${sport} ${dport}\r\n`, 'latin1');
}

function ipv4(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}

function tlv(type: number, value: Buffer | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(v.length, 1);
  return Buffer.concat([head, v]);
}

/** A v2 PROXY TCP4 header, as the spec lays it out. */
function v2(src: string, dst: string, sport: number, dport: number, tlvs: Buffer = Buffer.alloc(0)): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sport, 0);
  ports.writeUInt16BE(dport, 2);
  const body = Buffer.concat([ipv4(src), ipv4(dst), ports, tlvs]);
  const head = Buffer.from([0x21, 0x11, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, head, body]);
}

/** The SSL TLV (0x20): client bits, verify result, sub-TLVs. */
function sslTlv(client: number, verify: number, subs: Buffer[]): Buffer {
  const head = Buffer.alloc(5);
  head[0] = client;
  head.writeUInt32BE(verify, 1);
  return tlv(0x20, Buffer.concat([head, ...subs]));
}

// CRC-32C (Castagnoli, reflected 0x82F63B78), as the spec's PP2_TYPE_CRC32C asks: written here so
// the producer's checksum is checked by code that is not node-toa's.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c >>> 0;
});
function crc32c(data: Buffer): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const cleanUp = producersCleanup();
const recorder = new Recorder();
const checks1 = new Recorder(); // the v1 health checks' backend: they carry no client data to tell them apart
let haproxy: Producer;
let nginx: Producer;

describeNeeds('HAProxy and nginx', firstMissing(haproxyMissing(), nginxMissing()), 'real PROXY protocol producers (harness)', () => {
  beforeAll(async () => {
    await Promise.all([recorder.listen(), checks1.listen()]);
    const backend = recorder.port;
    [haproxy, nginx] = await Promise.all([
      startHaproxy([
        { name: 'v1', backend, server: 'send-proxy' },
        { name: 'v2', backend, server: 'send-proxy-v2' },
        { name: 'sslcn', backend, server: 'send-proxy-v2-ssl-cn', tls: 'terminate' },
        {
          name: 'options',
          backend,
          server: 'send-proxy-v2 proxy-v2-options ssl,cert-cn,ssl-cipher,cert-sig,cert-key,authority,crc32c,unique-id',
          tls: 'terminate',
          bind: 'alpn http/1.1',
          frontendLines: ['unique-id-format %{+X}o%ci:%cp'],
        },
        // Health checks only: nothing connects to these frontends.
        { name: 'check2', backend, server: 'send-proxy-v2 check check-send-proxy inter 200ms' },
        { name: 'check1', backend: checks1.port, server: 'send-proxy check check-send-proxy inter 200ms' },
      ]),
      startNginx([{ name: 'stream', backend }]),
    ]);
  }, 30_000);
  afterAll(() => Promise.all([recorder.close(), checks1.close()]));

  it('HAProxy send-proxy: "PROXY TCP4 <client> <frontend>\\r\\n", then the client bytes', async () => {
    const port = haproxy.port('v1');
    const sent = await send(port);
    const bytes = await recorder.endingWith(sent.tail);
    expect(bytes.toString('latin1')).toBe(v1(CLIENT, '127.0.0.1', sent.localPort, port).toString('latin1') + sent.tail);
  });

  it('HAProxy send-proxy-v2: a 28-byte PROXY TCP4 header with no TLV', async () => {
    const port = haproxy.port('v2');
    const sent = await send(port);
    const bytes = await recorder.endingWith(sent.tail);
    expect(bytes.toString('hex')).toBe(Buffer.concat([v2(CLIENT, '127.0.0.1', sent.localPort, port), Buffer.from(sent.tail)]).toString('hex'));
  });

  it('HAProxy send-proxy-v2-ssl-cn after TLS termination: the SSL TLV (client 0x07, verify 0, version, CN)', async () => {
    const port = haproxy.port('sslcn');
    const { certs } = haproxy;
    const sent = await send(port, { tls: { ca: certs.cert, cert: certs.clientCert, key: certs.clientKey } });
    const bytes = await recorder.endingWith(sent.tail);
    expect(sent.protocol).toMatch(/^TLSv1\.[23]$/);
    // client: PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS; verify 0: the certificate verified.
    const ssl = sslTlv(0x07, 0, [tlv(0x21, sent.protocol!), tlv(0x22, certs.clientCn)]);
    expect(bytes.toString('hex')).toBe(Buffer.concat([v2(CLIENT, '127.0.0.1', sent.localPort, port, ssl), Buffer.from(sent.tail)]).toString('hex'));
  });

  it('HAProxy send-proxy-v2-ssl-cn, no client certificate: client 0x01, no CN, and verify still 0 (verify alone does not mean a verified certificate)', async () => {
    const port = haproxy.port('sslcn');
    const sent = await send(port, { tls: { ca: haproxy.certs.cert } });
    const bytes = await recorder.endingWith(sent.tail);
    const ssl = sslTlv(0x01, 0, [tlv(0x21, sent.protocol!)]);
    expect(bytes.toString('hex')).toBe(Buffer.concat([v2(CLIENT, '127.0.0.1', sent.localPort, port, ssl), Buffer.from(sent.tail)]).toString('hex'));
  });

  it('HAProxy proxy-v2-options: CRC32C (valid), ALPN, authority (SNI), unique id, then SSL with version, CN, key, signature, cipher', async () => {
    const port = haproxy.port('options');
    const { certs } = haproxy;
    const sent = await send(port, { tls: { ca: certs.cert, cert: certs.clientCert, key: certs.clientKey, servername: 'localhost', ALPNProtocols: ['http/1.1'] } });
    const bytes = await recorder.endingWith(sent.tail);
    const uniqueId = `7F000002:${sent.localPort.toString(16).toUpperCase().padStart(4, '0')}`;
    const ssl = sslTlv(0x07, 0, [
      tlv(0x21, sent.protocol!),
      tlv(0x22, certs.clientCn),
      tlv(0x25, 'EC256'), // PP2_SUBTYPE_SSL_KEY_ALG: the client certificate's key
      tlv(0x24, 'ecdsa-with-SHA256'), // PP2_SUBTYPE_SSL_SIG_ALG
      tlv(0x23, sent.cipher!),
    ]);
    const crcAt = 16 + 12 + 3; // the CRC TLV is first, its value zero while the checksum is taken
    const expected = v2(CLIENT, '127.0.0.1', sent.localPort, port, Buffer.concat([tlv(0x03, Buffer.alloc(4)), tlv(0x01, 'http/1.1'), tlv(0x02, 'localhost'), tlv(0x05, uniqueId), ssl]));
    const header = bytes.subarray(0, expected.length);
    const crc = header.readUInt32BE(crcAt);
    expect(crc32c(Buffer.concat([header.subarray(0, crcAt), Buffer.alloc(4), header.subarray(crcAt + 4)]))).toBe(crc);
    expected.writeUInt32BE(crc, crcAt);
    expect(bytes.toString('hex')).toBe(Buffer.concat([expected, Buffer.from(sent.tail)]).toString('hex'));
  });

  it('HAProxy health check with send-proxy-v2 + check-send-proxy: a v2 LOCAL header (UNSPEC, no address), nothing after', async () => {
    const local = Buffer.concat([SIG, Buffer.from([0x20, 0x00, 0, 0])]).toString('hex');
    const deadline = Date.now() + 3000;
    while (!recorder.connections.some((c) => c.ended && c.bytes.toString('hex') === local) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(recorder.connections.filter((c) => c.ended && c.bytes.subarray(0, 12).equals(SIG) && c.bytes[12] === 0x20).map((c) => c.bytes.toString('hex'))).toContain(local);
  });

  it('HAProxy health check with send-proxy + check-send-proxy: v1 "PROXY TCP4" naming the checker itself (127.0.0.1:<ephemeral> to the backend), not UNKNOWN', async () => {
    const deadline = Date.now() + 3000;
    while (!checks1.connections.some((c) => c.ended) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const first = checks1.connections.find((c) => c.ended);
    expect(first?.bytes.toString('latin1')).toMatch(new RegExp(`^PROXY TCP4 127\\.0\\.0\\.1 127\\.0\\.0\\.1 \\d+ ${checks1.port}\r\n$`));
  });

  it('HAProxy 2.6 refuses set-proxy-v2-tlv-fmt (2.9+): custom TLVs come from proxy-v2-options and unique-id here', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-toa-haproxy-c-'));
    try {
      const file = path.join(dir, 'tlv.cfg');
      const server = `server s 127.0.0.1:${recorder.port} send-proxy-v2 set-proxy-v2-tlv-fmt(0xE0) %[str(psc)]`;
      fs.writeFileSync(file, `defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\nbackend b\n  ${server}\n`);
      const r = spawnSync(binary('haproxy'), ['-c', '-f', file], { encoding: 'utf8', timeout: 5000 });
      expect(r.status).not.toBe(0);
      expect(r.stderr + r.stdout).toMatch(/unknown keyword 'set-proxy-v2-tlv-fmt\(0xE0\)'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('nginx stream proxy_protocol on: v1 (nginx 1.22 has no v2)', async () => {
    const port = nginx.port('stream');
    const sent = await send(port);
    const bytes = await recorder.endingWith(sent.tail);
    expect(bytes.toString('latin1')).toBe(v1(CLIENT, '127.0.0.1', sent.localPort, port).toString('latin1') + sent.tail);
  });
}, cleanUp);
