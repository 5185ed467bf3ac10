// The policy: given what the kernel told us about a connection, who is the client?
// Pure (no I/O), so every branch is tested on modelled native results, including the vendor
// kernel module case that CI cannot load.
import type { NativeEndpoint, NativeToa } from '../addon/native';
import type { TrustFn } from './trust';
import type { Endpoint, RealAddress } from './types';

/** What was learnt about one connection: from the saved SYN, the ACK tap and getpeername. */
export interface ConnectionFacts {
  /** The SYN's IP source: the true L3 peer, whatever a kernel module makes getpeername say. */
  synPeer?: NativeEndpoint;
  synToa?: NativeToa;
  /** The source and TOA of the handshake ACK or first data packet (packet tap). */
  ackPeer?: NativeEndpoint;
  ackToa?: NativeToa;
  /** getpeername(), asked only when a vendor TOA module may have rewritten it. */
  name?: NativeEndpoint;
}

const MAPPED_PREFIX = '::ffff:';

/** Reports an IPv4 peer of a dual-stack socket (`::ffff:a.b.c.d`) as IPv4, as the wire had it. */
export function endpoint(e: NativeEndpoint | Endpoint): Endpoint {
  if (e.family === 'IPv6' && e.address.startsWith(MAPPED_PREFIX) && e.address.includes('.', 7)) {
    return { address: e.address.slice(MAPPED_PREFIX.length), port: e.port, family: 'IPv4' };
  }
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

function fromToa(toa: NativeToa, proxy: NativeEndpoint): RealAddress {
  const client = endpoint(toa);
  return {
    address: client.address,
    port: client.port,
    family: client.family,
    source: 'toa',
    proxy: endpoint(proxy),
    kind: toa.kind,
  };
}

/**
 * Precedence: a trusted TOA in the SYN, else a trusted TOA in the ACK or first data packet, else
 * a kernel module's rewrite of a trusted peer, else the peer itself. Trust is always checked
 * against the IP source of the packet that carried the option.
 *
 * @param fallback what Node knows (`socket.remoteAddress`), asked only when no packet was seen
 * @param onUntrusted told about an option that was ignored because its sender is not trusted
 */
export function decide(
  facts: ConnectionFacts,
  fallback: () => Endpoint,
  trust: TrustFn,
  onUntrusted: (peer: Endpoint, toa: NativeToa) => void,
): RealAddress {
  if (facts.synToa !== undefined && facts.synPeer !== undefined) {
    const peer = endpoint(facts.synPeer);
    if (trust(peer.address)) return fromToa(facts.synToa, facts.synPeer);
    onUntrusted(peer, facts.synToa);
  }
  if (facts.ackToa !== undefined && facts.ackPeer !== undefined) {
    const peer = endpoint(facts.ackPeer);
    if (trust(peer.address)) return fromToa(facts.ackToa, facts.ackPeer);
    onUntrusted(peer, facts.ackToa);
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
