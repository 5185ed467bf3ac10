// What the gate keeps of a connection's PROXY header, on the raw net.Socket under a registry
// symbol (two copies of node-toa in one process read each other's), and the public view of it,
// made at the first resolution and shared by every resolver.
import { binding } from '../addon/binding';
import { PROXY_STATUS, type NativeProxyHeader } from '../addon/native';
import type { Endpoint, ProxyProtocolInfo } from '../core/types';
import { decodeTlvs } from './tlvs';

export const PROXY_HEADER = Symbol.for('node-toa.proxy-header.v1');

export interface ProxyHeader {
  /** The L3 peer that sent the header (IPv4-mapped addresses written as IPv4). */
  readonly peer: Endpoint;
  readonly version: 1 | 2;
  readonly command: 'PROXY' | 'LOCAL';
  /** The client (the header's source address) and the address it connected to: PROXY over IPv4 or IPv6 only. */
  readonly client: Endpoint | undefined;
  readonly destination: Endpoint | undefined;
  /** A CRC32c TLV was there (and matched). */
  readonly crc32c: boolean;
  /**
   * The header's own bytes, copied, when it has TLVs (the socket's read buffer goes on to the
   * application); undefined when there is nothing in them to decode.
   */
  readonly bytes: Buffer | undefined;
  /** The parse of `bytes` (its TLV triples): made at the first resolution when the gate had none. */
  parsed: NativeProxyHeader | undefined;
  info: ProxyProtocolInfo | undefined;
}

const plain = (version: 1 | 2, command: 'PROXY' | 'LOCAL'): ProxyProtocolInfo =>
  Object.freeze({ version, command, tlvs: Object.freeze([]) as unknown as ProxyProtocolInfo['tlvs'], crc32c: false });
const PLAIN = [
  [plain(1, 'PROXY'), plain(1, 'LOCAL')],
  [plain(2, 'PROXY'), plain(2, 'LOCAL')],
] as const;

// A header the gate took straight off the socket has its bytes but not their TLV triples: the same
// parser finds them again, once, when someone asks.
function reparse(bytes: Buffer): NativeProxyHeader {
  const parsed = binding!.parseProxyHeader(bytes, bytes.length < 16 ? 16 : bytes.length);
  if (parsed.status !== PROXY_STATUS.ok) throw new Error(`node-toa: a PROXY header read before no longer parses (${parsed.reason})`);
  return parsed;
}

/** The header as RealAddress.proxyProtocol shows it (made once per connection, frozen). */
export function headerInfo(header: ProxyHeader): ProxyProtocolInfo {
  if (header.info !== undefined) return header.info;
  // Most headers have no TLV (so no CRC32c either): theirs is one of four frozen objects.
  if (header.bytes === undefined) return (header.info = PLAIN[header.version - 1][header.command === 'PROXY' ? 0 : 1]);
  const info: ProxyProtocolInfo = {
    version: header.version,
    command: header.command,
    tlvs: [],
    crc32c: header.crc32c,
  };
  const bytes = header.bytes;
  if (bytes !== undefined) {
    const parsed = (header.parsed ??= reparse(bytes));
    decodeTlvs(info, bytes, parsed.tlvs, parsed.ssl);
  }
  for (const tlv of info.tlvs) Object.freeze(tlv);
  Object.freeze(info.tlvs);
  if (info.ssl !== undefined) {
    for (const tlv of info.ssl.tlvs) Object.freeze(tlv);
    Object.freeze(info.ssl.tlvs);
    Object.freeze(info.ssl);
  }
  if (info.alibaba !== undefined) Object.freeze(info.alibaba);
  header.info = Object.freeze(info);
  return header.info;
}

/** The header the gate left on this socket or on the net.Socket a TLS socket wraps. */
export function headerOf(socket: object): ProxyHeader | undefined {
  const s = socket as { [PROXY_HEADER]?: ProxyHeader; _parent?: { [PROXY_HEADER]?: ProxyHeader } | null };
  const own = s[PROXY_HEADER];
  if (own !== undefined) return own;
  const inner = s._parent;
  return typeof inner === 'object' && inner !== null ? inner[PROXY_HEADER] : undefined;
}
