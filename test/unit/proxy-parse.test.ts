// The native PROXY protocol parser (native/proxy_parse.cc) on byte vectors, through the addon's
// parseProxyHeader(data, maxSize). Every input is copied into an ArrayBuffer of its exact size,
// so that a read one byte past the end lands in a sanitizer's red zone under scripts/asan-test.sh.
import * as pp from 'proxy-protocol-js';
import { binding, loadError } from '../../lib/addon/binding';
import { PROXY_STATUS, type NativeBinding, type NativeProxyHeader } from '../../lib/addon/native';
import { ipv4Bytes, ipv6Bytes } from '../helpers/vectors/packets';
import { mulberry32, mutate, type Mutation } from '../helpers/vectors/mutate';
import {
  BAD_VECTORS, DST4, DST6, NOT_PROXY, OK_VECTORS, PP2_TYPE, SRC4, SRC6, V2_SIGNATURE, crc32c, latin1, proxyV1,
  proxyV2, sslTlv,
} from '../helpers/vectors/proxy-vectors';

function native(): NativeBinding {
  if (binding === null) throw new Error(`the addon did not load: ${loadError?.message}`);
  return binding;
}

const MAX = 4096;

function parse(bytes: Uint8Array, maxSize = MAX): NativeProxyHeader {
  return native().parseProxyHeader(new Uint8Array(bytes), maxSize);
}

const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => Array.from(p)));

/** What every answer but ok looks like, apart from the fields given. */
function notOk(fields: Partial<NativeProxyHeader>): NativeProxyHeader {
  return {
    status: PROXY_STATUS.incomplete, length: 0, reason: '', version: 0, command: 'PROXY', family: 'unspec',
    transport: 'unspec', tlvs: [], crc32c: false, ...fields,
  };
}

describe('proxy parse: whole headers', () => {
  for (const v of OK_VECTORS) {
    it(v.name, () => {
      const result = parse(v.bytes);
      expect(result).toMatchObject({ status: PROXY_STATUS.ok, length: v.bytes.length, reason: '', ...v.expected });
      // What follows the header (the proxied stream) changes nothing.
      expect(parse(concat(v.bytes, latin1('GET / HTTP/1.1\r\n')))).toEqual(result);
      expect(parse(concat(v.bytes, V2_SIGNATURE))).toEqual(result);
    });
  }

  it('addresses are reported only for the PROXY command over IPv4/IPv6', () => {
    for (const v of OK_VECTORS) {
      const r = parse(v.bytes);
      const expectAddresses = r.command === 'PROXY' && (r.family === 'IPv4' || r.family === 'IPv6');
      expect({ name: v.name, source: r.source !== undefined, destination: r.destination !== undefined })
        .toEqual({ name: v.name, source: expectAddresses, destination: expectAddresses });
    }
  });
});

describe('proxy parse: malformed headers, each with its reason', () => {
  for (const v of BAD_VECTORS) {
    it(v.name, () => {
      const r = parse(v.bytes);
      expect(r).toMatchObject({ status: PROXY_STATUS.malformed, reason: v.reason, length: 0, version: v.bytes[0] === 0x50 ? 1 : 2, tlvs: [], crc32c: false });
      expect(r.source).toBeUndefined();
      expect(r.destination).toBeUndefined();
      expect(r.ssl).toBeUndefined();
    });
  }

  it('every malformed reason the parser has is reached by a vector', () => {
    const reasons = new Set(BAD_VECTORS.map((v) => parse(v.bytes).reason));
    expect(reasons.size).toBe(20);
  });

  it('a broken CRC32c is caught whichever byte of the header changed', () => {
    const good = proxyV2({ source: SRC6, destination: DST6, tlvs: [{ type: PP2_TYPE.AUTHORITY, value: 'example.com' }], crc: true });
    expect(parse(good).crc32c).toBe(true);
    // Addresses, ports and TLV value bytes: the ones whose change keeps the header well-formed.
    for (let i = 16; i < good.length - 7; i++) {
      if (i >= 52 && i < 55) continue; // the AUTHORITY TLV's type and length
      const bad = new Uint8Array(good);
      bad[i] ^= 0x40;
      expect({ i, reason: parse(bad).reason }).toEqual({ i, reason: 'bad CRC32c' });
    }
  });
});

