// socket -> fd -> one native call -> select and trust (decide) -> cache. The saved SYN can be read
// only once, so what the kernel said is cached on the socket itself under a registry symbol: two
// copies of node-toa in one process (two versions in node_modules) share it instead of losing it.
// The first resolution of each connection is also counted (metrics) and, when someone listens,
// published on the `node-toa:resolve` diagnostics channel.
import { channel } from 'node:diagnostics_channel';
import { binding, savedSynAvailable } from '../addon/binding';
import { OPTION_STATUS, type NativeEndpoint, type NativeToa } from '../addon/native';
import { RECORD_SIZE, decodeRecord } from '../addon/record';
import { lookupServerTap, lookupTap, serverTap, type ServerTap } from '../tap/registry';
import { toaModuleLoaded } from '../util/kernel-module';
import { socketFd } from '../util/socket-fd';
import { warnAmbiguous, warnUntrustedPeer } from '../util/warnings';
import { decide, type ConnectionFacts, type DecideEvents, type Packet } from './decide';
import { headerOf } from '../proxy/header';
import { accepts, kindTableAll } from './kinds';
import { mappedIPv4 } from '../util/address';
import { REASON_BIT, count, type RefusedReason } from './metrics';
import type { CompiledOptions } from './options';
import type { TrustFn } from './trust';
import type { Endpoint, RealAddress } from './types';
import { typeName } from '../util/show';

// v2: options are listed (synOptions/ackOptions), not one chosen TOA.
const FACTS = Symbol.for('node-toa.connection-facts.v2');

interface CachedSocket {
  [FACTS]?: ConnectionFacts;
  // Each resolver's answer, under the resolver's own symbol: a cached call is one property read.
  [answer: symbol]: RealAddress | ConnectionFacts | undefined;
  remoteAddress?: string;
  remotePort?: number;
  remoteFamily?: string;
  _parent?: CachedSocket | null;
  server?: unknown;
}

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
    if (refused.refused === 'ambiguous') warnAmbiguous(peer.address, refused.count);
    reasons |= REASON_BIT[refused.refused];
    if (details !== null) {
      details.push({ reason: refused.refused, packet, from: peer, kind: refused.option.kind, count: refused.count });
    }
  },
};

// server.address() is a getsockname(2) per call: each server's port is asked once.
const serverPorts = new WeakMap<object, number>();

function listeningPort(server: unknown): number {
  if (typeof server !== 'object' || server === null) return 0;
  let port = serverPorts.get(server);
  if (port === undefined) {
    const address = (server as { address?: () => unknown }).address?.();
    port = typeof address === 'object' && address !== null ? ((address as { port?: number }).port ?? 0) : 0;
    if (port !== 0) serverPorts.set(server, port);
  }
  return port;
}

// Set by connectionFacts()/peerOrAnswer() when the facts were read in this call: the connection's
// first resolution, the one that is counted and published.
let freshlyRead = false;

function nodePeer(socket: CachedSocket): Endpoint {
  const address = typeof socket.remoteAddress === 'string' ? socket.remoteAddress : '';
  const family = socket.remoteFamily === 'IPv6' || address.includes(':') ? 'IPv6' : 'IPv4';
  return { address, port: typeof socket.remotePort === 'number' ? socket.remotePort : 0, family };
}

/** Saved-SYN reads made by this copy (a test counts them: one per connection, whoever asks). */
export const synReads = { count: 0 };

// One record for every lookup of this thread: readSyn() fills it, decodeRecord() copies it out.
const record = new Uint8Array(RECORD_SIZE);
// readSyn() bound to that record, to the kind table (which grows in place) and to whether a vendor
// module may have rewritten getpeername (read once per process): the per-connection call passes
// only the fd, so N-API checks no typed array per connection. Made at the first read.
let readSyn: ((fd: number) => number) | undefined;

function synReader(native: NonNullable<typeof binding>): (fd: number) => number {
  const withName = toaModuleLoaded();
  return typeof native.makeSynReader === 'function'
    ? native.makeSynReader(kindTableAll(), record, withName)
    : (fd) => native.readSyn(fd, kindTableAll(), withName, record);
}

// `tap`: the socket's server's tap (or null: none), when the caller looked it up before the
// syscall; undefined: lookupTap() finds it.
function readFacts(socket: object, fd: number, tap?: ServerTap | null): ConnectionFacts {
  // One shape for every connection's facts (the tap's fields filled in place, never added).
  const facts: ConnectionFacts = {
    synPeer: undefined,
    synOptions: undefined,
    ackPeer: undefined,
    ackOptions: undefined,
    ackPacket: undefined,
    name: undefined,
    savedSyn: undefined,
    proxy: headerOf(socket),
  };
  // A PROXY header the gate read is the answer (decide() looks no further): no SYN, no tap.
  if (facts.proxy !== undefined) return facts;
  if (binding !== null && savedSynAvailable) {
    synReads.count++;
    (readSyn ??= synReader(binding))(fd);
    const found = decodeRecord(record);
    facts.savedSyn = found.syn;
    facts.synPeer = found.peer;
    facts.synOptions = found.options;
    facts.name = found.name;
  }
  // The tap only when the SYN did not settle it: exactly one option that names a client is what a
  // proxy tagging SYNs sends. Anything else (none, a TFO cookie, several) may still have a TOA in
  // the handshake ACK, from a proxy that passes the client's SYN options through.
  const o = facts.synOptions;
  if (o === undefined || o.length !== 1 || o[0].status !== OPTION_STATUS.usable) {
    if (tap === undefined) lookupTap(socket, fd, facts);
    else if (tap !== null) lookupServerTap(tap, fd, facts);
  }
  return facts;
}

