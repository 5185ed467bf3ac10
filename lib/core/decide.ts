// The policy: given what the kernel told us about a connection, who is the client? One rule,
// compiled per resolver (compileDecide, as proxy-addr's compile() specialises its trust): every
// answer, the commonest included, comes from it. Pure (no I/O), so every branch is tested on
// modelled native results, including the vendor kernel module case that CI cannot load.
import type { NativeToa } from '../addon/native';
import type { RecordFacts } from '../addon/record';
import { mappedIPv4 } from '../util/address';
import type { CompiledOptions } from './options';
import { isRefused, selectToa, type RefusedPacket } from './select';
import type { Endpoint, ProxyProtocolInfo, RealAddress } from './types';

/** A PROXY protocol header the gate read, as the policy sees it. */
export interface HeaderFacts {
  /** The L3 peer that sent it (IPv4-mapped addresses written as IPv4). */
  readonly peer: Endpoint;
  /** The client and the address it connected to: PROXY over IPv4 or IPv6 only. */
  readonly client: Endpoint | undefined;
  readonly destination: Endpoint | undefined;
  readonly info: ProxyProtocolInfo;
}

/**
 * What was learnt about one connection: from the saved SYN, the ACK tap and getpeername, and the
 * PROXY header the gate read. Shared by every resolver (the SYN is read once), so options are
 * listed with every kind any resolver reads; each resolver selects with its own kinds.
 */
export interface ConnectionFacts extends RecordFacts {
  header?: HeaderFacts;
}

/** Which packet carried the option an answer was read from. */
export type Packet = 'syn' | 'ack' | 'data';

/** Told about options that were not believed; each call is about one packet of one connection. */
export interface DecideEvents {
  /** The packet's sender is not a trusted proxy. */
  untrusted(peer: Endpoint, option: NativeToa, packet: Packet): void;
  /** A trusted proxy's packet whose options name no client, or are ambiguous. */
  refused(peer: Endpoint, refused: RefusedPacket, packet: Packet): void;
}

/**
 * A compiled policy: the answer for `facts`; `fallback(socket)` (what Node knows,
 * `socket.remoteAddress`) is asked only when no packet was seen.
 */
export type Decide = (
  facts: ConnectionFacts,
  socket: object,
  fallback: (socket: object) => Endpoint,
  events: DecideEvents,
) => RealAddress;

/** Reports an IPv4 peer of a dual-stack socket (`::ffff:a.b.c.d`) as IPv4, as the wire had it. */
export function endpoint(e: Endpoint): Endpoint {
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

/** answer(endpoint(e), 'peer') with one object made, not two: the commonest answer. */
function peerAnswer(e: Endpoint): RealAddress {
  const v4 = e.family === 'IPv6' ? mappedIPv4(e.address) : undefined;
  if (v4 !== undefined) return { address: v4, port: e.port, family: 'IPv4', source: 'peer' };
  return { address: e.address, port: e.port, family: e.family, source: 'peer' };
}

function fromToa(toa: NativeToa, proxy: Endpoint, packet: Packet): RealAddress {
  const client = endpoint(toa);
  const answer: RealAddress = {
    address: client.address,
    port: client.port,
    family: client.family,
    source: 'toa',
    proxy,
    kind: toa.kind,
    packet,
  };
  // Alibaba VTOA also says which virtual address the client dialled (the only layout that does).
  if (toa.vip !== undefined) answer.destination = endpoint(toa.vip);
  return answer;
}

// A header names a client when its command is PROXY over IPv4 or IPv6; LOCAL (a health check),
// v1 UNKNOWN, v2 UNSPEC and AF_UNIX answer the peer, with the header beside it.
function fromHeader(h: HeaderFacts): RealAddress {
  if (h.client === undefined) {
    return { address: h.peer.address, port: h.peer.port, family: h.peer.family, source: 'peer', proxyProtocol: h.info };
  }
  const client = endpoint(h.client);
  const answer: RealAddress = {
    address: client.address,
    port: client.port,
    family: client.family,
    source: 'proxy-protocol',
    proxy: { address: h.peer.address, port: h.peer.port, family: h.peer.family },
    proxyProtocol: h.info,
  };
  if (h.destination !== undefined) answer.destination = endpoint(h.destination);
  return answer;
}

/**
 * Compiles the policy for one resolver's trust, kinds and `multiple`. Precedence: the PROXY
 * protocol header the gate read (from a peer the server trusted; it was written by the proxy the
 * connection came from, after any TOA in the packets), else a trusted TOA in the SYN, else a
 * trusted TOA in the ACK or first data packet, else a kernel module's rewrite of a trusted peer,
 * else the peer itself. A TOA's trust is checked against the IP source of the packet that carried
 * it.
 */
export function compileDecide(options: CompiledOptions): Decide {
  const { trust, kindTable, multiple } = options;

  /** The client one packet names, or undefined (a refusal is reported). */
  function fromPacket(
    sender: Endpoint,
    list: readonly NativeToa[] | undefined,
    packet: Packet,
    events: DecideEvents,
  ): RealAddress | undefined {
    // Most packets hold no TOA-shaped option: no selection, no trust asked.
    if (list === undefined || list.length === 0) return undefined;
    const chosen = selectToa(list, kindTable, multiple);
    if (chosen === undefined) return undefined;
    const peer = endpoint(sender);
    if (!trust(peer.address)) events.untrusted(peer, isRefused(chosen) ? chosen.option : chosen, packet);
    else if (isRefused(chosen)) events.refused(peer, chosen, packet);
    else return fromToa(chosen, peer, packet);
    return undefined;
  }

  return function decide(facts, socket, fallback, events) {
    // The gate read the header only because the server's trust covered its sender, and the bytes
    // are gone from the stream: every resolver believes it (their own trust is for TOA and the
    // kernel's rewrite). Answering the balancer instead would be no safer, only wrong.
    if (facts.header !== undefined) return fromHeader(facts.header);
    if (facts.synPeer !== undefined) {
      const found = fromPacket(facts.synPeer, facts.synOptions, 'syn', events);
      if (found !== undefined) return found;
    }
    if (facts.ackPeer !== undefined) {
      const found = fromPacket(facts.ackPeer, facts.ackOptions, facts.ackPacket ?? 'ack', events);
      if (found !== undefined) return found;
    }
    const l3Source = facts.synPeer ?? facts.ackPeer;
    if (l3Source === undefined) return peerAnswer(fallback(socket));
    if (facts.name === undefined) return peerAnswer(l3Source);
    const l3 = endpoint(l3Source);
    const name = endpoint(facts.name);
    // A vendor module rewrote getpeername. Believe it only for a trusted L3 peer; otherwise the
    // packet's own source is the answer, whatever the module was told.
    if (!sameEndpoint(name, l3) && trust(l3.address)) {
      return { address: name.address, port: name.port, family: name.family, source: 'kernel', proxy: l3 };
    }
    return answer(l3, 'peer');
  };
}
