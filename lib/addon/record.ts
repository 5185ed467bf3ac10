// Decodes the byte record the addon's readSyn() fills (layout in native/addon.cc). Formatting
// addresses here is cheaper than building strings and objects through N-API, per connection.
import type { NativeEndpoint, NativeToa } from './native';

export const RECORD_SIZE = 83;
const SYN = 1;
const PEER = 2;
const TOA = 4;
const NAME = 8;
const VIP = 16;

export interface SynRecord {
  syn: boolean;
  peer?: NativeEndpoint;
  toa?: NativeToa;
  name?: NativeEndpoint;
}

function ipv4(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** RFC 5952 text, as libuv's (and so Node's) inet_ntop writes it, dotted tail included. */
export function ipv6(b: Uint8Array, o: number): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[o + i] << 8) | b[o + i + 1]);
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestLength < 2) bestStart = -1;
  let text = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += '::';
      i += bestLength - 1;
      continue;
    }
    if (i !== 0 && i !== bestStart + bestLength) text += ':';
    // An IPv4-compatible or IPv4-mapped address ends in dotted quad, as inet_ntop writes it.
    if (i === 6 && bestStart === 0 && (bestLength === 6 || (bestLength === 5 && words[5] === 0xffff))) {
      return `${text}${ipv4(b, o + 12)}`;
    }
    text += words[i].toString(16);
  }
  return text;
}

function address(b: Uint8Array, o: number): NativeEndpoint {
  const six = b[o] === 6;
  return {
    family: six ? 'IPv6' : 'IPv4',
    address: six ? ipv6(b, o + 3) : ipv4(b, o + 3),
    port: (b[o + 1] << 8) | b[o + 2],
  };
}

export function decodeRecord(b: Uint8Array): SynRecord {
  const flags = b[0];
  const record: SynRecord = { syn: (flags & SYN) !== 0 };
  if ((flags & PEER) !== 0) record.peer = address(b, 1);
  if ((flags & TOA) !== 0) {
    const toa = address(b, 22) as NativeToa;
    toa.kind = b[20];
    toa.length = b[21];
    if ((flags & VIP) !== 0) {
      toa.vid = ((b[41] << 24) | (b[42] << 16) | (b[43] << 8) | b[44]) >>> 0;
      toa.vip = address(b, 45);
    }
    record.toa = toa;
  }
  if ((flags & NAME) !== 0) record.name = address(b, 64);
  return record;
}
