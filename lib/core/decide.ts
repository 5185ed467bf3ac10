// The policy: given what the kernel told us about a connection, who is the client?
// Pure (no I/O), so every branch is tested on modelled native results, including the vendor
// kernel module case that CI cannot load.
import type { NativeEndpoint, NativeToa } from '../addon/native';
import { headerInfo, type ProxyHeaderRecord } from '../proxy/header';
import { mappedIPv4 } from '../util/address';
import type { CompiledOptions } from './options';
import { isRefused, selectToa, type Refused } from './select';
import type { Endpoint, RealAddress } from './types';

/**
 * What was learnt about one connection: from the saved SYN, the ACK tap and getpeername. Shared
 * by every resolver (the SYN is read once), so options are listed with every kind any resolver
 * reads; each resolver selects with its own kinds.
 */
export interface ConnectionFacts {
  /** The SYN's IP source: the true L3 peer, whatever a kernel module makes getpeername say. */
  synPeer?: NativeEndpoint;
  /** The SYN's TOA-shaped options, in order. */
  synOptions?: readonly NativeToa[];
  /** The source and options of the handshake ACK or first data packet (packet tap). */
  ackPeer?: NativeEndpoint;
  ackOptions?: readonly NativeToa[];
  /** Which of the two the tap kept. */
  ackPacket?: 'ack' | 'data';
  /** getpeername(), asked only when a vendor TOA module may have rewritten it. */
  name?: NativeEndpoint;
  /** false when the kernel had no saved SYN for the connection (syncookies, enabled late). */
  savedSyn?: boolean;
  /** The PROXY protocol header the gate read at the connection's start (proxyProtocol option). */
  proxy?: ProxyHeaderRecord;
}

/** Which packet carried the option an answer was read from. */
export type Packet = 'syn' | 'ack' | 'data';

/** Told about options that were not believed; each call is about one packet of one connection. */
export interface DecideEvents {
  /** The packet's sender is not a trusted proxy. */
  untrusted(peer: Endpoint, option: NativeToa, packet: Packet): void;
  /** A trusted proxy's packet whose options name no client, or are ambiguous. */
  refused(peer: Endpoint, refused: Refused, packet: Packet): void;
}

/** Reports an IPv4 peer of a dual-stack socket (`::ffff:a.b.c.d`) as IPv4, as the wire had it. */
export function endpoint(e: NativeEndpoint | Endpoint): Endpoint {
  const v4 = e.family === 'IPv6' ? mappedIPv4(e.address) : undefined;
  if (v4 !== undefined) return { address: v4, port: e.port, family: 'IPv4' };
  return { address: e.address, port: e.port, family: e.family };
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.address === b.address && a.port === b.port;
}

// Plain literals, not spreads: V8 builds (and later freezes) a spread object's shape slowly,
// about 1 µs per connection.
function answer(e: Endpoint, source: RealAddress['source']): RealAddress {
  return { address: e.address, port: e.port, family: e.family, source };
}

function fromToa(toa: NativeToa, proxy: NativeEndpoint, packet: Packet): RealAddress {
  const client = endpoint(toa);
  const answer: RealAddress = {
    address: client.address,
    port: client.port,
    family: client.family,
    source: 'toa',
    proxy: endpoint(proxy),
    kind: toa.kind,
    packet,
  };
  // Alibaba VTOA also says which virtual address the client dialled (the only layout that does).
  if (toa.vip !== undefined) answer.destination = endpoint(toa.vip);
  return answer;
}

// A header names a client when its command is PROXY over IPv4 or IPv6; LOCAL (a health check),
// v1 UNKNOWN, v2 UNSPEC and AF_UNIX answer the peer, with the header beside it.
function fromHeader(h: ProxyHeaderRecord): RealAddress {
  const info = headerInfo(h);
  if (h.source === undefined) {
    return { address: h.peer.address, port: h.peer.port, family: h.peer.family, source: 'peer', proxyProtocol: info };
  }
  const client = endpoint(h.source);
  const answer: RealAddress = {
    address: client.address,
    port: client.port,
    family: client.family,
    source: 'proxy-protocol',
    proxy: { address: h.peer.address, port: h.peer.port, family: h.peer.family },
    proxyProtocol: info,
  };
  if (h.destination !== undefined) answer.destination = endpoint(h.destination);
  return answer;
}

/**
 * Precedence: the PROXY protocol header the gate read (from a peer the server trusted; it was
 * written by the proxy the connection came from, after any TOA in the packets), else a trusted TOA
 * in the SYN, else a trusted TOA in the ACK or first data packet, else a kernel module's rewrite of
 * a trusted peer, else the peer itself. A TOA's trust is checked against the IP source of the
 * packet that carried it.
 *
 * @param options the resolver's trust, kinds and `multiple`
 * @param fallback what Node knows (`socket.remoteAddress`), asked only when no packet was seen
 */
export function decide(
  facts: ConnectionFacts,
  options: CompiledOptions,
  fallback: () => Endpoint,
  events: DecideEvents,
): RealAddress {
  const { trust, kindTable, multiple } = options;
  // The gate read the header only because the server's trust covered its sender, and the bytes
  // are gone from the stream: every resolver believes it (their own trust is for TOA and the
  // kernel's rewrite). Answering the balancer instead would be no safer, only wrong.
  if (facts.proxy !== undefined) return fromHeader(facts.proxy);
  if (facts.synPeer !== undefined) {
    const syn = selectToa(facts.synOptions, kindTable, multiple);
    if (syn !== undefined) {
      const peer = endpoint(facts.synPeer);
      if (!trust(peer.address)) events.untrusted(peer, isRefused(syn) ? syn.option : syn, 'syn');
      else if (isRefused(syn)) events.refused(peer, syn, 'syn');
      else return fromToa(syn, facts.synPeer, 'syn');
    }
  }
  if (facts.ackPeer !== undefined) {
    const ack = selectToa(facts.ackOptions, kindTable, multiple);
    if (ack !== undefined) {
      const peer = endpoint(facts.ackPeer);
      const packet = facts.ackPacket ?? 'ack';
      if (!trust(peer.address)) events.untrusted(peer, isRefused(ack) ? ack.option : ack, packet);
      else if (isRefused(ack)) events.refused(peer, ack, packet);
      else return fromToa(ack, facts.ackPeer, packet);
    }
  }
  const l3Source = facts.synPeer ?? facts.ackPeer;
  if (l3Source !== undefined) {
    const l3 = endpoint(l3Source);
    if (facts.name !== undefined) {
      const name = endpoint(facts.name);
      // A vendor module rewrote getpeername. Believe it only for a trusted L3 peer; otherwise the
      // packet's own source is the answer, whatever the module was told.
      if (!sameEndpoint(name, l3) && trust(l3.address)) {
        return { address: name.address, port: name.port, family: name.family, source: 'kernel', proxy: l3 };
      }
    }
    return answer(l3, 'peer');
  }
  return answer(endpoint(fallback()), 'peer');
}
