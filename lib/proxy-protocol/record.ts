// The native PROXY parser's answers as a byte record it fills in place (an object built through
// N-API cost 5-9 µs, more than the syscalls), for both of the gate's ways to a header:
// - at accept, read straight from the socket's receive queue (peekHeader: one peek, then a read of
//   exactly the header's bytes), so what follows stays in the kernel for Node's own first read: no
//   JS buffer, no unshift, no listener, no timer. Whether the header is there yet is timing (the
//   proxy writes it right after the handshake; a server with a backlog accepts later).
// - from the stream's bytes, when it was not whole at accept (nothing was taken then).
import { binding } from '../addon/binding';
import { ipv4, ipv6 } from '../addon/record';
import type { Endpoint } from '../core/types';
import type { ProxyHeader } from './header';

type Reader = (fd: number, maxSize: number) => number;
type Parser = (data: Uint8Array, maxSize: number) => number;

const L = binding?.proxyRecordLayout;
// Made at the first connection: a thread that never gates allocates nothing. A gate exists only
// where the addon loaded (attachGate refuses otherwise).
let reader: Reader | undefined;
let parser: Parser | undefined;
// Shared by both: each call's record is decoded before the next call.
let record: Uint8Array | undefined;
let bytes: Buffer;

/** What peekHeader() returns when nothing was decided or the socket broke (else a PROXY_STATUS). */
export const PEEK_UNDECIDED = -(L?.undecided ?? 1);
export const PEEK_BROKEN = -(L?.broken ?? 2);

function makeReader(): Reader {
  record ??= new Uint8Array(L!.size);
  // As long as the longest header (maxHeaderSize's bound): a peek never cuts one short.
  bytes = Buffer.allocUnsafeSlow(16 + 65535);
  return binding!.makeProxyReader(record, bytes);
}

function makeParser(): Parser {
  record ??= new Uint8Array(L!.size);
  return binding!.makeProxyParser(record);
}

/** The record parser (the stream's bytes): fills the record, returns the PROXY_STATUS. */
export function recordParser(): Parser {
  return (parser ??= makeParser());
}

/** The header length of the last ok answer. */
export function recordedLength(): number {
  const l = L!;
  const r = record!;
  return ((r[l.length] << 24) | (r[l.length + 1] << 16) | (r[l.length + 2] << 8) | r[l.length + 3]) >>> 0;
}

/**
 * Reads the header at the start of `fd` if it has arrived whole: a PROXY_STATUS (ok: taken off the
 * socket, then recordedHeader() has it), PEEK_UNDECIDED (nothing taken), or PEEK_BROKEN.
 */
export function peekHeader(fd: number, maxSize: number): number {
  return (reader ??= makeReader())(fd, maxSize);
}

/** The reason text of the last malformed or tooLarge answer (a reader's or a parser's). */
export function recordedReason(): string {
  return L!.reasons[record![L!.reason]] ?? '';
}

function at(b: Uint8Array, o: number, six: boolean): Endpoint {
  const port = (b[o + 16] << 8) | b[o + 17];
  return six ? { family: 'IPv6', address: ipv6(b, o), port } : { family: 'IPv4', address: ipv4(b, o), port };
}

/**
 * The last ok header, for the socket it came from (`peer`: its L3 peer). `data`: the bytes it was
 * parsed from; the reader's own buffer when peekHeader() took it.
 */
export function recordedHeader(peer: Endpoint, data: Uint8Array = bytes): ProxyHeader {
  const l = L!;
  const r = record!;
  const flags = r[l.flags];
  let client: Endpoint | undefined;
  let destination: Endpoint | undefined;
  if ((flags & l.flagAddresses) !== 0) {
    const six = r[l.family] === l.familyInet6;
    client = at(r, l.source, six);
    destination = at(r, l.destination, six);
  }
  return {
    peer,
    version: r[l.version] === 1 ? 1 : 2,
    command: r[l.command] === l.commandLocal ? 'LOCAL' : 'PROXY',
    client,
    destination,
    crc32c: (flags & l.flagCrc) !== 0,
    // Copied: the buffer is the next connection's, or the application's.
    bytes: (flags & l.flagTlvs) !== 0 ? Buffer.from(data.subarray(0, recordedLength())) : undefined,
    parsed: undefined,
    info: undefined,
  };
}
