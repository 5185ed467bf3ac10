// The parser's byte vectors with their exact expected results. test/unit/parse.test.ts runs each one;
// scripts/fuzz-seeds.js writes the same packets to fuzz/seeds/ so the fuzzer starts from them.
import type { NativePacket } from '../../../lib/addon/native';
import {
  aliCdn, aliDdos, eol, extAuth, extFragment, extOptions, ipv4, ipv6, linuxSyn, mss, nop, sackOk,
  synV4, synV6, tcp, TCP, tfoCookie, toaV4, toaV6, ts, vtoa, ws,
} from './packets';

/** Which kind table a vector is parsed with: compileKinds() of these lists. */
export const TABLES = {
  default: undefined,
  optIn: [200, 253, 254, 28, 252],
} as const;
export type TableName = keyof typeof TABLES;

export interface ParseVector {
  name: string;
  table: TableName;
  packet: Uint8Array;
  expected: NativePacket;
}

// Where the proxy's packets come from and go to (packets.ts defaults).
const PROXY_V4 = { family: 'IPv4', address: '198.51.100.2', port: 40000 } as const;
const BACKEND_V4 = { family: 'IPv4', address: '203.0.113.10', port: 80 } as const;
const PROXY_V6 = { family: 'IPv6', address: '2001:db8:b::2', port: 40000 } as const;
const BACKEND_V6 = { family: 'IPv6', address: '2001:db8:d::10', port: 80 } as const;

/** A SYN the parser accepts, without a TOA. */
const SYN_V4: NativePacket = { ok: true, src: PROXY_V4, dst: BACKEND_V4, flags: TCP.SYN, payloadLength: 0, options: [] };
const SYN_V6: NativePacket = { ok: true, src: PROXY_V6, dst: BACKEND_V6, flags: TCP.SYN, payloadLength: 0, options: [] };
const NOT_OK: NativePacket = { ok: false };

// The layout bit the parser decodes an option of each length with (core/kinds.ts LAYOUT_BITS);
// 20 bytes is 'ipv6' unless the table says 'vtoa'.
const LAYOUT_OF_LENGTH: Record<number, number> = { 7: 4, 8: 1, 19: 4, 20: 2, 40: 16 };
export const STATUS = { usable: 0, tfoCookie: 1, unspecified: 2, badVersion: 3 } as const;

const v4 = (address: string, port: number, kind: number, length: number, status: number = STATUS.usable) =>
  ({ family: 'IPv4', address, port, kind, length, layout: LAYOUT_OF_LENGTH[length], status }) as const;
const v6 = (address: string, port: number, kind: number, length: number, status: number = STATUS.usable) =>
  ({ family: 'IPv6', address, port, kind, length, layout: LAYOUT_OF_LENGTH[length], status }) as const;

/** A packet with these TOA-shaped options, in order. */
const withToa = (base: NativePacket, ...options: NonNullable<NativePacket['options']>): NativePacket => ({ ...base, options });

// A 4-, 8- and 16-byte TFO cookie: option lengths 8, 12 and 20 (the last two collide with TOA lengths).
const COOKIE4 = [0xde, 0xad, 0xbe, 0xef];
const COOKIE8 = [...COOKIE4, 0x01, 0x02, 0x03, 0x04];
const COOKIE16 = [...COOKIE8, ...COOKIE8];

// The cookies read as the parser lists them: F9 89 as the "port", the cookie as the "address".
const TFO_V4 = v4('222.173.190.239', 0xf989, 254, 8, STATUS.tfoCookie);
const TFO_V6 = v6('dead:beef:102:304:dead:beef:102:304', 0xf989, 254, 20, STATUS.tfoCookie);

const TOA_200 = toaV4(200, 5555, '192.0.2.1');

// Alibaba Anti-DDoS v6tov4: an IPv6 client over an IPv4 packet, kind 249, 40 bytes (nothing else fits).
const ALI_DDOS = aliDdos(40317, '2001:db8:c::249');
const ALI_DDOS_CLIENT = v6('2001:db8:c::249', 40317, 249, 40);
/** A kind-249 option of `length` bytes (its body a plausible port and address, cut or padded). */
const kind249 = (length: number): number[] => [249, length, ...ALI_DDOS.slice(2, length)].concat(new Array(Math.max(0, length - 40)).fill(0));
const FOUND_200 = withToa(SYN_V4, v4('192.0.2.1', 5555, 200, 8));

