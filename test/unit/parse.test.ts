// The native TOA parser on byte vectors, through the addon's `testing.parse(bytes, kindTable)`.
// Every packet is copied into an ArrayBuffer of its exact size first, so that a read one byte
// past the end lands in a sanitizer's red zone under scripts/asan-test.sh.
import * as path from 'node:path';
import { binding, loadError } from '../../lib/addon/binding';
import { compileKinds } from '../../lib/core/kinds';
import type { NativeBinding, NativePacket, NativeToa } from '../../lib/addon/native';
import { TCP, ipv4Bytes, ipv6Bytes, toaV4, toaV6, aliCdn, aliDdos } from '../helpers/vectors/packets';
import { mulberry32, mutate, type Mutation } from '../helpers/vectors/mutate';
import {
  FOUND, FULL_SYN_V4, FULL_SYN_V6, NOT_FOUND, REFUSED, STATUS, TABLES, type ParseVector, type TableName,
} from '../helpers/vectors/parse-vectors';

function native(): NativeBinding {
  if (binding === null) throw new Error(`the addon did not load: ${loadError?.message}`);
  return binding;
}

const TABLE: Record<TableName, Uint8Array> = {
  default: compileKinds(TABLES.default),
  optIn: compileKinds(TABLES.optIn),
};

function parse(packet: Uint8Array, table: Uint8Array = TABLE.default): NativePacket {
  return native().testing.parse(new Uint8Array(packet), table);
}

function runVector(v: ParseVector): void {
  expect(parse(v.packet, TABLE[v.table])).toEqual(v.expected);
}

describe('parse: TOA found', () => {
  for (const v of FOUND) it(v.name, () => runVector(v));
});

describe('parse: no TOA in a well-formed packet', () => {
  for (const v of NOT_FOUND) it(v.name, () => runVector(v));
});

describe('parse: malformed packets are refused', () => {
  for (const v of REFUSED) it(v.name, () => runVector(v));
});

describe('parse: kind tables', () => {
  it('the opt-in layouts are read only when the table enables them', () => {
    const ali = FOUND.find((v) => v.name.startsWith('kind 28 len 7'))!;
    expect(parse(ali.packet, TABLE.default).options).toEqual([]);
    expect(parse(ali.packet, TABLE.optIn).options).toMatchObject([{ kind: 28, address: '192.0.2.28' }]);
  });

  it('a custom kind with a named layout is read, and the default kinds are not', () => {
    const table = compileKinds([{ kind: 99, layout: 'ipv4' }]);
    const packet = FOUND[0].packet; // kind 200
    expect(parse(packet, table).options).toEqual([]);
    const rebuilt = new Uint8Array(packet);
    rebuilt[40] = 99; // the option's kind byte: 20 bytes of IPv4, 20 of TCP
    expect(parse(rebuilt, table).options).toEqual([
      { family: 'IPv4', address: '192.0.2.1', port: 5555, kind: 99, length: 8, layout: 1, status: 0 },
    ]);
  });

  it('kind 249 reads only its 40-byte layout; a custom kind can name it; a list without 249 ignores it', () => {
    const found = FOUND.find((v) => v.name.startsWith('kind 249 len 40: Alibaba'))!;
    expect(compileKinds(undefined)[249]).toBe(16);
    expect(compileKinds([249])[249]).toBe(16);
    expect(parse(found.packet, compileKinds([200, 253, 254])).options).toEqual([]);
    const table = compileKinds([{ kind: 230, layout: 'ali-ddos' }]);
    const rebuilt = new Uint8Array(found.packet);
    rebuilt[40] = 230; // the option's kind byte: 20 bytes of IPv4, 20 of TCP
    expect(parse(rebuilt, table).options).toEqual([
      { family: 'IPv6', address: '2001:db8:c::249', port: 40317, kind: 230, length: 40, layout: 16, status: 0 },
    ]);
    // 'ali-ddos' is its own length: it combines with the 20-byte layouts.
    expect(compileKinds([{ kind: 230, layout: 'ipv6' }, { kind: 230, layout: 'ali-ddos' }])[230]).toBe(2 | 16);
  });

  it("the addon's defaultKindTable() is compileKinds() of the default kinds", () => {
    expect(Array.from(native().testing.defaultKindTable())).toEqual(Array.from(TABLE.default));
  });
});

// Where the TCP header starts, for a packet the parser accepted (so its IP headers are sound).
function tcpOffset(p: Uint8Array): number {
  if (p[0] >> 4 === 4) return (p[0] & 0x0f) * 4;
  let next = p[6];
  let offset = 40;
  while (next !== 6) {
    const length = next === 44 ? 8 : next === 51 ? (p[offset + 1] + 2) * 4 : (p[offset + 1] + 1) * 8;
    next = p[offset];
    offset += length;
  }
  return offset;
}

function ipEnd(p: Uint8Array): number {
  const total = p[0] >> 4 === 4 ? (p[2] << 8) | p[3] : 40 + ((p[4] << 8) | p[5]);
  return Math.min(total, p.length);
}

