// socket -> fd -> one native call -> select and trust (decide) -> cache. The saved SYN can be read
// only once, so what the kernel said is cached on the socket itself under a registry symbol: two
// copies of node-toa in one process (two versions in node_modules) share it instead of losing it.
// The first resolution of each connection is also counted (metrics) and, when someone listens,
// published on the `node-toa:resolve` diagnostics channel.
import { channel } from 'node:diagnostics_channel';
import { binding, savedSynAvailable } from '../addon/binding';
import { OPTION_STATUS } from '../addon/native';
import { RECORD_SIZE, decodeRecord } from '../addon/record';
import { lookupTap } from '../tap/registry';
import { toaModuleLoaded } from '../util/kernel-module';
import { typeName } from '../util/show';
import { socketFd } from '../util/socket-fd';
import { warnAmbiguous, warnUntrustedPeer } from '../util/warnings';
import { decide, type ConnectionFacts, type DecideEvents, type Packet } from './decide';
import { kindTableAll } from './kinds';
import { REASON_BIT, count, type RefusedReason } from './metrics';
import type { CompiledOptions } from './options';
import type { Endpoint, RealAddress } from './types';

// v2: options are listed (synOptions/ackOptions), not one chosen TOA.
const FACTS = Symbol.for('node-toa.connection-facts.v2');

interface CachedSocket {
  [FACTS]?: ConnectionFacts;
  // Each resolver's answer, under the resolver's own symbol: a cached call is one property read.
  [answer: symbol]: RealAddress | ConnectionFacts | undefined;
  remoteAddress?: string;
  remotePort?: number;
  remoteFamily?: string;
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

function listeningPort(socket: CachedSocket): number {
  const server = socket.server;
  if (typeof server !== 'object' || server === null) return 0;
  let port = serverPorts.get(server);
  if (port === undefined) {
    const address = (server as { address?: () => unknown }).address?.();
    port = typeof address === 'object' && address !== null ? ((address as { port?: number }).port ?? 0) : 0;
    if (port !== 0) serverPorts.set(server, port);
  }
  return port;
}

function nodePeer(socket: CachedSocket): Endpoint {
  const address = typeof socket.remoteAddress === 'string' ? socket.remoteAddress : '';
  const family = socket.remoteFamily === 'IPv6' || address.includes(':') ? 'IPv6' : 'IPv4';
  return { address, port: typeof socket.remotePort === 'number' ? socket.remotePort : 0, family };
}

// One record for every lookup of this thread: readSyn() fills it, decodeRecord() copies it out.
const record = new Uint8Array(RECORD_SIZE);

function readFacts(socket: object, fd: number): ConnectionFacts {
  const facts: ConnectionFacts = {};
  if (binding !== null && savedSynAvailable) {
    binding.readSyn(fd, kindTableAll(), toaModuleLoaded(), record);
    const found = decodeRecord(record);
    facts.savedSyn = found.syn;
    if (found.peer !== undefined) facts.synPeer = found.peer;
    if (found.options !== undefined) facts.synOptions = found.options;
    if (found.name !== undefined) facts.name = found.name;
  }
  // The tap only when the SYN did not settle it: exactly one option that names a client is what a
  // proxy tagging SYNs sends. Anything else (none, a TFO cookie, several) may still have a TOA in
  // the handshake ACK, from a proxy that passes the client's SYN options through.
  const o = facts.synOptions;
  if (o === undefined || o.length !== 1 || o[0].status !== OPTION_STATUS.usable) lookupTap(socket, fd, facts);
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
    let facts = s[FACTS];
    const firstOfConnection = facts === undefined;
    reasons = 0;
    details = null;
    if (facts === undefined) {
      const fd = socketFd(s);
      // No kernel socket (an in-memory stream, a destroyed socket): answered, not counted.
      if (fd < 0) return Object.freeze(decide({}, this.options, fallback, events));
      facts = readFacts(s, fd);
      s[FACTS] = facts;
      if (resolveChannel.hasSubscribers) details = [];
    }
    const answer = Object.freeze(decide(facts, this.options, fallback, events));
    s[this.key] = answer;
    if (firstOfConnection) {
      const port = listeningPort(s);
      count(port, answer, reasons, facts.savedSyn !== false);
      if (details !== null) resolveChannel.publish({ socket: s, answer, port, refused: details } satisfies ResolveMessage);
      details = null;
    }
    return answer;
  }
}
