// Decodes the byte record a SYN reader (makeSynReader) fills. The layout is native/record_layout.h's,
// read from the addon (`recordLayout`), so it is written down once. Formatting addresses here is
// cheaper than building strings and objects through N-API, per connection.
import { binding } from './binding';
import type { NativeRecordLayout, NativeToa } from './native';
import type { Endpoint } from '../util/endpoint';

/**
 * What the kernel told of one connection: its SYN (saved, or held by the tap under a syncookie),
 * the packet after it the tap kept, and getpeername. The options are every TOA-shaped one of the
 * kinds any resolver reads, in order; each resolver selects with its own kinds.
 */
export interface RecordFacts {
  /** false when the kernel had no saved SYN (syncookies, saving enabled late); undefined: not read. */
  savedSyn?: boolean | undefined;
  /** The SYN's IP source: the true L3 peer, whatever a kernel module makes getpeername say. */
  synPeer?: Endpoint | undefined;
  /** The SYN's TOA-shaped options, in order (present when `synPeer` is). */
  synOptions?: readonly NativeToa[] | undefined;
  /** The source and options of the handshake ACK or first data packet (the ACK tap). */
  ackPeer?: Endpoint | undefined;
  ackOptions?: readonly NativeToa[] | undefined;
  /** Which of the two the tap kept. */
  ackPacket?: 'ack' | 'data' | undefined;
  /** getpeername(), asked only when a vendor TOA module may have rewritten it. */
  name?: Endpoint | undefined;
}

// Without the addon there is no record to decode; a layout of zeros keeps the types simple.
const L: NativeRecordLayout =
  binding?.recordLayout ??
  ({ size: 0 } as NativeRecordLayout);

/** Bytes a SYN reader's record needs. */
export const RECORD_SIZE = L.size;
// The offsets as constants: read per connection, after a syscall (when the TLB is cold on hosts
// with PTI), so each costs what little it can.
const FLAGS = L.flags;
const PEER = L.peer;
const NAME = L.name;
const COUNT = L.count;
const OPTIONS = L.options;
const ACK_COUNT = L.ackCount;
const ACK_OPTIONS = L.ackOptions;
const OPTION_SIZE = L.optionSize;
const OPTION_KIND = L.optionKind;
const OPTION_LENGTH = L.optionLength;
const OPTION_LAYOUT = L.optionLayout;
const OPTION_STATUS_AT = L.optionStatus;
const OPTION_CLIENT = L.optionClient;
const OPTION_VID = L.optionVid;
const OPTION_VIP = L.optionVip;
const FLAG_SYN = L.flagSyn;
const FLAG_PEER = L.flagPeer;
const FLAG_NAME = L.flagName;
const FLAG_ACK = L.flagAck;
const FLAG_ACK_DATA = L.flagAckData;
const LAYOUT_VTOA = L.layoutVtoa;

// The peers asking are mostly a handful of proxies (or the same clients again): their text is
// made once. Keyed by the address as an int32 (a Smi, hashed cheaply). Bounded: a flood of
// distinct sources only refills it.
const IPV4_TEXT_LIMIT = 4096;
const ipv4Text = new Map<number, string>();

/** Dotted-quad text of 4 bytes at `o` (the text of frequent addresses is made once). */
export function ipv4(b: Uint8Array, o: number): string {
  const key = (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
  let text = ipv4Text.get(key);
  if (text === undefined) {
    text = `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
    if (ipv4Text.size >= IPV4_TEXT_LIMIT) ipv4Text.clear();
    ipv4Text.set(key, text);
  }
  return text;
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

function address(b: Uint8Array, o: number): Endpoint {
  const port = (b[o + 1] << 8) | b[o + 2];
  if (b[o] !== 6) return { family: 'IPv4', address: ipv4(b, o + 3), port };
  return { family: 'IPv6', address: ipv6(b, o + 3), port };
}

function option(b: Uint8Array, o: number): NativeToa {
  const c = o + OPTION_CLIENT;
  const port = (b[c + 1] << 8) | b[c + 2];
  const six = b[c] === 6;
  // One literal (one shape), not properties added one by one.
  const toa: NativeToa = {
    family: six ? 'IPv6' : 'IPv4',
    address: six ? ipv6(b, c + 3) : ipv4(b, c + 3),
    port,
    kind: b[o + OPTION_KIND],
    length: b[o + OPTION_LENGTH],
    layout: b[o + OPTION_LAYOUT],
    status: b[o + OPTION_STATUS_AT],
  };
  if (toa.layout === LAYOUT_VTOA) {
    const v = o + OPTION_VID;
    toa.vid = ((b[v] << 24) | (b[v + 1] << 16) | (b[v + 2] << 8) | b[v + 3]) >>> 0;
    toa.vip = address(b, o + OPTION_VIP);
  }
  return toa;
}

// Most SYNs hold no TOA-shaped option: one shared empty list, not a fresh one per connection.
const NO_OPTIONS: readonly NativeToa[] = Object.freeze([]);

function options(b: Uint8Array, at: number, first: number): readonly NativeToa[] {
  const count = b[at];
  if (count === 0) return NO_OPTIONS;
  if (count === 1) return [option(b, first)]; // what a proxy sends: no growing array
  const list: NativeToa[] = [];
  for (let i = 0; i < count; i++) list.push(option(b, first + i * OPTION_SIZE));
  return list;
}

/** Writes what the record says into `into` (the resolver's facts keep their shape) and returns it. */
export function decodeRecord(b: Uint8Array, into: RecordFacts = {}): RecordFacts {
  const flags = b[FLAGS];
  into.savedSyn = (flags & FLAG_SYN) !== 0;
  const peerKnown = (flags & (FLAG_PEER | FLAG_ACK)) !== 0;
  const peer = peerKnown ? address(b, PEER) : undefined;
  if ((flags & FLAG_PEER) !== 0) {
    into.synPeer = peer;
    into.synOptions = options(b, COUNT, OPTIONS);
  }
  if ((flags & FLAG_ACK) !== 0) {
    into.ackPeer = peer;
    into.ackOptions = options(b, ACK_COUNT, ACK_OPTIONS);
    into.ackPacket = (flags & FLAG_ACK_DATA) !== 0 ? 'data' : 'ack';
  }
  if ((flags & FLAG_NAME) !== 0) into.name = address(b, NAME);
  return into;
}