describe('proxy parse: no PROXY header', () => {
  const firstDifference = (bytes: Uint8Array): number => {
    const signature = bytes[0] === 0x0d ? V2_SIGNATURE : latin1('PROXY ');
    let i = 0;
    while (i < bytes.length && i < signature.length && bytes[i] === signature[i]) i++;
    return i;
  };
  for (const v of NOT_PROXY) {
    it(`${v.name}: decided at the first byte that fits neither signature`, () => {
      const at = firstDifference(v.bytes);
      for (let k = 0; k <= v.bytes.length; k++) {
        const status = k === 0 || k <= at ? PROXY_STATUS.incomplete : PROXY_STATUS.notProxy;
        expect({ k, result: parse(v.bytes.subarray(0, k)) }).toEqual({ k, result: notOk({ status }) });
      }
    });
  }

  it('an empty buffer is incomplete', () => {
    expect(parse(new Uint8Array(0))).toEqual(notOk({ status: PROXY_STATUS.incomplete }));
  });
});

describe('proxy parse: prefixes', () => {
  for (const v of OK_VECTORS) {
    it(`every prefix of ${v.name} is incomplete`, () => {
      const v2 = v.bytes[0] === 0x0d;
      for (let k = 0; k < v.bytes.length; k++) {
        const r = parse(v.bytes.subarray(0, k));
        const signed = k >= (v2 ? 12 : 6);
        expect({ k, status: r.status, length: r.length, version: r.version, tlvs: r.tlvs, source: r.source })
          .toEqual({ k, status: PROXY_STATUS.incomplete, length: v2 && k >= 16 ? v.bytes.length : 0, version: signed ? (v2 ? 2 : 1) : 0, tlvs: [], source: undefined });
      }
    });
  }

  for (const v of BAD_VECTORS) {
    it(`every prefix of "${v.name}" is incomplete until it is malformed, for the same reason`, () => {
      let malformedFrom = -1;
      for (let k = 0; k <= v.bytes.length; k++) {
        const r = parse(v.bytes.subarray(0, k));
        if (malformedFrom < 0 && r.status === PROXY_STATUS.malformed) malformedFrom = k;
        const expected = malformedFrom >= 0 ? { status: PROXY_STATUS.malformed, reason: v.reason } : { status: PROXY_STATUS.incomplete, reason: '' };
        expect({ k, status: r.status, reason: r.reason }).toEqual({ k, ...expected });
      }
      expect(malformedFrom).toBeGreaterThan(0);
    });
  }

  it('a broken v2 fixed part is refused before the rest arrives', () => {
    const bad = proxyV2({ source: SRC4, destination: DST4, versionCommand: 0x12 });
    expect(parse(bad.subarray(0, 13))).toMatchObject({ status: PROXY_STATUS.malformed, reason: 'v2 bad version' });
    const fam = proxyV2({ familyByte: 0x51, addressBlock: new Uint8Array(12) });
    expect(parse(fam.subarray(0, 14))).toMatchObject({ status: PROXY_STATUS.malformed, reason: 'v2 bad address family or transport' });
    const short = proxyV2({ family: 'IPv6', addressBlock: new Uint8Array(20) });
    expect(parse(short.subarray(0, 16))).toMatchObject({ status: PROXY_STATUS.malformed, reason: 'v2 length shorter than the address block' });
  });

  it('a bad v1 field is refused at the byte that breaks it', () => {
    expect(parse(latin1('PROXY TCP4 192.0.2.1x'))).toMatchObject({ status: PROXY_STATUS.malformed, reason: 'v1 bad source address' });
    expect(parse(latin1('PROXY TCP4 192.0.2.1'))).toMatchObject({ status: PROXY_STATUS.incomplete });
    expect(parse(latin1('PROXY TCX'))).toMatchObject({ status: PROXY_STATUS.malformed, reason: 'v1 protocol is not TCP4, TCP6 or UNKNOWN' });
    expect(parse(latin1('PROXY TCP4 192.0.2.1 203.0.113.10 1a'))).toMatchObject({ status: PROXY_STATUS.malformed, reason: 'v1 bad source port' });
    // A field longer than its longest form is refused before its terminator.
    expect(parse(latin1(`PROXY TCP6 ${'1'.repeat(46)}`))).toMatchObject({ status: PROXY_STATUS.malformed, reason: 'v1 bad source address' });
    expect(parse(latin1('PROXY TCP4 192.0.2.1 203.0.113.10 123456'))).toMatchObject({ status: PROXY_STATUS.malformed, reason: 'v1 bad source port' });
  });
});

