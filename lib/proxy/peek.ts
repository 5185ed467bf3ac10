// The gate's first try on a connection: the header read straight from the socket's receive queue
// at accept time, by one peek and one read of exactly the header's bytes, so whatever followed it
// stays in the kernel for Node's own first read (no JS buffer, no unshift, no listener, no timer).
// Under load the header is usually there already: a proxy writes it with, or right after, the
// handshake. When it is not (or is not whole yet), nothing was taken and the gate reads the stream.
import { binding } from '../addon/binding';
import type { NativeEndpoint } from '../addon/native';
import { ipv4, ipv6 } from '../addon/record';
import type { Endpoint } from '../core/types';
import type { ProxyHeaderRecord } from './header';

type Reader = (fd: number, maxSize: number) => number;

const L = binding?.proxyRecordLayout;
// Made at the first connection: a thread that never gates allocates nothing.
let reader: Reader | null | undefined;
let record: Uint8Array;
let bytes: Buffer;

/** What peekHeader() returns when nothing was decided or the socket broke (else a PROXY_STATUS). */
export const PEEK_UNDECIDED = -(L?.undecided ?? 1);
export const PEEK_BROKEN = -(L?.broken ?? 2);

function makeReader(): Reader | null {
  const native = binding;
  if (native === null || L === undefined || typeof native.makeProxyReader !== 'function') return null;
  record = new Uint8Array(L.size);
  // As long as the longest header (maxHeaderSize's bound): a peek never cuts one short.
  bytes = Buffer.allocUnsafeSlow(16 + 65535);
  return native.makeProxyReader(record, bytes);
}

/**
 * Reads the header at the start of `fd` if it has arrived whole: a PROXY_STATUS (ok: taken off the
 * socket, then peekedRecord() has it), PEEK_UNDECIDED (nothing taken), or PEEK_BROKEN.
 */
export function peekHeader(fd: number, maxSize: number): number {
  const read = (reader ??= makeReader());
  return read === null ? PEEK_UNDECIDED : read(fd, maxSize);
}

/** The reason text of the last peekHeader()'s malformed or tooLarge answer. */
export function peekedReason(): string {
  return L!.reasons[record[L!.reason]] ?? '';
}

function at(b: Uint8Array, o: number, six: boolean): NativeEndpoint {
  const port = (b[o + 16] << 8) | b[o + 17];
  return six ? { family: 'IPv6', address: ipv6(b, o), port } : { family: 'IPv4', address: ipv4(b, o), port };
}

/** The last peekHeader()'s ok header, for the socket it came from (`peer`: its L3 peer). */
export function peekedRecord(peer: Endpoint): ProxyHeaderRecord {
  const l = L!;
  const r = record;
  const flags = r[l.flags];
  let source: NativeEndpoint | undefined;
  let destination: NativeEndpoint | undefined;
  if ((flags & l.flagAddresses) !== 0) {
    const six = r[l.family] === l.familyInet6;
    source = at(r, l.source, six);
    destination = at(r, l.destination, six);
  }
  const length = ((r[l.length] << 24) | (r[l.length + 1] << 16) | (r[l.length + 2] << 8) | r[l.length + 3]) >>> 0;
  return {
    peer,
    version: r[l.version] === 1 ? 1 : 2,
    command: r[l.command] === l.commandLocal ? 'LOCAL' : 'PROXY',
    source,
    destination,
    crc32c: (flags & l.flagCrc) !== 0,
    // Copied: the buffer is the next connection's.
    bytes: (flags & l.flagTlvs) !== 0 ? Buffer.from(bytes.subarray(0, length)) : undefined,
    parsed: undefined,
    info: undefined,
  };
}