/** Found: the TOA layouts of docs/formats.md, read with the tables that enable them. */
export const FOUND: ParseVector[] = [
  { name: 'kind 200 len 8: IPv4 client (Tencent, UCloud)', table: 'default', packet: synV4(TOA_200), expected: FOUND_200 },
  {
    name: 'kind 254 len 8: IPv4 client (LVS FullNAT, DPVS, Huawei)',
    table: 'default',
    packet: synV4(toaV4(254, 1234, '192.0.2.77')),
    expected: withToa(SYN_V4, v4('192.0.2.77', 1234, 254, 8)),
  },
  {
    name: 'kind 254 len 20: IPv6 client (DPVS)',
    table: 'default',
    packet: synV6(toaV6(254, 6000, '2001:db8:c::1')),
    expected: withToa(SYN_V6, v6('2001:db8:c::1', 6000, 254, 20)),
  },
  {
    name: 'kind 253 len 20: IPv6 client (LVS TCPOPT_ADDR_V6)',
    table: 'default',
    packet: synV6(toaV6(253, 65535, '2001:db8:c:0:1:2:3:4')),
    expected: withToa(SYN_V6, v6('2001:db8:c:0:1:2:3:4', 65535, 253, 20)),
  },
  {
    name: 'kind 253 len 8: IPv4 client (UCloud "akamai 253")',
    table: 'default',
    packet: synV4(toaV4(253, 1, '192.0.2.253')),
    expected: withToa(SYN_V4, v4('192.0.2.253', 1, 253, 8)),
  },
  {
    name: 'kind 28 len 7: Alibaba CDN IPv4 client, no port (opt-in table)',
    table: 'optIn',
    packet: synV4(aliCdn('192.0.2.28')),
    expected: withToa(SYN_V4, v4('192.0.2.28', 0, 28, 7)),
  },
  {
    name: 'kind 28 len 19: Alibaba CDN IPv6 client, no port (opt-in table)',
    table: 'optIn',
    packet: synV6(aliCdn('2001:db8:c::28')),
    expected: withToa(SYN_V6, v6('2001:db8:c::28', 0, 28, 19)),
  },
  {
    name: 'kind 252 len 20: Alibaba SLB VTOA with vid and vip (opt-in table)',
    table: 'optIn',
    packet: synV4(vtoa({ cport: 4321, cip: '192.0.2.252', vid: 0x01020304, vip: '198.51.100.10', vport: 443 })),
    expected: withToa(SYN_V4, {
      ...v4('192.0.2.252', 4321, 252, 20),
      layout: 8,
      vid: 0x01020304,
      vip: { family: 'IPv4', address: '198.51.100.10', port: 443 },
    }),
  },
  {
    name: 'IPv4-mapped IPv6 client in a len-20 option is reported as IPv4',
    table: 'default',
    packet: synV4(toaV6(254, 8080, '::ffff:192.0.2.9')),
    expected: withToa(SYN_V4, v4('192.0.2.9', 8080, 254, 20)),
  },
  {
    name: 'IPv6 client in an IPv4 packet (NAT64, kind 253 len 20)',
    table: 'default',
    packet: synV4(toaV6(253, 7000, '2001:db8:c::64')),
    expected: withToa(SYN_V4, v6('2001:db8:c::64', 7000, 253, 20)),
  },
  {
    name: 'IPv4 client in an IPv6 packet (kind 254 len 8)',
    table: 'default',
    packet: synV6(toaV4(254, 7001, '192.0.2.46')),
    expected: withToa(SYN_V6, v4('192.0.2.46', 7001, 254, 8)),
  },
  {
    name: 'TFO cookie len 8 (254, F9 89) in a SYN is listed as a cookie, then the TOA after it',
    table: 'default',
    packet: synV4([...tfoCookie(COOKIE4), ...TOA_200]),
    expected: withToa(SYN_V4, TFO_V4, v4('192.0.2.1', 5555, 200, 8)),
  },
  {
    name: 'TFO cookie len 12 is skipped, the TOA after it is read',
    table: 'default',
    packet: synV4([...tfoCookie(COOKIE8), ...TOA_200]),
    expected: FOUND_200,
  },
  {
    name: 'TFO cookie len 20 in a SYN is listed as a cookie, then the TOA after it',
    table: 'default',
    packet: synV4([...tfoCookie(COOKIE16), ...TOA_200]),
    expected: withToa(SYN_V4, TFO_V6, v4('192.0.2.1', 5555, 200, 8)),
  },
  {
    name: 'Linux SYN options (MSS, SACK-perm, TS, NOP, WS) then a len-8 TOA',
    table: 'default',
    packet: synV4([...linuxSyn(), ...toaV4(254, 50000, '192.0.2.10')]),
    expected: withToa(SYN_V4, v4('192.0.2.10', 50000, 254, 8)),
  },
  {
    name: 'Linux SYN options then a len-20 TOA filling the 40-byte option space exactly',
    table: 'default',
    packet: synV6([...linuxSyn(), ...toaV6(254, 50001, '2001:db8:c::10')]),
    expected: withToa(SYN_V6, v6('2001:db8:c::10', 50001, 254, 20)),
  },
  {
    name: 'several TOA options: all are listed, in order',
    table: 'default',
    packet: synV4([...toaV4(254, 1111, '192.0.2.11'), ...toaV4(200, 2222, '192.0.2.22'), ...toaV4(253, 3333, '192.0.2.33')]),
    expected: withToa(SYN_V4, v4('192.0.2.11', 1111, 254, 8), v4('192.0.2.22', 2222, 200, 8), v4('192.0.2.33', 3333, 253, 8)),
  },
  {
    name: 'several TOA options: a first one naming 0.0.0.0 is listed as unspecified, before the next',
    table: 'default',
    packet: synV4([...toaV4(254, 1111, '0.0.0.0'), ...toaV4(200, 2222, '192.0.2.22')]),
    expected: withToa(SYN_V4, v4('0.0.0.0', 1111, 254, 8, STATUS.unspecified), v4('192.0.2.22', 2222, 200, 8)),
  },
  {
    name: 'an unknown well-formed option before the TOA is skipped',
    table: 'default',
    packet: synV4([99, 6, 1, 2, 3, 4, ...TOA_200]),
    expected: FOUND_200,
  },
  {
    name: 'an over-long option of a TOA kind (len 10) is skipped, the valid TOA after it is read',
    table: 'default',
    packet: synV4([200, 10, 0x15, 0xb3, 192, 0, 2, 99, 0, 0, ...TOA_200]),
    expected: FOUND_200,
  },
  {
    name: 'IPv4 header with options (IHL 8)',
    table: 'default',
    packet: ipv4({ options: [0x94, 4, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0], payload: tcp({ options: TOA_200 }) }),
    expected: FOUND_200,
  },
  {
    name: 'IPv4 first fragment (MF set, offset 0) still has its TCP header',
    table: 'default',
    packet: ipv4({ moreFragments: true, payload: tcp({ options: TOA_200 }) }),
    expected: FOUND_200,
  },
  {
    name: 'IPv6 hop-by-hop, routing, destination options and fragment headers before TCP',
    table: 'default',
    packet: ipv6({
      extHeaders: [extOptions(0), extOptions(43, 2), extOptions(60, 1), extFragment(0, true)],
      payload: tcp({ options: toaV6(254, 6000, '2001:db8:c::1') }),
    }),
    expected: withToa(SYN_V6, v6('2001:db8:c::1', 6000, 254, 20)),
  },
  {
    name: 'IPv6 authentication header before TCP',
    table: 'default',
    packet: ipv6({ extHeaders: [extAuth(4)], payload: tcp({ options: toaV6(254, 6000, '2001:db8:c::1') }) }),
    expected: withToa(SYN_V6, v6('2001:db8:c::1', 6000, 254, 20)),
  },
  {
    name: 'IPv6 with 16 extension headers (the limit) before TCP',
    table: 'default',
    packet: ipv6({ extHeaders: new Array(16).fill(null).map(() => extOptions(60)), payload: tcp({ options: TOA_200 }) }),
    expected: withToa(SYN_V6, v4('192.0.2.1', 5555, 200, 8)),
  },
  {
    name: 'kind 249 len 40: Alibaba Anti-DDoS IPv6 client (v6tov4) in a SYN, default table',
    table: 'default',
    packet: synV4(ALI_DDOS),
    expected: withToa(SYN_V4, ALI_DDOS_CLIENT),
  },
  {
    name: 'kind 249 len 40 in the handshake ACK (where Alibaba puts it)',
    table: 'default',
    packet: ipv4({ payload: tcp({ flags: TCP.ACK, options: ALI_DDOS }) }),
    expected: withToa({ ...SYN_V4, flags: TCP.ACK }, ALI_DDOS_CLIENT),
  },
  {
    name: 'kind 249 len 40 in the first data packet',
    table: 'default',
    packet: ipv4({ payload: tcp({ flags: TCP.ACK | TCP.PSH, options: ALI_DDOS, payload: [0x47, 0x45, 0x54] }) }),
    expected: { ...withToa(SYN_V4, ALI_DDOS_CLIENT), flags: TCP.ACK | TCP.PSH, payloadLength: 3 },
  },
  {
    name: 'kind 249 len 40: the 20 bytes about the Anti-DDoS node do not change the answer',
    table: 'default',
    packet: synV4(aliDdos(40317, '2001:db8:c::249', 249, new Array(20).fill(0xff))),
    expected: withToa(SYN_V4, ALI_DDOS_CLIENT),
  },
  {
    name: 'kind 249 len 40 over IPv6',
    table: 'default',
    packet: synV6(aliDdos(1, '2001:db8:c:0:ffff:ffff:ffff:ffff')),
    expected: withToa(SYN_V6, v6('2001:db8:c:0:ffff:ffff:ffff:ffff', 1, 249, 40)),
  },
  {
    name: 'kind 249 len 40 with an IPv4-mapped client is reported as IPv4',
    table: 'default',
    packet: synV4(aliDdos(8249, '::ffff:192.0.2.49')),
    expected: withToa(SYN_V4, v4('192.0.2.49', 8249, 249, 40)),
  },
  {
    name: 'the handshake ACK with data: flags and payload length are reported',
    table: 'default',
    packet: ipv4({ payload: tcp({ flags: TCP.ACK | TCP.PSH, options: TOA_200, payload: [0x47, 0x45, 0x54, 0x20, 0x2f] }) }),
    expected: { ...FOUND_200, flags: TCP.ACK | TCP.PSH, payloadLength: 5 },
  },
];