describe('proxy parse: maxSize', () => {
  const v2 = proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: PP2_TYPE.ALPN, value: 'h2' }] }); // 33 bytes
  const v1 = proxyV1('TCP4', SRC4, DST4); // 45 bytes
  const TOO_LARGE = 'header longer than maxSize';

  it('a v2 header longer than maxSize is tooLarge as soon as its length is in, with that length', () => {
    expect(v2.length).toBe(33);
    expect(parse(v2, 33).status).toBe(PROXY_STATUS.ok);
    expect(parse(v2.subarray(0, 15), 32)).toMatchObject({ status: PROXY_STATUS.incomplete, length: 0 });
    for (const k of [16, 20, 33]) {
      expect(parse(v2.subarray(0, k), 32)).toEqual(notOk({ status: PROXY_STATUS.tooLarge, reason: TOO_LARGE, length: 33, version: 2, family: 'IPv4', transport: 'stream' }));
    }
    expect(parse(v2, 16)).toMatchObject({ status: PROXY_STATUS.tooLarge, length: 33 });
    expect(parse(proxyV2({ command: 'LOCAL' }), 16)).toMatchObject({ status: PROXY_STATUS.ok, length: 16 });
  });

  it('a malformed fixed part is malformed whatever maxSize is', () => {
    expect(parse(proxyV2({ source: SRC4, destination: DST4, versionCommand: 0x10 }), 16).status).toBe(PROXY_STATUS.malformed);
  });

  it('a v1 line longer than maxSize is tooLarge once maxSize bytes are in without a CRLF', () => {
    expect(v1.length).toBe(45);
    expect(parse(v1, 45).status).toBe(PROXY_STATUS.ok);
    expect(parse(v1.subarray(0, 43), 44).status).toBe(PROXY_STATUS.incomplete);
    expect(parse(v1.subarray(0, 44), 44)).toEqual(notOk({ status: PROXY_STATUS.tooLarge, reason: TOO_LARGE, version: 1 }));
    expect(parse(v1, 44)).toEqual(notOk({ status: PROXY_STATUS.tooLarge, reason: TOO_LARGE, version: 1 }));
  });

  it('a v1 line is bounded by 107 bytes even when maxSize is larger', () => {
    const long = latin1(`PROXY UNKNOWN ${'x'.repeat(200)}\r\n`);
    expect(parse(long.subarray(0, 106), 65551).status).toBe(PROXY_STATUS.incomplete);
    expect(parse(long.subarray(0, 107), 65551)).toMatchObject({ status: PROXY_STATUS.malformed, reason: 'v1 line without CRLF' });
    expect(parse(long, 1e9)).toMatchObject({ status: PROXY_STATUS.malformed, reason: 'v1 line without CRLF' });
  });

  it('the longest v2 header (65551 bytes) parses with a maxSize that allows it', () => {
    const big = proxyV2({ family: 'unspec', tlvs: [{ type: PP2_TYPE.NOOP, value: new Uint8Array(65535 - 3) }] });
    expect(big.length).toBe(65551);
    expect(parse(big, 65551)).toMatchObject({ status: PROXY_STATUS.ok, length: 65551, tlvs: [PP2_TYPE.NOOP, 19, 65532] });
    expect(parse(big, 2 ** 32)).toMatchObject({ status: PROXY_STATUS.ok, length: 65551 });
    expect(parse(big, 65550)).toMatchObject({ status: PROXY_STATUS.tooLarge, reason: TOO_LARGE, length: 65551 });
  });
});

describe('proxy parse: arguments', () => {
  const call = (...args: unknown[]) => () => (native().parseProxyHeader as (...a: unknown[]) => unknown)(...args);

  // The addon's errors come from the main realm, not jest's: compared by name and message.
  const thrown = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return { name: (e as Error).name, message: (e as Error).message };
    }
    return 'nothing thrown';
  };

  it('data must be a Uint8Array', () => {
    for (const bad of [undefined, null, 'PROXY UNKNOWN\r\n', [0x50], new Uint16Array(4), new ArrayBuffer(4), {}]) {
      expect(thrown(call(bad, MAX))).toEqual({ name: 'TypeError', message: 'data must be a Uint8Array or Buffer' });
    }
    expect(call(Buffer.from('PROXY UNKNOWN\r\n'), MAX)()).toMatchObject({ status: PROXY_STATUS.ok });
  });

  it('maxSize must be a number', () => {
    for (const bad of [undefined, '4096', null, 4096n]) {
      expect(thrown(call(new Uint8Array(1), bad))).toEqual({ name: 'TypeError', message: 'maxSize must be a number' });
    }
  });

  it('maxSize must be an integer >= 16', () => {
    for (const bad of [15, 0, -1, 16.5, NaN, Infinity, -Infinity]) {
      expect(thrown(call(new Uint8Array(1), bad))).toEqual({ name: 'RangeError', message: `maxSize must be an integer >= 16, got ${bad}` });
    }
  });
});

