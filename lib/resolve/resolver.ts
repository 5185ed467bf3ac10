// socket -> fd -> one native call (facts.ts) -> the compiled policy (core/decide.ts) -> cache. The
// first resolution of each connection is also counted (metrics) and, when someone listens,
// published on the `node-toa:resolve` diagnostics channel.
import { channel } from 'node:diagnostics_channel';
import { compileDecide, type ConnectionFacts, type Decide, type DecideEvents, type Packet } from '../core/decide';
import { REASON_BIT, count, resolutionCounts } from '../core/metrics';
import type { CompiledOptions } from '../core/options';
import type { TrustFn } from '../core/trust';
import type { Endpoint, RealAddress, RefusedReason } from '../core/types';
import { socketFd } from '../util/socket-fd';
import { typeName } from '../util/show';
import { listeningPort } from '../util/server-like';
import { warnAmbiguous, warnUntrustedPeer } from '../util/warnings';
import { factsOf, readFacts, type SocketFacts } from './facts';

/** One option that was not believed, as `node-toa:resolve` subscribers see it. */
export interface RefusedOption {
  reason: RefusedReason;
  packet: Packet;
  /** The sender of the packet (its IP source). */
  from: Endpoint;
  kind: number;
  /** TOA-shaped options in the packet (for `ambiguous`). */
  count: number;
}

/** What `node-toa:resolve` subscribers receive, once per connection. */
export interface ResolveMessage {
  socket: object;
  answer: RealAddress;
  /** The listening port of the socket's server; 0 when it has none. */
  port: number;
  refused: RefusedOption[];
}

const resolveChannel = channel('node-toa:resolve');

// What decide() reported during the current call (decide is synchronous): the reasons as bits for
// the counters, and, only while someone subscribes, the details.
let reasons = 0;
let details: RefusedOption[] | null = null;

const events: DecideEvents = {
  untrusted(peer, option, packet) {
    warnUntrustedPeer(peer.address, option.kind);
    reasons |= REASON_BIT.untrusted;
    if (details !== null) details.push({ reason: 'untrusted', packet, from: peer, kind: option.kind, count: 1 });
  },
  refused(peer, refused, packet) {
    if (refused.reason === 'ambiguous') warnAmbiguous(peer.address, refused.count);
    reasons |= REASON_BIT[refused.reason];
    if (details !== null) {
      details.push({ reason: refused.reason, packet, from: peer, kind: refused.option.kind, count: refused.count });
    }
  },
};

interface ResolvedSocket {
  [answer: symbol]: RealAddress | undefined;
  remoteAddress?: string;
  remotePort?: number;
  remoteFamily?: string;
  server?: unknown;
}

/** Node's own peer name of a socket (its getters: one getpeername the first time). */
function nodePeer(socket: object): Endpoint {
  const s = socket as ResolvedSocket;
  const address = typeof s.remoteAddress === 'string' ? s.remoteAddress : '';
  const family = s.remoteFamily === 'IPv6' || address.includes(':') ? 'IPv6' : 'IPv4';
  return { address, port: typeof s.remotePort === 'number' ? s.remotePort : 0, family };
}

export class Resolver {
  // The answers of every resolver but the first to decide for a connection (that one's answer is
  // kept in the connection's facts).
  private readonly key = Symbol('node-toa.answer');
  private readonly decide: Decide;

  constructor(private readonly options: CompiledOptions) {
    this.decide = compileDecide(options);
  }

  /** Whom this resolver believes. */
  get trust(): TrustFn {
    return this.options.trust;
  }

  /** The client of `socket` (any stream with a TCP socket under it); cached per resolver. */
  resolve(socket: object): RealAddress {
    if (typeof socket !== 'object' || socket === null) {
      throw new TypeError(`socket must be a net.Socket, got ${typeName(socket)}`);
    }
    const s = socket as ResolvedSocket;
    const facts = factsOf(s);
    if (facts !== undefined) return this.again(s, facts, nodePeer);
    const fd = socketFd(s);
    // No kernel socket (an in-memory stream, a destroyed socket): answered, not cached, not counted.
    if (fd < 0) return Object.freeze(this.decide({}, s, nodePeer, events));
    return this.first(s, fd, s.server, nodePeer);
  }

  /**
   * The answer for an accepted socket whose descriptor and server the caller found, for Node's
   * own `_peername` (install()'s getter): `peer` is Node's own peer name, asked only when no packet
   * answered.
   */
  peerName(socket: object, fd: number, server: object, peer: (socket: object) => Endpoint): RealAddress {
    const s = socket as ResolvedSocket;
    const facts = factsOf(s);
    return facts !== undefined ? this.again(s, facts, peer) : this.first(s, fd, server, peer);
  }

  /** A connection's first answer: its facts read from the kernel, decided, counted, kept. */
  private first(socket: ResolvedSocket, fd: number, server: unknown, peer: (socket: object) => Endpoint): RealAddress {
    const facts = readFacts(socket, fd, server);
    return this.keep(socket, facts, this.decided(socket, facts, true, server, peer));
  }

  /** The answer where the facts were read already (for this resolver or another). */
  private again(socket: ResolvedSocket, facts: SocketFacts, peer: (socket: object) => Endpoint): RealAddress {
    if (facts.answeredBy === this) return facts.answer!;
    const kept = socket[this.key];
    if (kept !== undefined) return kept;
    return this.keep(socket, facts, this.decided(socket, facts, false, undefined, peer));
  }

  /** Caches `answer`: in the facts when no resolver answered before, else under this one's key. */
  private keep(socket: ResolvedSocket, facts: SocketFacts, answer: RealAddress): RealAddress {
    if (facts.answeredBy === undefined) {
      facts.answeredBy = this;
      facts.answer = answer;
    } else {
      socket[this.key] = answer;
    }
    return answer;
  }

  /** Decides from `facts`; a connection's first decision (`first`) is counted and published. */
  private decided(
    socket: object,
    facts: ConnectionFacts,
    first: boolean,
    server: unknown,
    peer: (socket: object) => Endpoint,
  ): RealAddress {
    reasons = 0;
    details = first && resolveChannel.hasSubscribers ? [] : null;
    const answer = Object.freeze(this.decide(facts, socket, peer, events));
    if (first) counted(socket, server, facts, answer);
    return answer;
  }
}

// Each server's counts (metrics), kept on the server once its port is known: found with one
// property read instead of two map lookups (server to port, port to counts) per connection.
const COUNTS = Symbol('node-toa.resolution-counts');

interface CountedServer {
  [COUNTS]?: Float64Array;
}

function countsOf(server: unknown): Float64Array {
  if (typeof server !== 'object' || server === null) return resolutionCounts(0);
  const known = (server as CountedServer)[COUNTS];
  if (known !== undefined) return known;
  const port = listeningPort(server);
  const counts = resolutionCounts(port);
  // Port 0: not listening yet (asked again next time).
  if (port !== 0) (server as CountedServer)[COUNTS] = counts;
  return counts;
}

/** Counts a connection's first resolution and, while someone subscribes, publishes it. */
function counted(socket: object, server: unknown, facts: ConnectionFacts, answer: RealAddress): void {
  count(countsOf(server), answer.source, answer.packet, answer.kind, reasons, facts.savedSyn !== false);
  if (details !== null) {
    resolveChannel.publish({ socket, answer, port: listeningPort(server), refused: details } satisfies ResolveMessage);
  }
  details = null;
}
