// PROXY protocol headers for tests (HAProxy's doc/proxy-protocol.txt): builders for v1 lines and v2
// binary headers with TLVs, a CRC32c in TypeScript to sign them, and the byte vectors the native
// parser is tested on (test/unit/proxy-parse.test.ts, fuzz seeds in scripts/fuzz-proxy-seeds.js).
// Addresses are from the documentation ranges only.
import { ipv4Bytes, ipv6Bytes } from './packets';

export interface ProxyEndpointSpec {
  address: string;
  port: number;
}

export const V2_SIGNATURE = Uint8Array.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

export const PP2_TYPE = Object.freeze({
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  SSL_VERSION: 0x21,
  SSL_CN: 0x22,
  SSL_CIPHER: 0x23,
  SSL_SIG_ALG: 0x24,
  SSL_KEY_ALG: 0x25,
  NETNS: 0x30,
});

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC32c (Castagnoli), unsigned: what a PP2_TYPE_CRC32C TLV holds. */
export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = CRC32C_TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export function latin1(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, 'latin1'));
}

/** A v1 line: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`, or `PROXY UNKNOWN\r\n` (with `rest`). */
export function proxyV1(
  protocol: 'TCP4' | 'TCP6' | 'UNKNOWN',
  source?: ProxyEndpointSpec,
  destination?: ProxyEndpointSpec,
  rest = '',
): Uint8Array {
  if (protocol === 'UNKNOWN') return latin1(`PROXY UNKNOWN${rest}\r\n`);
  if (!source || !destination) throw new TypeError(`proxyV1: ${protocol} needs a source and a destination`);
  return latin1(`PROXY ${protocol} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`);
}

export interface Tlv {
  type: number;
  value: Uint8Array | string;
}

export function tlvBytes(t: Tlv): Uint8Array {
  const value = typeof t.value === 'string' ? latin1(t.value) : t.value;
  return Uint8Array.from([t.type, value.length >> 8, value.length & 0xff, ...value]);
}

/** A PP2_TYPE_SSL TLV: client bits (u8), verify (u32), then sub-TLVs (or `raw` bytes instead). */
export function sslTlv(o: { client?: number; verify?: number; tlvs?: Tlv[]; raw?: Uint8Array }): Tlv {
  const verify = o.verify ?? 0;
  const sub = o.raw ?? Uint8Array.from((o.tlvs ?? []).flatMap((t) => Array.from(tlvBytes(t))));
  return {
    type: PP2_TYPE.SSL,
    value: Uint8Array.from([o.client ?? 0, verify >>> 24, (verify >>> 16) & 0xff, (verify >>> 8) & 0xff, verify & 0xff, ...sub]),
  };
}

export type V2Family = 'IPv4' | 'IPv6' | 'unix' | 'unspec';

export interface ProxyV2Spec {
  command?: 'PROXY' | 'LOCAL';
  /** Default: IPv4 or IPv6 from the source address, unspec without one. */
  family?: V2Family;
  transport?: 'stream' | 'dgram' | 'unspec';
  /** Addresses (IPv4/IPv6), or socket paths (unix, up to 108 bytes each). */
  source?: ProxyEndpointSpec | string;
  destination?: ProxyEndpointSpec | string;
  tlvs?: Tlv[];
  /** Append a PP2_TYPE_CRC32C TLV and sign the header; 'bad': sign it, then flip a bit of the sum. */
  crc?: boolean | 'bad';
  /** Raw overrides, for broken headers. */
  versionCommand?: number;
  familyByte?: number;
  addressBlock?: Uint8Array;
  /** The length field; default: what follows the fixed part. */
  length?: number;
  /** Bytes appended after the TLVs, counted in the default length. */
  trailing?: Uint8Array;
}

const FAMILY_NIBBLE: Record<V2Family, number> = { unspec: 0, IPv4: 1, IPv6: 2, unix: 3 };
const TRANSPORT_NIBBLE = { unspec: 0, stream: 1, dgram: 2 } as const;

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

