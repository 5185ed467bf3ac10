// The byte record of readSyn(): decoded in TypeScript exactly as the object-building parse() and
// lookup() answer, and IPv6 written exactly as Node (libuv's inet_ntop) writes it.
import * as net from 'node:net';
import { binding } from '../../lib/addon/binding';
import { compileKinds } from '../../lib/core/kinds';
import { RECORD_SIZE, decodeRecord, ipv6 } from '../../lib/addon/record';
import { enable } from '../../lib/index';
import { close, connectPair, listen } from '../helpers/sockets/pair';
import { aliCdn, synV4, synV6, toaV4, vtoa } from '../helpers/vectors/packets';

function nodeText(bytes: number[]): string {
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

describe('ipv6()', () => {
  const special = [
    [], [1], [0xffff, 0x0102, 0x0304], [0x0102, 0x0304], [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0],
    [1, 0, 0, 1, 0, 0, 0, 1], [0xfe80, 0, 0, 0, 1, 0, 0, 1], [0, 1, 0, 1, 0, 1, 0, 1], [1, 0, 1, 0, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0xffff, 0x0102, 0x0304], [0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff],
  ].map((words) => {
    const full = [...new Array(8 - words.length).fill(0), ...words];
    return full.flatMap((w) => [w >> 8, w & 0xff]);
  });
  it.each(special.map((b) => [nodeText(b), b]))('writes %s as Node does', (expected, bytes) => {
    expect(ipv6(Uint8Array.from(bytes as number[]), 0)).toBe(expected);
  });

  it('agrees with Node on 5,000 random addresses, zero runs likely', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let n = 0; n < 5000; n++) {
      const bytes = Array.from({ length: 16 }, () => (rand() < 160 ? 0 : rand()));
      expect(ipv6(Uint8Array.from(bytes), 0)).toBe(nodeText(bytes));
    }
  });
});

describe('the record: native/record_layout.h written by the addon, decoded by addon/record.ts', () => {
  const optIn = compileKinds([200, 253, 254, 28, 252]);
  const record = () => new Uint8Array(RECORD_SIZE);

  it('a SYN with a TOA, a VTOA (vid, vip), an IPv6 TOA and a getpeername name decodes as parse() lists them', () => {
    const syn = synV4([
      ...toaV4(200, 5555, '192.0.2.1'),
      ...vtoa({ cport: 4321, cip: '192.0.2.252', vid: 0xfedcba98, vip: '198.51.100.10', vport: 443 }),
    ]);
    const r = record();
    binding!.testing.record(syn, optIn, r, '2001:db8:c::77', 45000);
    const parsed = binding!.testing.parse(syn, optIn);
    expect(decodeRecord(r)).toEqual({
      savedSyn: true,
      synPeer: parsed.src,
      synOptions: parsed.options,
      name: { family: 'IPv6', address: '2001:db8:c::77', port: 45000 },
    });
    expect(parsed.options![1]).toMatchObject({ vid: 0xfedcba98, vip: { address: '198.51.100.10', port: 443 }, kind: 252 });
  });

  it('five options, the most 40 option bytes hold, with every status', () => {
    const syn = synV6([
      ...toaV4(254, 1, '0.0.0.0'), ...toaV4(254, 0xf989, '192.0.2.9'), ...aliCdn('192.0.2.28', 2),
      ...toaV4(200, 3, '192.0.2.3'), ...aliCdn('192.0.2.29'),
    ]);
    const r = record();
    binding!.testing.record(syn, optIn, r);
    const decoded = decodeRecord(r);
    expect(decoded.synOptions).toEqual(binding!.testing.parse(syn, optIn).options);
    expect(decoded.synOptions!.map((o) => o.status)).toEqual([2, 1, 3, 0, 0]);
    expect(decoded.name).toBeUndefined();
  });

  it('a packet that does not parse: a SYN was there, nothing else', () => {
    const r = record();
    binding!.testing.record(new Uint8Array([0x45, 0, 0]), optIn, r);
    expect(decodeRecord(r)).toEqual({ savedSyn: true });
  });
});

(process.platform === 'linux' ? describe : describe.skip)('readSyn()', () => {
  it('answers as testing.lookup() does, on real saved SYNs over IPv4 and IPv6', async () => {
    for (const host of ['127.0.0.1', '::1']) {
      const server = enable(net.createServer());
      const port = await listen(server, host);
      const a = await connectPair(server, host, port);
      const b = await connectPair(server, host, port);
      const table = compileKinds(undefined);
      const record = new Uint8Array(RECORD_SIZE);
      const fdOf = (s: net.Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd;
      expect(binding!.makeSynReader(table, record, true)(fdOf(a.server))).toBe(0);
      const viaRecord = decodeRecord(record);
      const viaObjects = binding!.testing.lookup(fdOf(b.server), table, true);
      expect(viaRecord).toEqual({
        savedSyn: true,
        synPeer: { ...viaObjects.peer, port: a.client.localPort },
        synOptions: [],
        name: { ...viaObjects.name, port: a.client.localPort },
      });
      expect(viaObjects.options).toEqual([]);
      expect(viaObjects.peer!.port).toBe(b.client.localPort);
      // Read once: the second read finds nothing, and says so in the record too.
      binding!.makeSynReader(table, record, false)(fdOf(a.server));
      expect(decodeRecord(record)).toEqual({ savedSyn: false });
      for (const s of [a.server, a.client, b.server, b.client]) s.destroy();
      await close(server);
    }
  });

  it('rejects a record that is too small', () => {
    expect(() => binding!.makeSynReader(compileKinds(undefined), new Uint8Array(10), false)).toThrow(
      'record must be a Uint8Array of recordLayout.size bytes',
    );
  });
});
