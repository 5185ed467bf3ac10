// Builds IPv4/IPv6 + TCP packets and TCP option bytes for the parser's unit vectors and fuzz seeds.
// Everything is plain byte arithmetic (no node:net helpers) so that a vector can say exactly which
// byte is wrong; checksums are left zero because nothing on this path verifies them.

export type Bytes = Uint8Array | readonly number[];

const IPPROTO_TCP = 6;

/** 'a.b.c.d' → 4 bytes. */
export function ipv4Bytes(address: string): number[] {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new RangeError(`ipv4Bytes: not an IPv4 address: ${address}`);
  }
  return parts;
}

/** Any textual IPv6 address ('::', '2001:db8::1', '::ffff:192.0.2.1') → 16 bytes. */
export function ipv6Bytes(address: string): number[] {
  let text = address;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail = ipv4Bytes(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) throw new RangeError(`ipv6Bytes: not an IPv6 address: ${address}`);
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  const all = [...head, ...new Array<number>(fill).fill(0), ...rest];
  if (all.length !== 8 || all.some((g) => !(g >= 0 && g <= 0xffff))) {
    throw new RangeError(`ipv6Bytes: not an IPv6 address: ${address}`);
  }
  const bytes = all.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

function u16(value: number): number[] {
  return [(value >> 8) & 0xff, value & 0xff];
}

function u32(value: number): number[] {
  return [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

export function concat(...parts: Bytes[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

// ---- TCP options -------------------------------------------------------------------------------

export const eol = (): number[] => [0];
export const nop = (): number[] => [1];
export const mss = (value = 1460): number[] => [2, 4, ...u16(value)];
export const ws = (shift = 7): number[] => [3, 3, shift];
export const sackOk = (): number[] => [4, 2];
export const ts = (value = 0x01020304, echo = 0): number[] => [8, 10, ...u32(value), ...u32(echo)];

/** The options of a Linux SYN, in Linux's order: MSS, SACK-permitted, timestamps, NOP, WS (20 bytes). */
export const linuxSyn = (): number[] => [...mss(), ...sackOk(), ...ts(), ...nop(), ...ws()];

/** kind, 8, port, IPv4: Tencent/LVS/DPVS/Huawei/UCloud. */
export function toaV4(kind: number, port: number, ip: string): number[] {
  return [kind, 8, ...u16(port), ...ipv4Bytes(ip)];
}

/** kind, 20, port, IPv6: DPVS 254, LVS/Tencent NAT64 253. */
export function toaV6(kind: number, port: number, ip: string): number[] {
  return [kind, 20, ...u16(port), ...ipv6Bytes(ip)];
}

/** Alibaba CDN: kind (28), 7 or 19, version, IPv4 or IPv6; no port. */
export function aliCdn(ip: string, version = 1, kind = 28): number[] {
  const address = ip.includes(':') ? ipv6Bytes(ip) : ipv4Bytes(ip);
  return [kind, 3 + address.length, version, ...address];
}

/** Alibaba SLB VTOA: kind (252), 20, cport, cip, vid, vip, vport, 2 bytes of padding. */
export function vtoa(o: { cport: number; cip: string; vid: number; vip: string; vport: number; kind?: number }): number[] {
  return [o.kind ?? 252, 20, ...u16(o.cport), ...ipv4Bytes(o.cip), ...u32(o.vid), ...ipv4Bytes(o.vip), ...u16(o.vport), 0, 0];
}

/** The 20 bytes after the client in ALI_DDOS options: the Anti-DDoS node's IP information. */
export const ALI_DDOS_NODE: readonly number[] = [...ipv6Bytes('2001:db8:a::249'), 0, 0, 0x01, 0xbb];

/**
 * Alibaba Cloud Anti-DDoS Proxy, IPv6 instance in v6tov4 mode: kind (249), 40, port, IPv6, then
 * 20 bytes about the Anti-DDoS node. 40 bytes is the whole TCP option space.
 */
export function aliDdos(port: number, ip: string, kind = 249, node: Bytes = ALI_DDOS_NODE): number[] {
  if (node.length !== 20) throw new RangeError(`aliDdos: node must be 20 bytes, got ${node.length}`);
  return [kind, 40, ...u16(port), ...ipv6Bytes(ip), ...node];
}

/** Linux's TCP Fast Open cookie in the RFC 6994 experimental form: kind, len, 0xF989, cookie. */
export function tfoCookie(cookie: Bytes, kind = 254): number[] {
  return [kind, 4 + cookie.length, 0xf9, 0x89, ...cookie];
}

// ---- TCP ---------------------------------------------------------------------------------------

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

export interface TcpSpec {
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  /** Raw option bytes; padded with EOL (zeros) to a multiple of 4 unless `doff` is given. */
  options?: Bytes;
  /** Data offset in 32-bit words, written as is (may lie about the header's size). */
  doff?: number;
  payload?: Bytes;
}

export function tcp(spec: TcpSpec = {}): Uint8Array {
  const options = Array.from(spec.options ?? []);
  while (spec.doff === undefined && options.length % 4 !== 0) options.push(0);
  const doff = spec.doff ?? 5 + options.length / 4;
  const header = [
    ...u16(spec.sport ?? 40000),
    ...u16(spec.dport ?? 80),
    ...u32(spec.seq ?? 0x11223344),
    ...u32(spec.ack ?? 0),
    (doff & 0x0f) << 4,
    spec.flags ?? TCP.SYN,
    ...u16(spec.window ?? 64240),
    0, 0, // checksum
    0, 0, // urgent pointer
  ];
  return concat(header, options, spec.payload ?? []);
}

// ---- IP ----------------------------------------------------------------------------------------

export interface Ipv4Spec {
  src?: string;
  dst?: string;
  /** Header length in 32-bit words, written as is; the default fits `options`. */
  ihl?: number;
  /** IP options; padded with zeros to a multiple of 4 unless `ihl` is given. */
  options?: Bytes;
  protocol?: number;
  /** Fragment offset in 8-byte units. */
  fragmentOffset?: number;
  moreFragments?: boolean;
  /** Total length field; defaults to the real length. */
  totalLength?: number;
  payload?: Bytes;
  /** Version nibble, for the non-IP vectors. */
  version?: number;
}

export function ipv4(spec: Ipv4Spec = {}): Uint8Array {
  const options = Array.from(spec.options ?? []);
  while (spec.ihl === undefined && options.length % 4 !== 0) options.push(0);
  const ihl = spec.ihl ?? 5 + options.length / 4;
  const payload = spec.payload ?? [];
  const total = spec.totalLength ?? 20 + options.length + payload.length;
  const fragment = ((spec.moreFragments ? 1 : 0) << 13) | (spec.fragmentOffset ?? 0);
  const header = [
    ((spec.version ?? 4) << 4) | (ihl & 0x0f),
    0,
    ...u16(total),
    ...u16(0x1234), // id
    ...u16(fragment),
    64, // ttl
    spec.protocol ?? IPPROTO_TCP,
    0, 0, // checksum
    ...ipv4Bytes(spec.src ?? '198.51.100.2'),
    ...ipv4Bytes(spec.dst ?? '203.0.113.10'),
  ];
  return concat(header, options, payload);
}

/** An IPv6 extension header; its first byte (next header) is filled in by `ipv6()`. */
export interface ExtHeader {
  type: number;
  bytes: number[];
}

/** Hop-by-hop (0), routing (43) or destination options (60): `units` + 1 eight-byte units. */
export function extOptions(type: 0 | 43 | 60, units = 0): ExtHeader {
  const bytes = new Array<number>((units + 1) * 8).fill(0);
  bytes[1] = units;
  if (type === 0 || type === 60) bytes[2] = 1; // PadN over the rest
  if (type === 0 || type === 60) bytes[3] = bytes.length - 4;
  return { type, bytes };
}

/** Fragment header (44); `offset` in 8-byte units. */
export function extFragment(offset = 0, more = true): ExtHeader {
  return { type: 44, bytes: [0, 0, ...u16((offset << 3) | (more ? 1 : 0)), ...u32(0xabcd)] };
}

/** Authentication header (51): payload length in 4-byte units minus 2. */
export function extAuth(words = 4): ExtHeader {
  const bytes = new Array<number>((words + 2) * 4).fill(0);
  bytes[1] = words;
  return { type: 51, bytes };
}

export interface Ipv6Spec {
  src?: string;
  dst?: string;
  extHeaders?: ExtHeader[];
  /** Next header after the extension headers (TCP by default). */
  protocol?: number;
  /** Payload length field; defaults to the real length. */
  payloadLength?: number;
  payload?: Bytes;
}

export function ipv6(spec: Ipv6Spec = {}): Uint8Array {
  const ext = spec.extHeaders ?? [];
  const chain = ext.map((h, i) => {
    const bytes = h.bytes.slice();
    bytes[0] = i + 1 < ext.length ? ext[i + 1].type : (spec.protocol ?? IPPROTO_TCP);
    return bytes;
  });
  const payload = spec.payload ?? [];
  const extLength = chain.reduce((n, b) => n + b.length, 0);
  const first = ext.length > 0 ? ext[0].type : (spec.protocol ?? IPPROTO_TCP);
  const header = [
    0x60, 0, 0, 0,
    ...u16(spec.payloadLength ?? extLength + payload.length),
    first,
    64, // hop limit
    ...ipv6Bytes(spec.src ?? '2001:db8:b::2'),
    ...ipv6Bytes(spec.dst ?? '2001:db8:d::10'),
  ];
  return concat(header, ...chain, payload);
}

// ---- Whole SYNs --------------------------------------------------------------------------------

/** An IPv4 SYN from the proxy (198.51.100.2:40000 → 203.0.113.10:80) with the given options. */
export function synV4(options: Bytes, tcpSpec: TcpSpec = {}): Uint8Array {
  return ipv4({ payload: tcp({ ...tcpSpec, options }) });
}

/** An IPv6 SYN from the proxy (2001:db8:b::2:40000 → 2001:db8:d::10:80) with the given options. */
export function synV6(options: Bytes, tcpSpec: TcpSpec = {}): Uint8Array {
  return ipv6({ payload: tcp({ ...tcpSpec, options }) });
}
