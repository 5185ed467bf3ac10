// Counters an operator graphs: what the first resolution of each connection found, per listening
// port and summed. Plain numbers on plain objects, incremented once per connection; metrics()
// copies them, so a scrape costs a few hundred property reads.
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

function zero(): MetricCounts {
  return {
    connections: 0,
    bySource: { toa: 0, kernel: 0, 'proxy-protocol': 0, peer: 0 },
    byPacket: { syn: 0, ack: 0, data: 0 },
    byKind: {},
    refused: { untrusted: 0, ambiguous: 0, malformed: 0, tfoCookie: 0 },
    noSavedSyn: 0,
    proxyProtocol: { headers: 0, local: 0, malformed: 0, tooLarge: 0, timeout: 0, missing: 0 },
    udp: zeroUdp(),
  };
}

/** Bits of the reasons one connection was refused for. */
export const REASON_BIT: Record<RefusedReason, number> = { untrusted: 1, ambiguous: 2, malformed: 4, tfoCookie: 8 };
const REASONS = Object.keys(REASON_BIT) as RefusedReason[];

export const total: MetricCounts = zero();
const byPort = new Map<number, MetricCounts>();
// At most this many ports are counted apart (a process has a handful of listeners); more are
// summed under port 0 so that the map stays bounded.
const MAX_PORTS = 256;

function add(
  m: MetricCounts,
  source: RealAddress['source'],
  packet: Packet | undefined,
  kind: number | undefined,
  reasons: number,
  savedSyn: boolean,
): void {
  m.connections++;
  m.bySource[source]++;
  if (packet !== undefined) m.byPacket[packet]++;
  if (kind !== undefined) m.byKind[kind] = (m.byKind[kind] ?? 0) + 1;
  if (reasons !== 0) for (const r of REASONS) if ((reasons & REASON_BIT[r]) !== 0) m.refused[r]++;
  if (!savedSyn) m.noSavedSyn++;
}

/**
 * Counts the first resolution of one connection: its answer's source, packet and kind (as plain
 * values, so the preload's fast path passes no object), the refusal bits, and whether the kernel
 * had its SYN. `port` is its server's listening port, or 0.
 */
export function count(
  port: number,
  source: RealAddress['source'],
  packet: Packet | undefined,
  kind: number | undefined,
  reasons: number,
  savedSyn: boolean,
): void {
  add(total, source, packet, kind, reasons, savedSyn);
  add(portCounts(port), source, packet, kind, reasons, savedSyn);
}

function portCounts(port: number): MetricCounts {
  let m = byPort.get(port);
  if (m === undefined) {
    if (byPort.size >= MAX_PORTS) m = byPort.get(0);
    if (m === undefined) byPort.set(byPort.size >= MAX_PORTS ? 0 : port, (m = zero()));
  }
  return m;
}

/** Counts one connection's PROXY header outcome (the gate's), on `port` and in the total. */
export function countProxy(port: number, outcome: ProxyOutcome): void {
  total.proxyProtocol[outcome]++;
  portCounts(port).proxyProtocol[outcome]++;
}

/** The UDP counts a socket bound to `port` adds to: the total's and the port's (held by the socket, not looked up per datagram). */
export function udpCounts(port: number): [UdpCounts, UdpCounts] {
  return [total.udp, portCounts(port).udp];
}

function copy(m: MetricCounts): MetricCounts {
  return {
    connections: m.connections,
    bySource: { ...m.bySource },
    byPacket: { ...m.byPacket },
    byKind: { ...m.byKind },
    refused: { ...m.refused },
    noSavedSyn: m.noSavedSyn,
    proxyProtocol: { ...m.proxyProtocol },
    udp: {
      flows: { ...m.udp.flows },
      datagrams: { ...m.udp.datagrams },
      dropped: { ...m.udp.dropped },
      refused: { ...m.udp.refused },
      consumed: m.udp.consumed,
    },
  };
}

export function snapshot(): { total: MetricCounts; ports: Record<string, MetricCounts> } {
  const ports: Record<string, MetricCounts> = {};
  for (const [port, m] of byPort) ports[port] = copy(m);
  return { total: copy(total), ports };
}