describe('parse: truncated SYNs', () => {
  const cases: Array<[string, Uint8Array]> = [
    ['IPv4 with Linux options, TOA and 3 data bytes', FULL_SYN_V4],
    ['IPv6 with hop-by-hop and fragment headers, Linux options and a len-20 TOA', FULL_SYN_V6],
  ];
  for (const [name, full] of cases) {
    it(`every prefix of an ${name}: ok only once the TCP header is complete`, () => {
      const whole = parse(full);
      expect(whole.ok).toBe(true);
      expect(whole.options).toHaveLength(1);
      const tcp = tcpOffset(full);
      const headerEnd = tcp + (full[tcp + 12] >> 4) * 4;
      for (let length = 0; length <= full.length; length++) {
        const result = parse(full.subarray(0, length));
        if (length < headerEnd) {
          expect({ length, result }).toEqual({ length, result: { ok: false } });
        } else {
          expect({ length, result }).toEqual({ length, result: { ...whole, payloadLength: length - headerEnd } });
        }
      }
    });
  }
});

// ---- Property test: random mutations of valid packets --------------------------------------------

// Byte values the parser branches on, and an option to drop in.
const MUTATION: Mutation = {
  interesting: [0, 1, 2, 4, 5, 6, 7, 8, 19, 20, 28, 40, 249, 43, 44, 50, 51, 60, 0x45, 0x60, 0x89, 0xf9, 200, 252, 253, 254, 255],
  maxRounds: 4,
  piece(pick) {
    const options = [
      toaV4([200, 253, 254, 99][pick(4)], pick(65536), `192.0.2.${pick(256)}`),
      toaV6([253, 254][pick(2)], pick(65536), `2001:db8::${pick(65536).toString(16)}`),
      aliCdn(`192.0.2.${pick(256)}`, pick(3)),
      aliDdos(pick(65536), `2001:db8::${pick(65536).toString(16)}`, [249, 254][pick(2)]),
      [254, 8, 0xf9, 0x89, 1, 2, 3, 4],
    ];
    return options[pick(options.length)];
  },
};

function addressBytes(e: { family: string; address: string }, width: 4 | 16): number[] {
  if (e.family === 'IPv4') return width === 4 ? ipv4Bytes(e.address) : ipv6Bytes(`::ffff:${e.address}`);
  expect(width).toBe(16);
  return ipv6Bytes(e.address);
}

// The bytes a listed option must start with (VTOA's padding excluded; Alibaba CDN's version byte
// as the status says).
function encode(toa: NativeToa): number[] {
  const port = [toa.port >> 8, toa.port & 0xff];
  switch (toa.length) {
    case 8:
      return [toa.kind, 8, ...port, ...addressBytes(toa, 4)];
    case 20:
      if (toa.vip !== undefined) {
        const vid = toa.vid!;
        return [toa.kind, 20, ...port, ...addressBytes(toa, 4), vid >>> 24, (vid >>> 16) & 0xff, (vid >>> 8) & 0xff,
          vid & 0xff, ...addressBytes(toa.vip, 4), toa.vip.port >> 8, toa.vip.port & 0xff];
      }
      return [toa.kind, 20, ...port, ...addressBytes(toa, 16)];
    case 40: // the 20 bytes about the Anti-DDoS node are not read
      return [toa.kind, 40, ...port, ...addressBytes(toa, 16)];
    case 7:
    case 19:
      expect(toa.port).toBe(0);
      return toa.status === STATUS.badVersion
        ? [toa.kind, toa.length]
        : [toa.kind, toa.length, 1, ...addressBytes(toa, toa.length === 7 ? 4 : 16)];
    default:
      throw new Error(`impossible TOA length ${toa.length}`);
  }
}

// Offsets of the options a walk that honours EOL, NOP and lengths visits.
function optionStarts(options: Uint8Array): number[] {
  const starts: number[] = [];
  let i = 0;
  while (i < options.length && options[i] !== 0) {
    if (options[i] === 1) {
      i++;
      continue;
    }
    if (i + 1 >= options.length) break;
    const length = options[i + 1];
    if (length < 2 || length > options.length - i) break;
    starts.push(i);
    i += length;
  }
  return starts;
}

function checkAgainstBytes(packet: Uint8Array, result: NativePacket, table: Uint8Array): void {
  if (!result.ok) {
    expect(result).toEqual({ ok: false });
    return;
  }
  const tcp = tcpOffset(packet);
  const headerLength = (packet[tcp + 12] >> 4) * 4;
  expect(result.src!.port).toBe((packet[tcp] << 8) | packet[tcp + 1]);
  expect(result.dst!.port).toBe((packet[tcp + 2] << 8) | packet[tcp + 3]);
  expect(result.flags).toBe(packet[tcp + 13]);
  expect(result.payloadLength).toBe(ipEnd(packet) - tcp - headerLength);
  const options = packet.subarray(tcp + 20, tcp + headerLength);
  const starts = optionStarts(options);
  const syn = (result.flags! & TCP.SYN) !== 0;
  let from = 0; // listed in the order they appear
  for (const toa of result.options!) {
    expect(table[toa.kind] & toa.layout).not.toBe(0);
    const zero = toa.address === '0.0.0.0' || toa.address === '::';
    expect({ toa, zero }).toEqual({ toa, zero: toa.status === STATUS.unspecified });
    if (toa.status === STATUS.tfoCookie) expect({ syn, kind: toa.kind, port: toa.port }).toEqual({ syn: true, kind: toa.kind, port: 0xf989 });
    const encoded = encode(toa);
    const at = starts.findIndex((i, n) => n >= from && encoded.every((b, j) => options[i + j] === b));
    expect({ toa, foundInOptions: at >= 0 }).toEqual({ toa, foundInOptions: true });
    from = at + 1;
  }
}