export class Resolver {
  private readonly key = Symbol('node-toa.answer');

  constructor(private readonly options: CompiledOptions) {}

  /** Whom this resolver believes (the PROXY protocol gate asks it when given no trust of its own). */
  get trust(): TrustFn {
    return this.options.trust;
  }

  resolve(socket: object): RealAddress {
    if (typeof socket !== 'object' || socket === null) {
      throw new TypeError(`socket must be a net.Socket, got ${typeName(socket)}`);
    }
    const cached = (socket as CachedSocket)[this.key] as RealAddress | undefined;
    return cached !== undefined ? cached : this.first(socket as CachedSocket);
  }

  private first(s: CachedSocket): RealAddress {
    // Node's own peer name costs a getpeername(2): asked only when no packet answered.
    const fallback = () => nodePeer(s);
    reasons = 0;
    details = null;
    const facts = connectionFacts(s);
    // No kernel socket (an in-memory stream, a destroyed socket): answered, not counted.
    if (facts === undefined) return Object.freeze(decide({}, this.options, fallback, events));
    const fresh = freshlyRead;
    if (fresh && resolveChannel.hasSubscribers) details = [];
    const answer = Object.freeze(decide(facts, this.options, fallback, events));
    s[this.key] = answer;
    if (fresh) counted(s, s.server, facts, answer);
    return answer;
  }

  /**
   * What `resolve()` answers for a socket whose descriptor the caller found (`fd`), without
   * caching the answer per resolver (install()'s sockets keep their own) and, for the commonest
   * connections, without deciding: a saved SYN without any TOA-shaped option (no tap, no kernel
   * module) returns the SYN's source as the kernel wrote it; one with exactly one usable option
   * from a trusted peer returns that option (the client, with its `kind`). Neither has `source`.
   * Everything the caller can look up before the syscall it looks up before: after it, on hosts
   * with PTI, every page touched is a TLB miss. `nodePeer` is Node's own peer name of the socket,
   * asked when no packet answered.
   */
  peerOrAnswer(s: object, fd: number, server: object, nodePeer: (socket: object) => Endpoint): NativeEndpoint | NativeToa | RealAddress {
    const c = s as CachedSocket;
    let facts = c[FACTS];
    let fresh = false;
    if (facts === undefined) {
      const inner = c._parent;
      if (typeof inner === 'object' && inner !== null) facts = inner[FACTS];
      if (facts === undefined) {
        facts = readFacts(c, fd, serverTap(server) ?? null);
        fresh = true;
        if (typeof inner === 'object' && inner !== null) inner[FACTS] = facts;
      }
      c[FACTS] = facts;
    }
    reasons = 0;
    details = null;
    const o = facts.synOptions;
    // The fast answers below skip decide(); a subscriber gets its message from the full path.
    // (With a PROXY header readFacts() read no SYN: `o` is undefined and decide() answers it.)
    if (o !== undefined && facts.ackPeer === undefined && facts.name === undefined && !(fresh && resolveChannel.hasSubscribers)) {
      if (o.length === 0) {
        if (fresh) count(listeningPort(server), 'peer', undefined, undefined, 0, facts.savedSyn !== false);
        return facts.synPeer!;
      }
      // What a proxy tagging SYNs sends: one option naming a client, from a trusted peer. The
      // option itself is the answer (decide() would say the same; it is asked for everything else,
      // and so for every warning and refusal).
      if (o.length === 1) {
        const t = o[0];
        const peer = facts.synPeer!;
        if (
          t.status === OPTION_STATUS.usable &&
          accepts(this.options.kindTable, t) &&
          (t.family === 'IPv4' || mappedIPv4(t.address) === undefined) &&
          this.options.trust(peer.family === 'IPv4' ? peer.address : (mappedIPv4(peer.address) ?? peer.address))
        ) {
          if (fresh) count(listeningPort(server), 'toa', 'syn', t.kind, 0, true);
          return t;
        }
      }
    }
    if (fresh && resolveChannel.hasSubscribers) details = [];
    const answer = Object.freeze(decide(facts, this.options, () => nodePeer(c), events));
    if (fresh) counted(c, server, facts, answer);
    return answer;
  }
}

/**
 * What was read of the connection (cached on the socket: the SYN is read once, by whichever
 * resolver asks first); undefined when the socket has no descriptor (nothing is cached then).
 */
function connectionFacts(s: CachedSocket): ConnectionFacts | undefined {
  freshlyRead = false;
  let facts = s[FACTS];
  if (facts !== undefined) return facts;
  // A TLS socket and the net.Socket it wraps (`_parent`) are one connection: one SYN read.
  const inner = s._parent;
  if (typeof inner === 'object' && inner !== null) facts = inner[FACTS];
  if (facts === undefined) {
    const fd = socketFd(s);
    if (fd < 0) return undefined;
    facts = readFacts(s, fd);
    freshlyRead = true;
    if (typeof inner === 'object' && inner !== null) inner[FACTS] = facts;
  }
  s[FACTS] = facts;
  return facts;
}

/** Counts a connection's first resolution and, while someone subscribes, publishes it. */
function counted(socket: object, server: unknown, facts: ConnectionFacts, answer: RealAddress): void {
  const port = listeningPort(server);
  count(port, answer.source, answer.packet, answer.kind, reasons, facts.savedSyn !== false);
  if (details !== null) resolveChannel.publish({ socket, answer, port, refused: details } satisfies ResolveMessage);
  details = null;
}
