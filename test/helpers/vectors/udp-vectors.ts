// UDP datagram headers for tests: builders for SPP (Cloudflare Spectrum, EdgeOne) and PROXY v2
// DGRAM headers, and the byte vectors the native datagram parser is tested on
// (test/unit/udp-parse.test.ts; fuzz seeds in scripts/fuzz-dgram-seeds.js). Documentation addresses only.
import { proxyV2 } from './proxy-vectors';
import { ipv4Bytes, ipv6Bytes } from './packets';

export interface UdpEndpoint {
  address: string;
  port: number;
}

function mapped(address: string): number[] {
  return address.includes(':') ? ipv6Bytes(address) : [...new Array(10).fill(0), 0xff, 0xff, ...ipv4Bytes(address)];
}

/** An SPP header: magic, client, proxy (IPv4 as IPv4-mapped IPv6), client port, proxy port. */
export function sppHeader(client: UdpEndpoint, proxy: UdpEndpoint): Buffer {
  return Buffer.from([
    0x56, 0xec,
    ...mapped(client.address),
    ...mapped(proxy.address),
    client.port >> 8, client.port & 0xff,
    proxy.port >> 8, proxy.port & 0xff,
  ]);
}

/** A PROXY v2 header for UDP (transport DGRAM: 0x12 / 0x22). */
export function ppDgramHeader(client: UdpEndpoint, destination: UdpEndpoint): Buffer {
  const six = client.address.includes(':');
  const dest = six && !destination.address.includes(':') ? { address: `::ffff:${destination.address}`, port: destination.port } : destination;
  return Buffer.from(proxyV2({ source: client, destination: dest, transport: 'dgram', family: six ? 'IPv6' : 'IPv4' }));
}
/** Format bits (native/dgram_header.h). */
export const SPP = 1;
export const PROXY = 2;

export interface DgramVector {
  name: string;
  bytes: Uint8Array;
  formats: number;
  /** 'none' | 'spp' | 'proxy' | 'proxyLocal' | 'malformed' | 'tooLarge' */
  kind: 'none' | 'spp' | 'proxy' | 'proxyLocal' | 'malformed' | 'tooLarge';
  length?: number;
  client?: UdpEndpoint & { family: 'IPv4' | 'IPv6' };
  other?: UdpEndpoint & { family: 'IPv4' | 'IPv6' };
  reason?: string;
  /** max_size for a PROXY v2 header (default 4096) */
  maxSize?: number;
}

const C4 = { address: '192.0.2.33', port: 5353 };
const C6 = { address: '2001:db8:c::33', port: 5353 };
const P4 = { address: '198.51.100.10', port: 443 };
const P6 = { address: '2001:db8:d::10', port: 443 };
const payload = (text: string) => Array.from(Buffer.from(text));
const cat = (...parts: Array<ArrayLike<number>>) => Uint8Array.from(parts.flatMap((p) => Array.from(p)));
const v4 = (e: UdpEndpoint) => ({ ...e, family: 'IPv4' as const });
const v6 = (e: UdpEndpoint) => ({ ...e, family: 'IPv6' as const });

