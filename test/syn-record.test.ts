// The byte record of readSyn(): decoded in TypeScript exactly as the object-building lookup()
// answers, and IPv6 written exactly as Node (libuv's inet_ntop) writes it.
import * as net from 'node:net';
import { binding } from '../lib/addon/binding';
import { compileKinds } from '../lib/core/kinds';
import { RECORD_SIZE, decodeRecord, ipv6 } from '../lib/addon/record';
import { enable } from '../lib/index';
import { close, connectPair, listen } from './helpers/loopback';

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

(process.platform === 'linux' ? describe : describe.skip)('readSyn()', () => {
  it('answers as lookup() does, on real saved SYNs over IPv4 and IPv6', async () => {
    for (const host of ['127.0.0.1', '::1']) {
      const server = enable(net.createServer());
      const port = await listen(server, host);
      const a = await connectPair(server, host, port);
      const b = await connectPair(server, host, port);
      const table = compileKinds(undefined);
      const record = new Uint8Array(RECORD_SIZE);
      const fdOf = (s: net.Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd;
      expect(binding!.readSyn(fdOf(a.server), table, true, record)).toBe(0);
      const viaRecord = decodeRecord(record);
      const viaObjects = binding!.lookup(fdOf(b.server), table, true);
      expect(viaRecord).toEqual({ syn: true, peer: { ...viaObjects.peer, port: a.client.localPort }, name: { ...viaObjects.name, port: a.client.localPort } });
      expect(viaObjects.peer!.port).toBe(b.client.localPort);
      // Read once: the second read finds nothing, and says so in the record too.
      binding!.readSyn(fdOf(a.server), table, false, record);
      expect(decodeRecord(record)).toEqual({ syn: false });
      for (const s of [a.server, a.client, b.server, b.client]) s.destroy();
      await close(server);
    }
  });

  it('rejects a record that is too small', () => {
    expect(() => binding!.readSyn(0, compileKinds(undefined), false, new Uint8Array(10))).toThrow(
      'record must be a Uint8Array of 83 bytes',
    );
  });
});