function unixPath(path: string): number[] {
  const bytes = Array.from(latin1(path));
  if (bytes.length > 108) throw new RangeError(`proxyV2: a unix path holds at most 108 bytes: ${path}`);
  return [...bytes, ...new Array(108 - bytes.length).fill(0)];
}

function addressBlock(family: V2Family, s: ProxyV2Spec): number[] {
  if (family === 'unspec') return [];
  if (family === 'unix') {
    if (typeof s.source !== 'string' || typeof s.destination !== 'string') {
      throw new TypeError('proxyV2: a unix family needs source and destination paths');
    }
    return [...unixPath(s.source), ...unixPath(s.destination)];
  }
  if (typeof s.source !== 'object' || typeof s.destination !== 'object') {
    throw new TypeError(`proxyV2: an ${family} family needs a source and a destination`);
  }
  const bytes = family === 'IPv4' ? ipv4Bytes : ipv6Bytes;
  return [...bytes(s.source.address), ...bytes(s.destination.address), ...u16(s.source.port), ...u16(s.destination.port)];
}

/** A v2 header. */
export function proxyV2(s: ProxyV2Spec = {}): Uint8Array {
  const family: V2Family =
    s.family ?? (typeof s.source === 'object' ? (s.source.address.includes(':') ? 'IPv6' : 'IPv4') : 'unspec');
  const transport = s.transport ?? (family === 'unspec' ? 'unspec' : 'stream');
  const command = s.command === 'LOCAL' ? 0 : 1;
  const block = s.addressBlock ? Array.from(s.addressBlock) : addressBlock(family, s);
  const tlvs = (s.tlvs ?? []).flatMap((t) => Array.from(tlvBytes(t)));
  const crcAt = s.crc ? 16 + block.length + tlvs.length + 3 : -1;
  if (s.crc) tlvs.push(PP2_TYPE.CRC32C, 0, 4, 0, 0, 0, 0);
  const rest = [...block, ...tlvs, ...(s.trailing ?? [])];
  const header = Uint8Array.from([
    ...V2_SIGNATURE,
    s.versionCommand ?? (0x20 | command),
    s.familyByte ?? ((FAMILY_NIBBLE[family] << 4) | TRANSPORT_NIBBLE[transport]),
    ...u16(s.length ?? rest.length),
    ...rest,
  ]);
  if (s.crc) {
    let sum = crc32c(header);
    if (s.crc === 'bad') sum ^= 1;
    header.set([sum >>> 24, (sum >>> 16) & 0xff, (sum >>> 8) & 0xff, sum & 0xff], crcAt);
  }
  return header;
}

// ---- Vectors ----------------------------------------------------------------------------------

export const SRC4 = { address: '192.0.2.1', port: 56324 };
export const DST4 = { address: '203.0.113.10', port: 443 };
export const SRC6 = { address: '2001:db8:c::1', port: 56324 };
export const DST6 = { address: '2001:db8:d::10', port: 443 };

/** A header the parser accepts; `expected` is matched against the result (toMatchObject). */
export interface ProxyOkVector {
  name: string;
  bytes: Uint8Array;
  expected: Record<string, unknown>;
}

/** A header the parser refuses as malformed, with the reason it must give. */
export interface ProxyBadVector {
  name: string;
  bytes: Uint8Array;
  reason: string;
}

const LONGEST_IPV6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
const ep = (family: 'IPv4' | 'IPv6', e: ProxyEndpointSpec) => ({ family, ...e });