/** Well-formed packets whose options hold no TOA that names a client. */
export const NOT_FOUND: ParseVector[] = [
  { name: 'a plain Linux SYN has no TOA', table: 'default', packet: synV4(linuxSyn()), expected: SYN_V4 },
  { name: 'kind 28 len 7 is ignored by the default table', table: 'default', packet: synV4(aliCdn('192.0.2.28')), expected: SYN_V4 },
  {
    name: 'kind 28 with version 2 is listed with a bad version',
    table: 'optIn',
    packet: synV4(aliCdn('192.0.2.28', 2)),
    expected: withToa(SYN_V4, v4('192.0.2.28', 0, 28, 7, STATUS.badVersion)),
  },
  { name: 'kind 28 len 4 (IANA user timeout) is ignored', table: 'optIn', packet: synV4([28, 4, 0x80, 0x1e]), expected: SYN_V4 },
  {
    name: 'kind 252 VTOA is ignored by the default table',
    table: 'default',
    packet: synV4(vtoa({ cport: 4321, cip: '192.0.2.252', vid: 7, vip: '198.51.100.10', vport: 443 })),
    expected: SYN_V4,
  },
  { name: 'TFO cookie len 8 alone in a SYN is a cookie', table: 'default', packet: synV4(tfoCookie(COOKIE4)), expected: withToa(SYN_V4, TFO_V4) },
  { name: 'TFO cookie len 12 alone is not a TOA', table: 'default', packet: synV4(tfoCookie(COOKIE8)), expected: SYN_V4 },
  { name: 'TFO cookie len 20 alone in a SYN is a cookie', table: 'default', packet: synV4(tfoCookie(COOKIE16)), expected: withToa(SYN_V4, TFO_V6) },
  {
    name: 'TFO cookie under kind 253 in a SYN is a cookie too',
    table: 'default',
    packet: synV4(tfoCookie(COOKIE4, 253)),
    expected: withToa(SYN_V4, { ...TFO_V4, kind: 253 }),
  },
  {
    name: 'F9 89 in a handshake ACK is a port (63881), not a TFO cookie',
    table: 'default',
    packet: ipv4({ payload: tcp({ flags: TCP.ACK, options: tfoCookie([192, 0, 2, 1]) }) }),
    expected: withToa({ ...SYN_V4, flags: TCP.ACK }, v4('192.0.2.1', 63881, 254, 8)),
  },
  { name: 'a zero-length option ends the walk before the TOA', table: 'default', packet: synV4([99, 0, ...TOA_200]), expected: SYN_V4 },
  { name: 'a one-byte option ends the walk before the TOA', table: 'default', packet: synV4([99, 1, ...TOA_200]), expected: SYN_V4 },
  {
    name: 'an option length past the TCP header ends the walk',
    table: 'default',
    packet: synV4([99, 30, ...TOA_200, 0, 0]),
    expected: SYN_V4,
  },
  {
    name: 'a TOA whose length runs past the TCP header is not read',
    table: 'default',
    packet: ipv4({ payload: tcp({ options: [1, 1, 1, 1, 200, 8, 0x15, 0xb3], payload: [192, 0, 2, 1] }) }),
    expected: { ...SYN_V4, payloadLength: 4 },
  },
  { name: 'a truncated TOA (len 6) is not read', table: 'default', packet: synV4([200, 6, 0x15, 0xb3, 192, 0]), expected: SYN_V4 },
  { name: 'an over-long TOA (len 10) is not read', table: 'default', packet: synV4([200, 10, 0x15, 0xb3, 192, 0, 2, 1, 0, 0]), expected: SYN_V4 },
  { name: 'a TOA after EOL is not read', table: 'default', packet: synV4([...eol(), ...nop(), ...TOA_200]), expected: SYN_V4 },
  { name: 'a kind byte with no length at the end of the options', table: 'default', packet: synV4([1, 1, 1, 200]), expected: SYN_V4 },
  { name: 'garbage filling the 40-byte option space: 0xff', table: 'default', packet: synV4(new Array(40).fill(0xff)), expected: SYN_V4 },
  { name: 'garbage filling the 40-byte option space: kind 200 len 200', table: 'default', packet: synV4(new Array(40).fill(200)), expected: SYN_V4 },
  {
    name: 'garbage filling the 40-byte option space: repeated 2-byte options',
    table: 'optIn',
    packet: synV4(new Array(40).fill(2)),
    expected: SYN_V4,
  },
  {
    name: 'garbage filling the 40-byte option space: TOA kinds with wrong lengths',
    table: 'optIn',
    packet: synV4([254, 9, 0, 0, 0, 0, 0, 0, 0, 253, 7, 0, 0, 0, 0, 0, 200, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 28, 5, 1, 1]),
    expected: SYN_V4,
  },
  {
    name: '0.0.0.0 client is listed as unspecified',
    table: 'default',
    packet: synV4(toaV4(200, 5555, '0.0.0.0')),
    expected: withToa(SYN_V4, v4('0.0.0.0', 5555, 200, 8, STATUS.unspecified)),
  },
  {
    name: ':: client is listed as unspecified',
    table: 'default',
    packet: synV6(toaV6(254, 5555, '::')),
    expected: withToa(SYN_V6, v6('::', 5555, 254, 20, STATUS.unspecified)),
  },
  {
    name: '::ffff:0.0.0.0 client is listed as unspecified (IPv4)',
    table: 'default',
    packet: synV6(toaV6(254, 5555, '::ffff:0.0.0.0')),
    expected: withToa(SYN_V6, v4('0.0.0.0', 5555, 254, 20, STATUS.unspecified)),
  },
  ...[8, 20, 38, 39].map((length): ParseVector => ({
    name: `kind 249 len ${length} is not TOA-shaped (only len 40 is)`,
    table: 'default',
    packet: synV4(kind249(length)),
    expected: SYN_V4,
  })),
  {
    name: 'kind 249 len 41 runs past the 40-byte option space: not read',
    table: 'default',
    packet: ipv4({ payload: tcp({ flags: TCP.ACK, options: kind249(41).slice(0, 40), doff: 15 }) }),
    expected: { ...SYN_V4, flags: TCP.ACK },
  },
  {
    name: 'a 40-byte option of kind 254 is not TOA-shaped (no 40-byte layout for 254)',
    table: 'default',
    packet: synV4(aliDdos(40317, '2001:db8:c::249', 254)),
    expected: SYN_V4,
  },
  {
    name: 'kind 249 len 40 with a :: client is listed as unspecified',
    table: 'default',
    packet: synV4(aliDdos(40317, '::')),
    expected: withToa(SYN_V4, v6('::', 40317, 249, 40, STATUS.unspecified)),
  },
  {
    name: 'kind 249 len 40 with ::ffff:0.0.0.0 is listed as unspecified (IPv4)',
    table: 'default',
    packet: synV4(aliDdos(40317, '::ffff:0.0.0.0')),
    expected: withToa(SYN_V4, v4('0.0.0.0', 40317, 249, 40, STATUS.unspecified)),
  },
  {
    name: 'Alibaba CDN 0.0.0.0 client is listed as unspecified',
    table: 'optIn',
    packet: synV4(aliCdn('0.0.0.0')),
    expected: withToa(SYN_V4, v4('0.0.0.0', 0, 28, 7, STATUS.unspecified)),
  },
  {
    name: 'VTOA with a 0.0.0.0 client is listed as unspecified',
    table: 'optIn',
    packet: synV4(vtoa({ cport: 1, cip: '0.0.0.0', vid: 7, vip: '198.51.100.10', vport: 443 })),
    expected: withToa(SYN_V4, {
      ...v4('0.0.0.0', 1, 252, 20, STATUS.unspecified),
      layout: 8,
      vid: 7,
      vip: { family: 'IPv4', address: '198.51.100.10', port: 443 },
    }),
  },
];