describe('proxy parse: CRC32c', () => {
  it('the native and the TypeScript CRC32c agree, and match the standard check value', () => {
    expect(native().testing.proxyCrc32c(latin1('123456789'))).toBe(0xe3069283);
    expect(crc32c(latin1('123456789'))).toBe(0xe3069283);
    const random = mulberry32(7);
    for (let n = 0; n < 300; n += 7) {
      const data = Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
      expect(native().testing.proxyCrc32c(data)).toBe(crc32c(data));
    }
  });
});

describe('proxy parse: against proxy-protocol-js', () => {
  const v4 = (a: string) => pp.IPv4Address.createFrom(ipv4Bytes(a));
  const v6 = (a: string) => pp.IPv6Address.createFrom(ipv6Bytes(a));

  it('v1 lines it builds parse to the same endpoints', () => {
    for (const [proto, src, dst, family] of [
      [pp.INETProtocol.TCP4, SRC4, DST4, 'IPv4'],
      [pp.INETProtocol.TCP6, SRC6, DST6, 'IPv6'],
    ] as const) {
      const text = new pp.V1ProxyProtocol(proto, new pp.Peer(src.address, src.port), new pp.Peer(dst.address, dst.port)).build();
      const r = parse(latin1(text));
      expect(r).toMatchObject({ status: PROXY_STATUS.ok, length: text.length, source: { family, ...src }, destination: { family, ...dst } });
      // And it reads ours the same.
      const theirs = pp.V1ProxyProtocol.parse(Buffer.from(proxyV1(proto === pp.INETProtocol.TCP4 ? 'TCP4' : 'TCP6', src, dst)).toString('latin1'));
      expect(theirs.source).toEqual({ ipAddress: src.address, port: src.port });
      expect(theirs.destination).toEqual({ ipAddress: dst.address, port: dst.port });
    }
  });

  it('v2 headers it builds parse to the same endpoints; its data is the stream after the header', () => {
    const payload = latin1('GET / HTTP/1.1\r\n');
    const built4 = new pp.V2ProxyProtocol(pp.Command.PROXY, pp.TransportProtocol.STREAM,
      new pp.IPv4ProxyAddress(v4(SRC4.address), SRC4.port, v4(DST4.address), DST4.port), payload).build();
    expect(parse(built4)).toMatchObject({
      status: PROXY_STATUS.ok, length: 28, family: 'IPv4', transport: 'stream',
      source: { family: 'IPv4', ...SRC4 }, destination: { family: 'IPv4', ...DST4 }, tlvs: [],
    });
    expect(Array.from(built4.subarray(28))).toEqual(Array.from(payload));
    const built6 = new pp.V2ProxyProtocol(pp.Command.PROXY, pp.TransportProtocol.DGRAM,
      new pp.IPv6ProxyAddress(v6(SRC6.address), SRC6.port, v6(DST6.address), DST6.port)).build();
    expect(parse(built6)).toMatchObject({
      status: PROXY_STATUS.ok, length: 52, family: 'IPv6', transport: 'dgram',
      source: { family: 'IPv6', ...SRC6 }, destination: { family: 'IPv6', ...DST6 },
    });
    const local = new pp.V2ProxyProtocol(pp.Command.LOCAL, pp.TransportProtocol.UNSPEC, new pp.UnspecProxyAddress()).build();
    expect(parse(local)).toMatchObject({ status: PROXY_STATUS.ok, length: 16, command: 'LOCAL', family: 'unspec' });
  });

  it('it reads the v2 headers our builders make to the same endpoints (our TLVs as its data)', () => {
    const ours = proxyV2({ source: SRC4, destination: DST4, tlvs: [sslTlv({ client: 1 })], crc: true });
    const theirs = pp.V2ProxyProtocol.parse(ours);
    const address = theirs.proxyAddress as pp.IPv4ProxyAddress;
    expect(Array.from(address.sourceAddress.address)).toEqual(ipv4Bytes(SRC4.address));
    expect([address.sourcePort, address.destinationPort]).toEqual([SRC4.port, DST4.port]);
    expect(Array.from(theirs.data ?? [])).toEqual(Array.from(ours.subarray(28)));
  });
});

// ---- Property test: random mutations of valid headers -------------------------------------------

