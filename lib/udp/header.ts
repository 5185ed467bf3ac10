// The native datagram header parser (native/dgram_header.h: SPP, PROXY v2 over UDP) and the byte
// record it fills in place: one N-API call per datagram that may hold a header, no object.
import { binding } from '../addon/binding';
import type { NativeDgramRecordLayout } from '../addon/udp-native';
import { ipv4, ipv6 } from '../addon/record';
import type { Endpoint } from '../core/types';

type Parser = (data: Uint8Array, formats: number, maxSize: number) => number;

/** What a datagram starts with (native/dgram_header.h DgramKind). */
export const DGRAM = Object.freeze({
  none: 0,
  spp: 1,
  proxy: 2,
  /** a whole PROXY v2 header naming no client (LOCAL, UNSPEC, AF_UNIX) */
  proxyLocal: 3,
  malformed: 4,
  tooLarge: 5,
});

const L: NativeDgramRecordLayout | undefined = binding?.dgramRecordLayout;

/** Format bits for parse(). */
export const FORMAT_SPP = L?.formatSpp ?? 1;
export const FORMAT_PROXY = L?.formatProxy ?? 2;

let parser: Parser | null | undefined;
let record: Uint8Array;

function makeParser(): Parser | null {
  const native = binding;
  if (native === null || L === undefined) return null;
  record = new Uint8Array(L.size);
  return native.makeDgramParser(record);
}

/** Whether the parser is here (the addon loaded: else UDP headers cannot be read). */
export function dgramParserAvailable(): boolean {
  return (parser ??= makeParser()) !== null;
}

/**
 * Parses the header at the start of `data` for the `formats` bits: a DGRAM kind, the record filled.
 * Call dgramParserAvailable() first.
 */
export function parseDgram(data: Uint8Array, formats: number, maxSize: number): number {
  return parser!(data, formats, maxSize);
}

/** The header's length, of the last spp / proxy / proxyLocal answer. */
export function recordedLength(): number {
  const o = L!.length;
  return ((record[o] << 24) | (record[o + 1] << 16) | (record[o + 2] << 8) | record[o + 3]) >>> 0;
}

function endpoint(o: number, six: boolean): Endpoint {
  const port = (record[o + 16] << 8) | record[o + 17];
  return six ? { address: ipv6(record, o), port, family: 'IPv6' } : { address: ipv4(record, o), port, family: 'IPv4' };
}

/** The client of the last spp / proxy answer. */
export function recordedClient(): Endpoint {
  return endpoint(L!.client, record[L!.clientV6] === 1);
}

/** The other address of the last spp / proxy answer: SPP's proxy field, PROXY's destination. */
export function recordedOther(): Endpoint {
  return endpoint(L!.other, record[L!.otherV6] === 1);
}

/** The reason text of the last malformed / tooLarge answer. */
export function recordedReason(): string {
  return L!.reasons[record[L!.reason]] ?? '';
}