const NOT_TCP = 17;
const ESP = 50;
const NO_NEXT_HEADER = 59;
const TCP_TOA = tcp({ options: TOA_200 });

/** Packets the parser must refuse as a whole (`ok: false`). */
export const REFUSED: ParseVector[] = [
  { name: 'empty buffer', table: 'default', packet: new Uint8Array(0), expected: NOT_OK },
  { name: 'version nibble 5 is not IP', table: 'default', packet: ipv4({ version: 5, payload: TCP_TOA }), expected: NOT_OK },
  { name: 'version nibble 0 is not IP', table: 'default', packet: ipv4({ version: 0, payload: TCP_TOA }), expected: NOT_OK },
  { name: 'an IPv4 header alone', table: 'default', packet: ipv4(), expected: NOT_OK },
  { name: 'IPv4 carrying UDP', table: 'default', packet: ipv4({ protocol: NOT_TCP, payload: TCP_TOA }), expected: NOT_OK },
  { name: 'IPv4 IHL 4 (< 5)', table: 'default', packet: ipv4({ ihl: 4, payload: TCP_TOA }), expected: NOT_OK },
  { name: 'IPv4 IHL 0', table: 'default', packet: ipv4({ ihl: 0, payload: TCP_TOA }), expected: NOT_OK },
  { name: 'IPv4 IHL 15 past the buffer', table: 'default', packet: ipv4({ ihl: 15, payload: tcp() }), expected: NOT_OK },
  { name: 'IPv4 total length shorter than its header', table: 'default', packet: ipv4({ totalLength: 19, payload: TCP_TOA }), expected: NOT_OK },
  {
    name: 'IPv4 total length cutting the TCP header',
    table: 'default',
    packet: ipv4({ totalLength: 20 + 24, payload: TCP_TOA }),
    expected: NOT_OK,
  },
  { name: 'IPv4 later fragment (offset 185)', table: 'default', packet: ipv4({ fragmentOffset: 185, payload: TCP_TOA }), expected: NOT_OK },
  {
    name: 'IPv4 last fragment (offset 1, MF clear)',
    table: 'default',
    packet: ipv4({ fragmentOffset: 1, moreFragments: false, payload: TCP_TOA }),
    expected: NOT_OK,
  },
  { name: 'TCP data offset 15, larger than the packet', table: 'default', packet: ipv4({ payload: tcp({ options: TOA_200, doff: 15 }) }), expected: NOT_OK },
  { name: 'TCP data offset 4 (< 5)', table: 'default', packet: ipv4({ payload: tcp({ options: TOA_200, doff: 4 }) }), expected: NOT_OK },
  { name: 'TCP data offset 0', table: 'default', packet: ipv4({ payload: tcp({ doff: 0 }) }), expected: NOT_OK },
  { name: 'TCP header cut at 19 bytes', table: 'default', packet: ipv4({ payload: tcp().subarray(0, 19) }), expected: NOT_OK },
  { name: 'an IPv6 header alone', table: 'default', packet: ipv6(), expected: NOT_OK },
  { name: 'IPv6 payload length 0 (jumbogram or lie)', table: 'default', packet: ipv6({ payloadLength: 0, payload: TCP_TOA }), expected: NOT_OK },
  {
    name: 'IPv6 extension header running past the buffer',
    table: 'default',
    packet: ipv6({ extHeaders: [extOptions(0, 31)], payload: TCP_TOA }).subarray(0, 40 + 64),
    expected: NOT_OK,
  },
  {
    name: 'IPv6 extension header cut before its length byte',
    table: 'default',
    packet: ipv6({ extHeaders: [extOptions(60, 1)] }).subarray(0, 40 + 4),
    expected: NOT_OK,
  },
  {
    name: 'IPv6 extension header whose length skips past the TCP header',
    table: 'default',
    packet: ipv6({ extHeaders: [{ type: 60, bytes: [0, 3, 1, 4, 0, 0, 0, 0] }], payload: TCP_TOA }),
    expected: NOT_OK,
  },
  {
    name: 'IPv6 with 17 extension headers (more than 16)',
    table: 'default',
    packet: ipv6({ extHeaders: new Array(17).fill(null).map(() => extOptions(60)), payload: TCP_TOA }),
    expected: NOT_OK,
  },
  { name: 'IPv6 later fragment', table: 'default', packet: ipv6({ extHeaders: [extFragment(185, false)], payload: TCP_TOA }), expected: NOT_OK },
  { name: 'IPv6 ESP', table: 'default', packet: ipv6({ protocol: ESP, payload: TCP_TOA }), expected: NOT_OK },
  {
    name: 'IPv6 ESP after a hop-by-hop header',
    table: 'default',
    packet: ipv6({ extHeaders: [extOptions(0)], protocol: ESP, payload: TCP_TOA }),
    expected: NOT_OK,
  },
  { name: 'IPv6 no-next-header', table: 'default', packet: ipv6({ protocol: NO_NEXT_HEADER, payload: TCP_TOA }), expected: NOT_OK },
  { name: 'IPv6 carrying UDP', table: 'default', packet: ipv6({ protocol: NOT_TCP, payload: TCP_TOA }), expected: NOT_OK },
];

export const ALL_VECTORS: ParseVector[] = [...FOUND, ...NOT_FOUND, ...REFUSED];

/** Valid SYNs with every option a Linux client sends, for the prefix and mutation tests. */
export const FULL_SYN_V4 = ipv4({
  payload: tcp({ options: [...mss(), ...sackOk(), ...ts(), ...nop(), ...ws(), ...toaV4(254, 50000, '192.0.2.10')], payload: [1, 2, 3] }),
});
export const FULL_SYN_V6 = ipv6({
  extHeaders: [extOptions(0), extFragment(0, true)],
  payload: tcp({ options: [...linuxSyn(), ...toaV6(253, 50001, '2001:db8:c::10')] }),
});