// Byte values the parser branches on, and a TLV to drop in.
const MUTATION: Mutation = {
  interesting: [0, 1, 2, 3, 4, 5, 0x0a, 0x0d, 0x10, 0x11, 0x12, 0x20, 0x21, 0x22, 0x31, 0x32, 0x2e, 0x30, 0x3a, 0x39, 0x20, 0xff],
  maxRounds: 3,
  piece: (pick) => [[1, 4, 0x20, 3][pick(4)], 0, pick(8), ...Array.from({ length: pick(8) }, () => pick(256))],
};

const u16 = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];

// The checks that hold for any input, read back from the bytes.
function checkAgainstBytes(input: Uint8Array, r: NativeProxyHeader): void {
  expect(Object.values(PROXY_STATUS)).toContain(r.status);
  expect(r.reason !== '').toBe(r.status === PROXY_STATUS.malformed || r.status === PROXY_STATUS.tooLarge);
  if (r.status !== PROXY_STATUS.ok) {
    expect(r.tlvs).toEqual([]);
    expect(r.source).toBeUndefined();
    expect(r.ssl).toBeUndefined();
    expect(r.crc32c).toBe(false);
    return;
  }
  expect(r.length).toBeLessThanOrEqual(input.length);
  const header = input.subarray(0, r.length);
  // The header alone, and the header followed by anything else, read the same.
  expect(parse(header)).toEqual(r);
  expect(parse(header.subarray(0, r.length - 1)).status).toBe(PROXY_STATUS.incomplete);
  if (r.version === 1) {
    expect(r.length).toBeLessThanOrEqual(107);
    expect(Array.from(header.subarray(r.length - 2))).toEqual([0x0d, 0x0a]);
    expect(r.tlvs).toEqual([]);
    if (r.family === 'IPv4') {
      const text = Buffer.from(header).toString('latin1');
      expect(text).toBe(`PROXY TCP4 ${r.source!.address} ${r.destination!.address} ${r.source!.port} ${r.destination!.port}\r\n`);
    }
    return;
  }
  expect(r.version).toBe(2);
  expect(r.length).toBe(16 + u16(header, 14));
  expect(header[12] >> 4).toBe(2);
  // The TLV triples walk the bytes from the end of the address block to the end of the header.
  for (let i = 0; i < r.tlvs.length; i += 3) {
    const [type, offset, length] = r.tlvs.slice(i, i + 3);
    expect(header[offset - 3]).toBe(type);
    expect(u16(header, offset - 2)).toBe(length);
    if (i + 3 < r.tlvs.length) expect(r.tlvs[i + 4]).toBe(offset + length + 3);
    else expect(offset + length).toBe(r.length);
  }
  if (r.source) {
    const width = r.family === 'IPv4' ? 4 : 16;
    const bytes = r.family === 'IPv4' ? ipv4Bytes : ipv6Bytes;
    expect(Array.from(header.subarray(16, 16 + 2 * width + 4))).toEqual([
      ...bytes(r.source.address), ...bytes(r.destination!.address),
      r.source.port >> 8, r.source.port & 0xff, r.destination!.port >> 8, r.destination!.port & 0xff,
    ]);
    if (r.tlvs.length > 0) expect(r.tlvs[1]).toBe(16 + 2 * width + 4 + 3);
  }
  if (r.ssl) {
    const at = r.tlvs.findIndex((v, i) => i % 3 === 0 && v === PP2_TYPE.SSL);
    const offset = r.tlvs[at + 1];
    expect(header[offset]).toBe(r.ssl.client);
    expect(Buffer.from(header).readUInt32BE(offset + 1)).toBe(r.ssl.verify);
  }
  if (r.crc32c) {
    const at = r.tlvs.findIndex((v, i) => i % 3 === 0 && v === PP2_TYPE.CRC32C);
    const offset = r.tlvs[at + 1];
    const zeroed = new Uint8Array(header);
    zeroed.fill(0, offset, offset + 4);
    expect(crc32c(zeroed)).toBe(Buffer.from(header).readUInt32BE(offset));
  }
}

describe('proxy parse: seeded mutations of valid headers', () => {
  const bases = OK_VECTORS.map((v) => v.bytes);

  it('5,000 mutants: no crash, and every answer agrees with the bytes', () => {
    const random = mulberry32(0x5eed);
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      const input = mutate(bases[i % bases.length], random, MUTATION);
      const r = parse(input);
      seen.add(r.status);
      checkAgainstBytes(input, r);
    }
    expect([...seen]).toEqual(expect.arrayContaining([PROXY_STATUS.ok, PROXY_STATUS.incomplete, PROXY_STATUS.notProxy, PROXY_STATUS.malformed]));
  });
});
