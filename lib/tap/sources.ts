// The tap's filter carries the trust list: the same `trustProxy` entries the resolver believes,
// compiled into address ranges the kernel checks (native/tap_filter.cc), so a packet from anyone
// else (a SYN flood, a forged option) never reaches user space. proxy-addr's syntax, read the way
// proxy-addr reads it (its keywords, `ip`, `ip/bits`, `ipv4/netmask`).
import ipaddr = require('ipaddr.js');
import { trustEntries } from '../core/trust';
import type { TrustProxy } from '../core/types';

/** Packed ranges for NativeTap.setFilter (18 bytes each), or null: every source passes. */
export type Sources = Uint8Array | null;

// proxy-addr's keywords.
const KEYWORDS: Record<string, readonly string[]> = {
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  loopback: ['127.0.0.1/8', '::1/128'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

// The native filter's bound (native/tap_filter.h kMaxTapSources); past it, ports only.
const MAX_RANGES = 64;
// Each range packed for it: family (4|6), prefix bits, 16 address bytes (IPv4 in the first 4).
const RANGE_BYTES = 18;

function parseRange(entry: string): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  const slash = entry.lastIndexOf('/');
  const text = slash === -1 ? entry : entry.slice(0, slash);
  let ip = ipaddr.parse(text);
  if (slash === -1 && ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) {
    ip = (ip as ipaddr.IPv6).toIPv4Address();
  }
  const max = ip.kind() === 'ipv6' ? 128 : 32;
  if (slash === -1) return [ip, max];
  const range = entry.slice(slash + 1);
  if (/^\d+$/.test(range)) return [ip, Number(range)];
  const bits = ipaddr.IPv4.parse(range).prefixLengthFromSubnetMask();
  if (bits === null) throw new TypeError(`invalid netmask ${range}`);
  return [ip, bits];
}

function put(out: number[], ip: ipaddr.IPv4 | ipaddr.IPv6, bits: number): void {
  const bytes = ip.toByteArray();
  const packed = new Array<number>(RANGE_BYTES).fill(0);
  packed[0] = ip.kind() === 'ipv6' ? 6 : 4;
  packed[1] = bits;
  for (let i = 0; i < bytes.length; i++) packed[2 + i] = bytes[i];
  out.push(...packed);
}

/**
 * The trusted ranges of `trustProxy` for the tap's filter; null when every source must pass
 * (`true`, a function, or more ranges than one filter holds). An IPv4-mapped IPv6 range also
 * trusts its IPv4 range, as proxy-addr matches it.
 */
export function compileSources(value: TrustProxy | undefined): Sources {
  const entries = trustEntries(value);
  if (entries === 'everyone' || entries === 'function') return null;
  const out: number[] = [];
  for (const entry of entries) {
    for (const range of KEYWORDS[entry] ?? [entry]) {
      const [ip, bits] = parseRange(range);
      put(out, ip, bits);
      if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
        put(out, (ip as ipaddr.IPv6).toIPv4Address(), bits - 96);
      }
    }
  }
  if (out.length / RANGE_BYTES > MAX_RANGES) return null;
  return Uint8Array.from(out);
}
