// Counters an operator graphs: what the first resolution of each connection found, per listening
// port and summed, and what the PROXY gate and the UDP sockets saw. metrics() builds the objects
// from them, so a scrape costs a few hundred reads.
import type { Packet } from './decide';
import type { RealAddress, RefusedReason } from './types';

/**
 * PROXY protocol headers read by the gate (enable/listen/install with `proxyProtocol`), per
 * connection: `headers` PROXY headers read, `local` LOCAL or address-less ones (health checks),
 * and the connections closed for a `malformed` (or bad CRC32c) header, one larger than
 * `maxHeaderSize` (`tooLarge`), one not complete within `timeout`, or none where one is required
 * (`missing`).
 */
export interface ProxyProtocolCounts {
  headers: number;
  local: number;
  malformed: number;
  tooLarge: number;
  timeout: number;
  missing: number;
}

/** What the gate counts of a connection: a header read, or why the connection was closed. */
export type ProxyOutcome = keyof ProxyProtocolCounts;

/** Why the gate closed a connection from a trusted proxy (as RefusedReason is why a TOA was not believed). */
export type ProxyRefusedReason = Exclude<ProxyOutcome, 'headers' | 'local'>;

/**
 * UDP sockets given to enable() (or NODE_TOA_UDP): `flows` learned from a trusted proxy's header
 * by the header's kind (again when a flow's client changes), `datagrams` delivered by the source
 * of their rinfo, `dropped` datagrams from a trusted proxy by reason (a `malformed` or `tooLarge`
 * header, or none where one is required: `missing`), `refused.untrusted` header-shaped datagrams
 * from a sender not trusted (delivered as data), and `consumed` UOA empty-payload datagrams.
 */
export interface UdpCounts {
  flows: { spp: number; 'proxy-protocol': number; uoa: number };
  datagrams: { spp: number; 'proxy-protocol': number; uoa: number; peer: number };
  dropped: { malformed: number; tooLarge: number; missing: number };
  refused: { untrusted: number };
  consumed: number;
}

export interface MetricCounts {
  /** Connections resolved (the first realRemoteAddress() of each; in-memory sockets not counted). */
  connections: number;
  /** By answer: read from a TOA, a vendor module's rewrite, a PROXY header, or the peer itself. */
  bySource: Record<RealAddress['source'], number>;
  /** Answers read from an option, by the packet that carried it. */
  byPacket: Record<Packet, number>;
  /** Answers read from an option, by its TCP option kind. */
  byKind: Record<string, number>;
  /** Connections with options that were not believed, by reason (a connection counts once per reason). */
  refused: Record<RefusedReason, number>;
  /** Connections the kernel had no saved SYN for: syncookies (a SYN flood), or saving enabled late. */
  noSavedSyn: number;
  /** What the PROXY protocol gate found, counted as connections arrive (not at resolution). */
  proxyProtocol: ProxyProtocolCounts;
  /** What the UDP sockets' datagrams carried (per local port under `ports`). */
  udp: UdpCounts;
}

function zeroUdp(): UdpCounts {
  return {
    flows: { spp: 0, 'proxy-protocol': 0, uoa: 0 },
    datagrams: { spp: 0, 'proxy-protocol': 0, uoa: 0, peer: 0 },
    dropped: { malformed: 0, tooLarge: 0, missing: 0 },
    refused: { untrusted: 0 },
    consumed: 0,
  };
}

function zeroProxy(): ProxyProtocolCounts {
  return { headers: 0, local: 0, malformed: 0, tooLarge: 0, timeout: 0, missing: 0 };
}

/** Bits of the reasons one connection was refused for. */
export const REASON_BIT: Record<RefusedReason, number> = { untrusted: 1, ambiguous: 2, malformed: 4, tfoCookie: 8 };
const REASONS = Object.keys(REASON_BIT) as RefusedReason[];

// What the first resolution of each connection found is counted per port in one array of numbers,
// not in nested objects: the count is made on every connection's first read, right after a system
// call (which, on hosts with PTI and no PCID, emptied the TLB), so each object it touches costs a
// miss. metrics() builds the objects; the sum of the ports is the total.
const CONNECTIONS_AT = 0;
const SOURCE_AT: Record<RealAddress['source'], number> = { toa: 1, kernel: 2, 'proxy-protocol': 3, peer: 4 };
const PACKET_AT: Record<Packet, number> = { syn: 5, ack: 6, data: 7 };
const REFUSED_AT = 8; // + the reason's index in REASONS
const NO_SAVED_SYN_AT = 12;
const KIND_AT = 13; // + the kind (0-255)
const RESOLUTION_SLOTS = KIND_AT + 256;

/** The counts of one listening port. */
interface PortCounts {
  resolutions: Float64Array;
  proxyProtocol: ProxyProtocolCounts;
  udp: UdpCounts;
}