describe('parse: property', () => {
  it('20,000 seeded random mutations of valid packets: no crash, every listed option is in the options, in order', () => {
    const random = mulberry32(0x70a);
    const bases = [...FOUND.map((v) => v.packet), FULL_SYN_V4, FULL_SYN_V6];
    const wide = compileKinds(Array.from({ length: 256 - 9 }, (_, i) => i + 9));
    const tables = [TABLE.default, TABLE.optIn, wide];
    const seen = { ok: 0, toa: 0, several: 0 };
    for (let n = 0; n < 20000; n++) {
      const packet = mutate(bases[n % bases.length], random, MUTATION);
      const table = tables[n % tables.length];
      const result = parse(packet, table);
      checkAgainstBytes(packet, result, table);
      if (result.ok) seen.ok++;
      if (result.options !== undefined && result.options.length > 0) seen.toa++;
      if (result.options !== undefined && result.options.length > 1) seen.several++;
    }
    // The mutations must leave enough packets intact for the TOA checks to mean something.
    expect(seen.ok).toBeGreaterThan(5000);
    expect(seen.toa).toBeGreaterThan(2000);
    expect(seen.several).toBeGreaterThan(100);
  });
});

// ---- The binding's own argument checks ---------------------------------------------------------

describe('parse: arguments', () => {
  const packet = FOUND[0].packet;
  type Loose = (...args: unknown[]) => unknown;
  const loose = (): Loose => native().testing.parse as unknown as Loose;
  // The addon's errors come from Node's realm, not jest's sandbox: compare name and message.
  const thrown = (call: () => unknown): { name: string; message: string } | undefined => {
    try {
      call();
    } catch (error) {
      return { name: (error as Error).name, message: (error as Error).message };
    }
    return undefined;
  };
  const typeError = (message: string) => ({ name: 'TypeError', message });

  it('a packet that is not a typed array is a TypeError', () => {
    for (const bad of ['4500', 42, null, undefined, Array.from(packet), new DataView(new ArrayBuffer(48)), new Uint32Array(12)]) {
      expect(thrown(() => loose()(bad, TABLE.default))).toEqual(typeError('packet must be a Uint8Array or Buffer'));
    }
  });

  it('no arguments at all is a TypeError', () => {
    expect(thrown(() => loose()())).toEqual(typeError('packet must be a Uint8Array or Buffer'));
  });

  it('a kind table that is not a typed array is a TypeError', () => {
    for (const bad of [undefined, 'default', Array.from(TABLE.default), new ArrayBuffer(256), new Uint16Array(128)]) {
      expect(thrown(() => loose()(packet, bad))).toEqual(typeError('kind table must be a Uint8Array'));
    }
  });

  it('a kind table of the wrong size is a RangeError', () => {
    for (const size of [0, 255, 257, 512]) {
      expect(thrown(() => loose()(packet, new Uint8Array(size)))).toEqual({ name: 'RangeError', message: 'kind table must hold 256 bytes' });
    }
  });

  it('a Buffer is accepted, and a view into a larger buffer is read from its own offset', () => {
    expect(native().testing.parse(Buffer.from(packet), TABLE.default)).toEqual(FOUND[0].expected);
    const larger = new Uint8Array(packet.length + 32).fill(0xee);
    larger.set(packet, 16);
    const view = larger.subarray(16, 16 + packet.length);
    expect(native().testing.parse(view, TABLE.default)).toEqual(FOUND[0].expected);
    expect(native().testing.parse(larger.subarray(16, 16 + 30), TABLE.default)).toEqual({ ok: false });
  });
});

describe('binding: NODE_TOA_ADDON', () => {
  it('loads the addon from the path NODE_TOA_ADDON names (a missing path is a load error)', () => {
    const saved = process.env.NODE_TOA_ADDON;
    const missing = path.join(__dirname, '..', 'no-such-addon.node');
    process.env.NODE_TOA_ADDON = missing;
    try {
      jest.isolateModules(() => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const isolated = require('../../lib/addon/binding') as typeof import('../../lib/addon/binding');
        expect(isolated.binding).toBeNull();
        expect(isolated.loadError?.message).toContain(missing);
      });
    } finally {
      if (saved === undefined) delete process.env.NODE_TOA_ADDON;
      else process.env.NODE_TOA_ADDON = saved;
    }
  });

  const override = process.env.NODE_TOA_ADDON;
  if (override) {
    it(`this run uses the addon at ${override}`, () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      expect(binding).toBe(require(path.resolve(override)));
    });
  }
});