export const OK_VECTORS: ProxyOkVector[] = [
  {
    name: 'v1 TCP4',
    bytes: proxyV1('TCP4', SRC4, DST4),
    expected: { version: 1, command: 'PROXY', family: 'IPv4', transport: 'stream', source: ep('IPv4', SRC4), destination: ep('IPv4', DST4) },
  },
  {
    name: 'v1 TCP6',
    bytes: proxyV1('TCP6', SRC6, DST6),
    expected: { version: 1, family: 'IPv6', transport: 'stream', source: ep('IPv6', SRC6), destination: ep('IPv6', DST6) },
  },
  {
    name: 'v1 TCP6 with an IPv4-mapped source, kept as IPv6',
    bytes: proxyV1('TCP6', { address: '::ffff:192.0.2.7', port: 1 }, DST6),
    expected: { family: 'IPv6', source: { family: 'IPv6', address: '::ffff:192.0.2.7', port: 1 } },
  },
  {
    name: 'v1 TCP4 with ports 0 and 65535 and the longest IPv4 texts',
    bytes: proxyV1('TCP4', { address: '255.255.255.255', port: 0 }, { address: '0.0.0.0', port: 65535 }),
    expected: { source: { address: '255.255.255.255', port: 0 }, destination: { address: '0.0.0.0', port: 65535 } },
  },
  {
    name: 'v1 TCP6 of 104 bytes, the longest TCP6 line',
    bytes: proxyV1('TCP6', { address: LONGEST_IPV6, port: 65535 }, { address: LONGEST_IPV6, port: 65535 }),
    expected: { length: 104, family: 'IPv6' },
  },
  {
    name: 'v1 UNKNOWN',
    bytes: proxyV1('UNKNOWN'),
    expected: { version: 1, command: 'PROXY', family: 'unspec', transport: 'unspec', tlvs: [] },
  },
  {
    name: 'v1 UNKNOWN with addresses, ignored, 107 bytes in all',
    bytes: proxyV1('UNKNOWN', undefined, undefined, ` ${'x'.repeat(107 - 16)}`),
    expected: { length: 107, family: 'unspec' },
  },
  {
    name: 'v2 PROXY TCP over IPv4',
    bytes: proxyV2({ source: SRC4, destination: DST4 }),
    expected: { version: 2, length: 28, command: 'PROXY', family: 'IPv4', transport: 'stream', source: ep('IPv4', SRC4), destination: ep('IPv4', DST4), tlvs: [], crc32c: false },
  },
  {
    name: 'v2 PROXY TCP over IPv6',
    bytes: proxyV2({ source: SRC6, destination: DST6 }),
    expected: { length: 52, family: 'IPv6', source: ep('IPv6', SRC6), destination: ep('IPv6', DST6) },
  },
  {
    name: 'v2 PROXY UDP over IPv4',
    bytes: proxyV2({ source: SRC4, destination: DST4, transport: 'dgram' }),
    expected: { family: 'IPv4', transport: 'dgram', source: ep('IPv4', SRC4) },
  },
  {
    name: 'v2 IPv4-mapped IPv6 source stays IPv6',
    bytes: proxyV2({ source: { address: '::ffff:192.0.2.9', port: 7 }, destination: DST6 }),
    expected: { family: 'IPv6', source: { family: 'IPv6', address: '::ffff:192.0.2.9', port: 7 } },
  },
  {
    name: 'v2 PROXY over AF_UNIX: no endpoints',
    bytes: proxyV2({ family: 'unix', source: '/run/client.sock', destination: '/run/server.sock' }),
    expected: { length: 232, family: 'unix', transport: 'stream', tlvs: [] },
  },
  {
    name: 'v2 PROXY with AF_UNSPEC and a TLV right after the fixed part',
    bytes: proxyV2({ family: 'unspec', tlvs: [{ type: PP2_TYPE.NOOP, value: 'ab' }] }),
    expected: { family: 'unspec', transport: 'unspec', tlvs: [PP2_TYPE.NOOP, 19, 2] },
  },
  {
    name: 'v2 LOCAL health check (no addresses)',
    bytes: proxyV2({ command: 'LOCAL' }),
    expected: { length: 16, command: 'LOCAL', family: 'unspec', tlvs: [] },
  },
  {
    name: 'v2 LOCAL with IPv4 addresses (ignored) and TLVs',
    bytes: proxyV2({ command: 'LOCAL', source: SRC4, destination: DST4, tlvs: [{ type: PP2_TYPE.UNIQUE_ID, value: 'id-1' }], crc: true }),
    expected: { command: 'LOCAL', family: 'IPv4', tlvs: [PP2_TYPE.UNIQUE_ID, 31, 4, PP2_TYPE.CRC32C, 38, 4], crc32c: true },
  },
  {
    name: 'v2 LOCAL with an undefined family byte and a short length: all ignored',
    bytes: proxyV2({ command: 'LOCAL', familyByte: 0xff, addressBlock: Uint8Array.from([1, 2, 3]) }),
    expected: { command: 'LOCAL', family: 'unspec', transport: 'unspec', length: 19, tlvs: [] },
  },
  {
    name: 'v2 LOCAL, IPv6 family byte, 5 bytes: the block does not fit, so nothing is walked',
    bytes: proxyV2({ command: 'LOCAL', family: 'IPv6', addressBlock: Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff]) }),
    expected: { command: 'LOCAL', family: 'IPv6', length: 21, tlvs: [] },
  },
  {
    name: 'v2 with ALPN, AUTHORITY, UNIQUE_ID and NETNS TLVs',
    bytes: proxyV2({
      source: SRC4,
      destination: DST4,
      tlvs: [
        { type: PP2_TYPE.ALPN, value: 'h2' },
        { type: PP2_TYPE.AUTHORITY, value: 'example.com' },
        { type: PP2_TYPE.UNIQUE_ID, value: '' },
        { type: PP2_TYPE.NETNS, value: 'blue' },
      ],
    }),
    expected: { tlvs: [1, 31, 2, 2, 36, 11, 5, 50, 0, 0x30, 53, 4], crc32c: false },
  },
  {
    name: 'v2 with a matching CRC32c',
    bytes: proxyV2({ source: SRC6, destination: DST6, tlvs: [{ type: PP2_TYPE.ALPN, value: 'http/1.1' }], crc: true }),
    expected: { crc32c: true, tlvs: [1, 55, 8, 3, 66, 4] },
  },
  {
    name: 'v2 with an SSL TLV and sub-TLVs',
    bytes: proxyV2({
      source: SRC4,
      destination: DST4,
      tlvs: [sslTlv({ client: 0x07, verify: 0, tlvs: [{ type: PP2_TYPE.SSL_VERSION, value: 'TLSv1.3' }, { type: PP2_TYPE.SSL_CN, value: 'client.example' }] })],
    }),
    expected: { tlvs: [0x20, 31, 5 + 10 + 17], ssl: { client: 7, verify: 0, tlvs: [0x21, 39, 7, 0x22, 49, 14] } },
  },
  {
    name: 'v2 SSL TLV with a failed verify and no sub-TLVs',
    bytes: proxyV2({ source: SRC4, destination: DST4, tlvs: [sslTlv({ client: 1, verify: 0xdeadbeef })] }),
    expected: { ssl: { client: 1, verify: 0xdeadbeef, tlvs: [] } },
  },
  {
    name: 'v2 with 64 TLVs, the most listed',
    bytes: proxyV2({ family: 'unspec', tlvs: Array.from({ length: 64 }, () => ({ type: PP2_TYPE.NOOP, value: '' })) }),
    expected: { tlvs: Array.from({ length: 64 }, (_, i) => [PP2_TYPE.NOOP, 19 + 3 * i, 0]).flat() },
  },
  {
    name: 'v2 with a TLV of a custom type (0xE0)',
    bytes: proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: 0xe0, value: Uint8Array.from([1, 2, 3]) }] }),
    expected: { tlvs: [0xe0, 31, 3] },
  },
];