/** What the gate and the UDP sockets counted, summed over ports as they count (not per connection). */
const totals = { proxyProtocol: zeroProxy(), udp: zeroUdp() };
const byPort = new Map<number, PortCounts>();
// At most this many ports are counted apart (a process has a handful of listeners); more are
// summed under port 0 so that the map stays bounded.
const MAX_PORTS = 256;

/**
 * Where the first resolutions of `port`'s connections are counted (count()); a caller that
 * resolves many connections of one server keeps it.
 */
export function resolutionCounts(port: number): Float64Array {
  return portCounts(port).resolutions;
}

/**
 * Counts the first resolution of one connection into `counts` (resolutionCounts()): its answer's
 * source, packet and kind (as plain values, so the preload's fast path passes no object), the
 * refusal bits, and whether the kernel had its SYN.
 */
export function count(
  counts: Float64Array,
  source: RealAddress['source'],
  packet: Packet | undefined,
  kind: number | undefined,
  reasons: number,
  savedSyn: boolean,
): void {
  counts[CONNECTIONS_AT]++;
  counts[SOURCE_AT[source]]++;
  if (packet !== undefined) counts[PACKET_AT[packet]]++;
  if (kind !== undefined) counts[KIND_AT + (kind & 255)]++;
  if (reasons !== 0) for (let i = 0; i < REASONS.length; i++) if ((reasons & REASON_BIT[REASONS[i]]) !== 0) counts[REFUSED_AT + i]++;
  if (!savedSyn) counts[NO_SAVED_SYN_AT]++;
}

function portCounts(port: number): PortCounts {
  let m = byPort.get(port);
  if (m === undefined) {
    if (byPort.size >= MAX_PORTS) m = byPort.get(0);
    if (m === undefined) {
      m = { resolutions: new Float64Array(RESOLUTION_SLOTS), proxyProtocol: zeroProxy(), udp: zeroUdp() };
      byPort.set(byPort.size >= MAX_PORTS ? 0 : port, m);
    }
  }
  return m;
}

/** Counts one connection's PROXY header outcome (the gate's), on `port` and in the total. */
export function countProxy(port: number, outcome: ProxyOutcome): void {
  totals.proxyProtocol[outcome]++;
  portCounts(port).proxyProtocol[outcome]++;
}

/** The UDP counts a socket bound to `port` adds to: the total's and the port's (held by the socket, not looked up per datagram). */
export function udpCounts(port: number): [UdpCounts, UdpCounts] {
  return [totals.udp, portCounts(port).udp];
}

/** The public shape of resolution counts, with the gate's and the UDP sockets' counts beside them. */
function counts(r: Float64Array, proxyProtocol: ProxyProtocolCounts, udp: UdpCounts): MetricCounts {
  const byKind: Record<string, number> = {};
  for (let kind = 0; kind < 256; kind++) if (r[KIND_AT + kind] !== 0) byKind[kind] = r[KIND_AT + kind];
  const refused = {} as Record<RefusedReason, number>;
  REASONS.forEach((reason, i) => (refused[reason] = r[REFUSED_AT + i]));
  const bySource = {} as Record<RealAddress['source'], number>;
  for (const [source, at] of Object.entries(SOURCE_AT)) bySource[source as RealAddress['source']] = r[at];
  const byPacket = {} as Record<Packet, number>;
  for (const [packet, at] of Object.entries(PACKET_AT)) byPacket[packet as Packet] = r[at];
  return {
    connections: r[CONNECTIONS_AT],
    bySource,
    byPacket,
    byKind,
    refused,
    noSavedSyn: r[NO_SAVED_SYN_AT],
    proxyProtocol: { ...proxyProtocol },
    udp: {
      flows: { ...udp.flows },
      datagrams: { ...udp.datagrams },
      dropped: { ...udp.dropped },
      refused: { ...udp.refused },
      consumed: udp.consumed,
    },
  };
}

export function snapshot(): { total: MetricCounts; ports: Record<string, MetricCounts> } {
  const ports: Record<string, MetricCounts> = {};
  const sum = new Float64Array(RESOLUTION_SLOTS);
  for (const [port, m] of byPort) {
    ports[port] = counts(m.resolutions, m.proxyProtocol, m.udp);
    for (let i = 0; i < RESOLUTION_SLOTS; i++) sum[i] += m.resolutions[i];
  }
  return { total: counts(sum, totals.proxyProtocol, totals.udp), ports };
}

/** Connections whose options were not believed, by reason, over every port (stats()). */
export function refusedTotal(): Record<RefusedReason, number> {
  const refused = {} as Record<RefusedReason, number>;
  REASONS.forEach((reason, i) => {
    refused[reason] = 0;
    for (const m of byPort.values()) refused[reason] += m.resolutions[REFUSED_AT + i];
  });
  return refused;
}

/** PROXY headers read, and connections closed for theirs, over every port (stats()). */
export function proxyProtocolTotal(): ProxyProtocolCounts {
  return { ...totals.proxyProtocol };
}
