// socket -> fd -> one native call -> select and trust (decide) -> cache. The saved SYN can be read
// only once, so what the kernel said is cached on the socket itself under a registry symbol: two
// copies of node-toa in one process (two versions in node_modules) share it instead of losing it.
import { binding, savedSynAvailable } from '../addon/binding';
import { OPTION_STATUS, type NativeEndpoint, type NativeToa } from '../addon/native';
import { RECORD_SIZE, decodeRecord } from '../addon/record';
import { lookupServerTap, lookupTap, serverTap, type ServerTap } from '../tap/registry';
import { toaModuleLoaded } from '../util/kernel-module';
import { socketFd } from '../util/socket-fd';
import { warnAmbiguous, warnUntrustedPeer } from '../util/warnings';
import { refused as refusedCounters } from './counters';
import { decide, type ConnectionFacts, type DecideEvents } from './decide';
import { accepts, kindTableAll } from './kinds';
import { mappedIPv4 } from '../util/address';
import type { CompiledOptions } from './options';
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
}

const events: DecideEvents = {
  untrusted(peer, option) {
    warnUntrustedPeer(peer.address, option.kind);
  },
  refused(peer, refused) {
    refusedCounters[refused.refused]++;
    if (refused.refused === 'ambiguous') warnAmbiguous(peer.address, refused.count);
  },
};

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
  };
  if (binding !== null && savedSynAvailable) {
    synReads.count++;
    (readSyn ??= synReader(binding))(fd);
    const found = decodeRecord(record);
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
    const facts = connectionFacts(s);
    if (facts === undefined) return Object.freeze(decide({}, this.options, fallback, events));
    const answer = Object.freeze(decide(facts, this.options, fallback, events));
    s[this.key] = answer;
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
    if (facts === undefined) {
      const inner = c._parent;
      if (typeof inner === 'object' && inner !== null) facts = inner[FACTS];
      if (facts === undefined) {
        facts = readFacts(c, fd, serverTap(server) ?? null);
        if (typeof inner === 'object' && inner !== null) inner[FACTS] = facts;
      }
      c[FACTS] = facts;
    }
    const o = facts.synOptions;
    if (o !== undefined && facts.ackPeer === undefined && facts.name === undefined) {
      if (o.length === 0) return facts.synPeer!;
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
          return t;
        }
      }
    }
    return Object.freeze(decide(facts, this.options, () => nodePeer(c), events));
  }
}

/**
 * What was read of the connection (cached on the socket: the SYN is read once, by whichever
 * resolver asks first); undefined when the socket has no descriptor (nothing is cached then).
 */
function connectionFacts(s: CachedSocket): ConnectionFacts | undefined {
  let facts = s[FACTS];
  if (facts !== undefined) return facts;
  // A TLS socket and the net.Socket it wraps (`_parent`) are one connection: one SYN read.
  const inner = s._parent;
  if (typeof inner === 'object' && inner !== null) facts = inner[FACTS];
  if (facts === undefined) {
    const fd = socketFd(s);
    if (fd < 0) return undefined;
    facts = readFacts(s, fd);
    if (typeof inner === 'object' && inner !== null) inner[FACTS] = facts;
  }
  s[FACTS] = facts;
  return facts;
}