const v1 = latin1;
const V1_PREFIX = 'PROXY TCP4 192.0.2.1 203.0.113.10';

export const BAD_VECTORS: ProxyBadVector[] = [
  // v1: each field wrong in turn.
  { name: 'v1 protocol TCP5', bytes: v1('PROXY TCP5 192.0.2.1 203.0.113.10 1 2\r\n'), reason: 'v1 protocol is not TCP4, TCP6 or UNKNOWN' },
  { name: 'v1 protocol in lower case', bytes: v1('PROXY tcp4 192.0.2.1 203.0.113.10 1 2\r\n'), reason: 'v1 protocol is not TCP4, TCP6 or UNKNOWN' },
  { name: 'v1 UNKNOWN glued to more letters', bytes: v1('PROXY UNKNOWNX\r\n'), reason: 'v1 protocol is not TCP4, TCP6 or UNKNOWN' },
  { name: 'v1 two spaces after the protocol', bytes: v1('PROXY TCP4  192.0.2.1 203.0.113.10 1 2\r\n'), reason: 'v1 bad source address' },
  { name: 'v1 no protocol at all', bytes: v1('PROXY \r\n'), reason: 'v1 protocol is not TCP4, TCP6 or UNKNOWN' },
  { name: 'v1 source with a leading zero', bytes: v1('PROXY TCP4 192.0.2.01 203.0.113.10 1 2\r\n'), reason: 'v1 bad source address' },
  { name: 'v1 source octet over 255', bytes: v1('PROXY TCP4 192.0.2.256 203.0.113.10 1 2\r\n'), reason: 'v1 bad source address' },
  { name: 'v1 source with three parts', bytes: v1('PROXY TCP4 192.0.2 203.0.113.10 1 2\r\n'), reason: 'v1 bad source address' },
  { name: 'v1 source with five parts', bytes: v1('PROXY TCP4 192.0.2.1.5 203.0.113.10 1 2\r\n'), reason: 'v1 bad source address' },
  { name: 'v1 source with a letter', bytes: v1('PROXY TCP4 192.0.2.x 203.0.113.10 1 2\r\n'), reason: 'v1 bad source address' },
  { name: 'v1 source in hex', bytes: v1('PROXY TCP4 0xc0.0.2.1 203.0.113.10 1 2\r\n'), reason: 'v1 bad source address' },
  { name: 'v1 TCP4 with an IPv6 source', bytes: v1('PROXY TCP4 2001:db8::1 203.0.113.10 1 2\r\n'), reason: 'v1 address family does not match the protocol' },
  { name: 'v1 TCP6 with an IPv4 destination', bytes: v1('PROXY TCP6 2001:db8::1 203.0.113.10 1 2\r\n'), reason: 'v1 address family does not match the protocol' },
  { name: 'v1 TCP6 with a zone id', bytes: v1('PROXY TCP6 fe80::1%eth0 2001:db8::2 1 2\r\n'), reason: 'v1 bad source address' },
  { name: 'v1 TCP6 with a broken IPv6', bytes: v1('PROXY TCP6 2001:db8:::1 2001:db8::2 1 2\r\n'), reason: 'v1 bad source address' },
  { name: 'v1 destination missing', bytes: v1('PROXY TCP4 192.0.2.1  1 2\r\n'), reason: 'v1 bad destination address' },
  { name: 'v1 destination with a leading zero', bytes: v1('PROXY TCP4 192.0.2.1 203.0.113.010 1 2\r\n'), reason: 'v1 bad destination address' },
  { name: 'v1 source port 65536', bytes: v1(`${V1_PREFIX} 65536 2\r\n`), reason: 'v1 bad source port' },
  { name: 'v1 source port with a leading zero', bytes: v1(`${V1_PREFIX} 0443 2\r\n`), reason: 'v1 bad source port' },
  { name: 'v1 source port negative', bytes: v1(`${V1_PREFIX} -1 2\r\n`), reason: 'v1 bad source port' },
  { name: 'v1 source port of six digits', bytes: v1(`${V1_PREFIX} 100000 2\r\n`), reason: 'v1 bad source port' },
  { name: 'v1 source port missing (two spaces)', bytes: v1(`${V1_PREFIX}  2\r\n`), reason: 'v1 bad source port' },
  { name: 'v1 destination port 70000', bytes: v1(`${V1_PREFIX} 1 70000\r\n`), reason: 'v1 bad destination port' },
  { name: 'v1 destination port with a leading zero', bytes: v1(`${V1_PREFIX} 1 00\r\n`), reason: 'v1 bad destination port' },
  { name: 'v1 destination port missing', bytes: v1(`${V1_PREFIX} 1 \r\n`), reason: 'v1 bad destination port' },
  { name: 'v1 a field too many', bytes: v1(`${V1_PREFIX} 1 2 3\r\n`), reason: 'v1 bad destination port' },
  { name: 'v1 a field too few', bytes: v1(`${V1_PREFIX} 1\r\n`), reason: 'v1 bad source port' },
  { name: 'v1 tab instead of a space', bytes: v1('PROXY TCP4\t192.0.2.1 203.0.113.10 1 2\r\n'), reason: 'v1 protocol is not TCP4, TCP6 or UNKNOWN' },
  { name: 'v1 LF without CR', bytes: v1(`${V1_PREFIX} 1 2\n`), reason: 'v1 bad destination port' },
  { name: 'v1 CR without LF', bytes: v1(`${V1_PREFIX} 1 2\rX`), reason: 'v1 line without CRLF' },
  { name: 'v1 UNKNOWN without CRLF in 107 bytes', bytes: v1(`PROXY UNKNOWN ${'x'.repeat(93)}`), reason: 'v1 line without CRLF' },
  {
    name: 'v1 TCP6 of 116 bytes (IPv4-suffixed IPv6 texts): past the 107-byte bound',
    bytes: proxyV1('TCP6', { address: 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', port: 65535 }, { address: 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', port: 65535 }),
    reason: 'v1 line without CRLF',
  },
  { name: 'v1 UNKNOWN line of 108 bytes', bytes: v1(`PROXY UNKNOWN ${'x'.repeat(92)}\r\n`), reason: 'v1 line without CRLF' },
  // v2: the fixed part.
  { name: 'v2 version 1', bytes: proxyV2({ source: SRC4, destination: DST4, versionCommand: 0x11 }), reason: 'v2 bad version' },
  { name: 'v2 version 3', bytes: proxyV2({ source: SRC4, destination: DST4, versionCommand: 0x31 }), reason: 'v2 bad version' },
  { name: 'v2 command 2', bytes: proxyV2({ source: SRC4, destination: DST4, versionCommand: 0x22 }), reason: 'v2 bad command' },
  { name: 'v2 command 15', bytes: proxyV2({ command: 'LOCAL', versionCommand: 0x2f }), reason: 'v2 bad command' },
  { name: 'v2 family 4', bytes: proxyV2({ familyByte: 0x41, addressBlock: new Uint8Array(12) }), reason: 'v2 bad address family or transport' },
  { name: 'v2 IPv4 with transport 3', bytes: proxyV2({ familyByte: 0x13, addressBlock: new Uint8Array(12) }), reason: 'v2 bad address family or transport' },
  { name: 'v2 IPv4 with transport unspec', bytes: proxyV2({ familyByte: 0x10, addressBlock: new Uint8Array(12) }), reason: 'v2 bad address family or transport' },
  { name: 'v2 unspec with transport stream', bytes: proxyV2({ familyByte: 0x01 }), reason: 'v2 bad address family or transport' },
  { name: 'v2 IPv4 with 11 address bytes', bytes: proxyV2({ family: 'IPv4', addressBlock: new Uint8Array(11) }), reason: 'v2 length shorter than the address block' },
  { name: 'v2 IPv6 with the IPv4 block (12 bytes)', bytes: proxyV2({ family: 'IPv6', addressBlock: new Uint8Array(12) }), reason: 'v2 length shorter than the address block' },
  { name: 'v2 unix with 215 address bytes', bytes: proxyV2({ family: 'unix', addressBlock: new Uint8Array(215) }), reason: 'v2 length shorter than the address block' },
  { name: 'v2 IPv4 with length 0', bytes: proxyV2({ family: 'IPv4', addressBlock: new Uint8Array(0) }), reason: 'v2 length shorter than the address block' },
  // v2: TLVs.
  { name: 'v2 TLV value longer than the header', bytes: proxyV2({ source: SRC4, destination: DST4, trailing: Uint8Array.from([1, 0, 5, 0x68, 0x32]) }), reason: 'v2 TLV overruns the header' },
  { name: 'v2 TLV of 2 bytes (a cut TLV header)', bytes: proxyV2({ source: SRC4, destination: DST4, trailing: Uint8Array.from([1, 0]) }), reason: 'v2 TLV overruns the header' },
  { name: 'v2 one stray byte after a TLV', bytes: proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: 4, value: 'a' }], trailing: Uint8Array.from([0]) }), reason: 'v2 TLV overruns the header' },
  { name: 'v2 LOCAL with a TLV overrun', bytes: proxyV2({ command: 'LOCAL', trailing: Uint8Array.from([5, 0, 9, 1]) }), reason: 'v2 TLV overruns the header' },
  { name: 'v2 AF_UNSPEC PROXY with a TLV overrun', bytes: proxyV2({ family: 'unspec', trailing: Uint8Array.from([5, 1, 0]) }), reason: 'v2 TLV overruns the header' },
  { name: 'v2 65 TLVs', bytes: proxyV2({ family: 'unspec', tlvs: Array.from({ length: 65 }, () => ({ type: PP2_TYPE.NOOP, value: '' })) }), reason: 'too many TLVs' },
  { name: 'v2 CRC32c mismatch', bytes: proxyV2({ source: SRC4, destination: DST4, crc: 'bad' }), reason: 'bad CRC32c' },
  { name: 'v2 CRC32c mismatch on a LOCAL', bytes: proxyV2({ command: 'LOCAL', crc: 'bad' }), reason: 'bad CRC32c' },
  { name: 'v2 CRC32c TLV of 3 bytes', bytes: proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: PP2_TYPE.CRC32C, value: Uint8Array.from([1, 2, 3]) }] }), reason: 'v2 CRC32c TLV length is not 4' },
  { name: 'v2 two CRC32c TLVs', bytes: proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: PP2_TYPE.CRC32C, value: new Uint8Array(4) }], crc: true }), reason: 'v2 duplicate CRC32c TLV' },
  { name: 'v2 SSL TLV of 4 bytes', bytes: proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: PP2_TYPE.SSL, value: Uint8Array.from([1, 0, 0, 0]) }] }), reason: 'v2 SSL TLV shorter than 5 bytes' },
  { name: 'v2 SSL sub-TLV overrun', bytes: proxyV2({ source: SRC4, destination: DST4, tlvs: [sslTlv({ client: 1, raw: Uint8Array.from([0x21, 0, 9, 0x54]) })] }), reason: 'v2 SSL sub-TLV overruns the SSL TLV' },
  { name: 'v2 SSL sub-TLV header cut', bytes: proxyV2({ source: SRC4, destination: DST4, tlvs: [sslTlv({ client: 1, raw: Uint8Array.from([0x21]) })] }), reason: 'v2 SSL sub-TLV overruns the SSL TLV' },
  { name: 'v2 33 SSL sub-TLVs', bytes: proxyV2({ family: 'unspec', tlvs: [sslTlv({ tlvs: Array.from({ length: 33 }, () => ({ type: PP2_TYPE.NOOP, value: '' })) })] }), reason: 'too many SSL sub-TLVs' },
  { name: 'v2 two SSL TLVs', bytes: proxyV2({ source: SRC4, destination: DST4, tlvs: [sslTlv({}), sslTlv({})] }), reason: 'v2 duplicate SSL TLV' },
];

/** Beginnings that are no PROXY header, and the first byte that decides it. */
export const NOT_PROXY: Array<{ name: string; bytes: Uint8Array }> = [
  { name: 'an HTTP request', bytes: latin1('GET / HTTP/1.1\r\n') },
  { name: 'a TLS ClientHello', bytes: Uint8Array.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]) },
  { name: '"PROXY" without its space', bytes: latin1('PROXYTCP4 ') },
  { name: 'lower-case "proxy "', bytes: latin1('proxy TCP4') },
  { name: 'the v2 signature broken at its last byte', bytes: Uint8Array.from([...V2_SIGNATURE.subarray(0, 11), 0x0b, 0x21, 0x11, 0, 12]) },
  { name: 'CRLF CRLF then something else', bytes: latin1('\r\n\r\nHELLO') },
];
