// Decodes the byte record the addon's readSyn() fills. The layout is native/record_layout.h's,
// read from the addon (`recordLayout`), so it is written down once. Formatting addresses here is
// cheaper than building strings and objects through N-API, per connection.
import { binding } from './binding';
import type { NativeEndpoint, NativeRecordLayout, NativeToa } from './native';

export interface SynRecord {
  syn: boolean;
  peer?: NativeEndpoint;
  /** The TOA-shaped options of the SYN, in order; present when `peer` is. */
  options?: readonly NativeToa[];
  name?: NativeEndpoint;
}

// Without the addon there is no record to decode; a layout of zeros keeps the types simple.
const L: NativeRecordLayout =
  binding?.recordLayout ??
  ({ size: 0 } as NativeRecordLayout);

/** Bytes readSyn() needs. */
export const RECORD_SIZE = L.size;

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

function option(b: Uint8Array, o: number): NativeToa {
  const toa = address(b, o + L.optionClient) as NativeToa;
  toa.kind = b[o + L.optionKind];
  toa.length = b[o + L.optionLength];
  toa.layout = b[o + L.optionLayout];
  toa.status = b[o + L.optionStatus];
  if (toa.layout === L.layoutVtoa) {
    const v = o + L.optionVid;
    toa.vid = ((b[v] << 24) | (b[v + 1] << 16) | (b[v + 2] << 8) | b[v + 3]) >>> 0;
    toa.vip = address(b, o + L.optionVip);
  }
  return toa;
}

// Most SYNs hold no TOA-shaped option: one shared empty list, not a fresh one per connection.
const NO_OPTIONS: readonly NativeToa[] = Object.freeze([]);

export function decodeRecord(b: Uint8Array): SynRecord {
  const flags = b[L.flags];
  const record: SynRecord = { syn: (flags & L.flagSyn) !== 0 };
  if ((flags & L.flagPeer) !== 0) {
    record.peer = address(b, L.peer);
    const count = b[L.count];
    if (count === 0) {
      record.options = NO_OPTIONS;
    } else {
      const options: NativeToa[] = [];
      for (let i = 0; i < count; i++) options.push(option(b, L.options + i * L.optionSize));
      record.options = options;
    }
  }
  if ((flags & L.flagName) !== 0) record.name = address(b, L.name);
  return record;
}