export const DGRAM_VECTORS: DgramVector[] = [
  { name: 'spp ipv4 client, payload', bytes: cat(sppHeader(C4, P4), payload('hi')), formats: SPP, kind: 'spp', length: 38, client: v4(C4), other: v4(P4) },
  { name: 'spp ipv6 client, ipv6 proxy', bytes: cat(sppHeader(C6, P6), payload('hi')), formats: SPP, kind: 'spp', length: 38, client: v6(C6), other: v6(P6) },
  { name: 'spp header alone (empty payload)', bytes: sppHeader(C4, P6), formats: SPP, kind: 'spp', length: 38, client: v4(C4), other: v6(P6) },
  { name: 'spp with port 0 and 65535', bytes: sppHeader({ address: '192.0.2.1', port: 0 }, { address: '198.51.100.1', port: 65535 }), formats: SPP, kind: 'spp', length: 38, client: v4({ address: '192.0.2.1', port: 0 }), other: v4({ address: '198.51.100.1', port: 65535 }) },
  { name: 'spp ::ffff:7f00:1 style mapped client reads as IPv4', bytes: sppHeader({ address: '127.0.0.1', port: 1 }, P4), formats: SPP, kind: 'spp', length: 38, client: v4({ address: '127.0.0.1', port: 1 }), other: v4(P4) },
  { name: 'spp cut at 37 bytes', bytes: sppHeader(C4, P4).subarray(0, 37), formats: SPP, kind: 'malformed', reason: 'SPP header cut short' },
  { name: 'spp magic alone', bytes: Uint8Array.from([0x56, 0xec]), formats: SPP, kind: 'malformed', reason: 'SPP header cut short' },
  { name: 'spp with :: as client', bytes: sppHeader({ address: '::', port: 1 }, P4), formats: SPP, kind: 'malformed', reason: 'SPP header without a client address' },
  { name: 'spp with ::ffff:0.0.0.0 as client', bytes: sppHeader({ address: '0.0.0.0', port: 1 }, P4), formats: SPP, kind: 'malformed', reason: 'SPP header without a client address' },
  { name: 'spp magic with spp off is data', bytes: sppHeader(C4, P4), formats: PROXY, kind: 'none' },
  { name: 'one byte 0x56 is data', bytes: Uint8Array.from([0x56]), formats: SPP | PROXY, kind: 'none' },
  { name: 'empty datagram is data', bytes: new Uint8Array(0), formats: SPP | PROXY, kind: 'none' },
  { name: 'magic byte-swapped is data', bytes: cat([0xec, 0x56], sppHeader(C4, P4).subarray(2)), formats: SPP, kind: 'none' },
  { name: 'pp v2 udp4', bytes: cat(ppDgramHeader(C4, P4), payload('q')), formats: PROXY, kind: 'proxy', length: 28, client: v4(C4), other: v4(P4) },
  { name: 'pp v2 udp6', bytes: cat(ppDgramHeader(C6, P6), payload('q')), formats: PROXY, kind: 'proxy', length: 52, client: v6(C6), other: v6(P6) },
  { name: 'pp v2 udp4 with both formats on', bytes: cat(ppDgramHeader(C4, P4), payload('q')), formats: SPP | PROXY, kind: 'proxy', length: 28, client: v4(C4), other: v4(P4) },
  { name: 'pp v2 udp6 with an ipv4-mapped source stays IPv6', bytes: ppDgramHeader({ address: '::ffff:192.0.2.9', port: 7 }, P6), formats: PROXY, kind: 'proxy', length: 52, client: v6({ address: '::ffff:192.0.2.9', port: 7 }), other: v6(P6) },
  { name: 'pp v2 udp4 with a tlv', bytes: cat(proxyV2({ source: C4, destination: P4, transport: 'dgram', tlvs: [{ type: 0xe0, value: Uint8Array.from([1, 2, 3]) }] }), payload('q')), formats: PROXY, kind: 'proxy', length: 34, client: v4(C4), other: v4(P4) },
  { name: 'pp v2 udp4 with a good crc32c', bytes: cat(proxyV2({ source: C4, destination: P4, transport: 'dgram', crc: true }), payload('q')), formats: PROXY, kind: 'proxy', length: 35, client: v4(C4), other: v4(P4) },
  { name: 'pp v2 local', bytes: cat(proxyV2({ command: 'LOCAL' }), payload('ping')), formats: PROXY, kind: 'proxyLocal', length: 16 },
  { name: 'pp v2 proxy unspec', bytes: cat(proxyV2({ family: 'unspec' }), payload('x')), formats: PROXY, kind: 'proxyLocal', length: 16 },
  { name: 'pp v2 tcp4 in a datagram', bytes: proxyV2({ source: C4, destination: P4, transport: 'stream' }), formats: PROXY, kind: 'malformed', reason: 'PROXY v2 header for a TCP connection (transport STREAM) in a datagram' },
  { name: 'pp v2 udp4 source 0.0.0.0', bytes: proxyV2({ source: { address: '0.0.0.0', port: 1 }, destination: P4, transport: 'dgram' }), formats: PROXY, kind: 'malformed', reason: 'PROXY v2 header without a source address' },
  { name: 'pp v2 cut inside the addresses', bytes: ppDgramHeader(C4, P4).subarray(0, 27), formats: PROXY, kind: 'malformed', reason: 'PROXY v2 header longer than the datagram' },
  { name: 'pp v2 fixed part only (13 bytes)', bytes: ppDgramHeader(C4, P4).subarray(0, 13), formats: PROXY, kind: 'malformed', reason: 'PROXY v2 header longer than the datagram' },
  { name: 'pp v2 bad crc32c', bytes: proxyV2({ source: C4, destination: P4, transport: 'dgram', crc: 'bad' }), formats: PROXY, kind: 'malformed', reason: 'bad CRC32c' },
  { name: 'pp v2 version 1 in the v2 signature', bytes: proxyV2({ source: C4, destination: P4, transport: 'dgram', versionCommand: 0x11 }), formats: PROXY, kind: 'malformed', reason: 'v2 bad version' },
  { name: 'pp v2 over max size', bytes: proxyV2({ source: C4, destination: P4, transport: 'dgram', tlvs: [{ type: 0xe0, value: new Uint8Array(100) }] }), formats: PROXY, kind: 'tooLarge', maxSize: 64, reason: 'header longer than maxSize' },
  { name: 'pp v2 signature with proxy off is data', bytes: ppDgramHeader(C4, P4), formats: SPP, kind: 'none' },
  { name: 'pp v1 line is data over udp', bytes: Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.1 1 2\r\nx'), formats: PROXY, kind: 'none' },
  { name: 'crlf data is data', bytes: Buffer.from('\r\n\r\nhello world'), formats: PROXY, kind: 'none' },
  { name: 'eleven signature bytes are data', bytes: ppDgramHeader(C4, P4).subarray(0, 11), formats: PROXY, kind: 'none' },
];

// ---- DPVS UOA --------------------------------------------------------------------------------

/** The UOA IPv4 option: type 0x1F, length 8 (port, IPv4) or 20 (port, IPv6). */
export function uoaOption(client: UdpEndpoint): number[] {
  const six = client.address.includes(':');
  return [0x1f, six ? 20 : 8, client.port >> 8, client.port & 0xff, ...(six ? ipv6Bytes(client.address) : ipv4Bytes(client.address))];
}

/** A UDP header (checksum 0: none, as IPv4 allows) and payload. */
export function udpSegment(sport: number, dport: number, payload: ArrayLike<number> = []): number[] {
  const length = 8 + payload.length;
  return [sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, length >> 8, length & 0xff, 0, 0, ...Array.from(payload)];
}

export interface UoaPacketSpec {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** IPv4 option bytes (e.g. uoaOption()); padded to 4 with EOL. */
  options?: number[];
  payload?: ArrayLike<number>;
  /** DPVS's private protocol: IP protocol 248, opphdr, the options, then UDP. */
  privateProtocol?: boolean;
}

/** An IPv4 packet (checksum 0: the kernel fills it for a raw socket) carrying a UDP datagram. */
export function uoaPacket(s: UoaPacketSpec): Uint8Array {
  const options = [...(s.options ?? [])];
  const udp = udpSegment(s.sport, s.dport, s.payload);
  let protocol = 17;
  let body: number[];
  let ipOptions: number[] = [];
  if (s.privateProtocol) {
    protocol = 248;
    const oppLength = 4 + options.length;
    body = [0x10, 17, oppLength >> 8, oppLength & 0xff, ...options, ...udp];
  } else {
    ipOptions = options;
    while (ipOptions.length % 4 !== 0) ipOptions.push(0);
    body = udp;
  }
  const ihl = 5 + ipOptions.length / 4;
  const total = 4 * ihl + body.length;
  return Uint8Array.from([
    0x40 | ihl, 0, total >> 8, total & 0xff, 0x12, 0x34, 0x40, 0, 64, protocol, 0, 0,
    ...ipv4Bytes(s.src), ...ipv4Bytes(s.dst),
    ...ipOptions,
    ...body,
  ]);
}

export interface UoaVector {
  name: string;
  bytes: Uint8Array;
  status: 'notUdp' | 'none' | 'found' | 'private' | 'malformed';
  client?: UdpEndpoint & { family: 'IPv4' | 'IPv6' };
  payloadLength?: number;
}

const PX = { src: '198.51.100.10', dst: '203.0.113.5', sport: 40000, dport: 5353 };
const UC4 = { address: '192.0.2.44', port: 6000 };
const UC6 = { address: '2001:db8:c::44', port: 6000 };

export const UOA_VECTORS: UoaVector[] = [
  { name: 'ipv4 client in the option, with payload', bytes: uoaPacket({ ...PX, options: uoaOption(UC4), payload: payload('data') }), status: 'found', client: v4(UC4), payloadLength: 4 },
  { name: 'ipv6 client in a 20-byte option', bytes: uoaPacket({ ...PX, options: uoaOption(UC6), payload: payload('data') }), status: 'found', client: v6(UC6), payloadLength: 4 },
  { name: 'the empty-payload form', bytes: uoaPacket({ ...PX, options: uoaOption(UC4) }), status: 'found', client: v4(UC4), payloadLength: 0 },
  { name: 'after a nop and a record-route-like option', bytes: uoaPacket({ ...PX, options: [1, 0x44, 4, 5, 0, ...uoaOption(UC4)] }), status: 'found', client: v4(UC4), payloadLength: 0 },
  { name: 'udp without options', bytes: uoaPacket({ ...PX, payload: payload('x') }), status: 'none', payloadLength: 1 },
  { name: 'the option after eol is not read', bytes: uoaPacket({ ...PX, options: [0, 0, 0, 0, ...uoaOption(UC4)] }), status: 'none', payloadLength: 0 },
  { name: 'uoa of length 9', bytes: uoaPacket({ ...PX, options: [0x1f, 9, 0, 1, 192, 0, 2, 1, 0] }), status: 'malformed' },
  { name: 'uoa with 0.0.0.0', bytes: uoaPacket({ ...PX, options: uoaOption({ address: '0.0.0.0', port: 1 }) }), status: 'malformed' },
  { name: 'option length past the header', bytes: uoaPacket({ ...PX, options: [0x44, 40, 0, 0] }), status: 'malformed' },
  { name: 'option of length 1', bytes: uoaPacket({ ...PX, options: [0x44, 1, 0, 0] }), status: 'malformed' },
  { name: 'private protocol 248 with an ipv4 client', bytes: uoaPacket({ ...PX, options: uoaOption(UC4), payload: payload('p'), privateProtocol: true }), status: 'private', client: v4(UC4), payloadLength: 1 },
  { name: 'private protocol 248 with an ipv6 client', bytes: uoaPacket({ ...PX, options: uoaOption(UC6), privateProtocol: true }), status: 'private', client: v6(UC6), payloadLength: 0 },
  { name: 'tcp is not udp', bytes: Uint8Array.from([...uoaPacket({ ...PX, options: uoaOption(UC4) }).slice(0, 9), 6, ...uoaPacket({ ...PX, options: uoaOption(UC4) }).slice(10)]), status: 'notUdp' },
  { name: 'cut inside the udp header', bytes: uoaPacket({ ...PX, options: uoaOption(UC4) }).slice(0, 30), status: 'notUdp' },
  { name: 'cut inside the options', bytes: uoaPacket({ ...PX, options: uoaOption(UC4) }).slice(0, 24), status: 'notUdp' },
  { name: 'ihl below 5', bytes: Uint8Array.from([0x44, ...uoaPacket({ ...PX }).slice(1)]), status: 'notUdp' },
  { name: 'a later fragment', bytes: Uint8Array.from([...uoaPacket({ ...PX, options: uoaOption(UC4) }).slice(0, 6), 0x20, 0x10, ...uoaPacket({ ...PX, options: uoaOption(UC4) }).slice(8)]), status: 'notUdp' },
  { name: 'not ip', bytes: Uint8Array.from([0x00, 1, 2, 3]), status: 'notUdp' },
  { name: 'empty', bytes: new Uint8Array(0), status: 'notUdp' },
];
