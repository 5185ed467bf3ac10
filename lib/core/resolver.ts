// socket -> fd -> one native call -> select and trust (decide) -> cache. The saved SYN can be read
// only once, so what the kernel said is cached on the socket itself under a registry symbol: two
// copies of node-toa in one process (two versions in node_modules) share it instead of losing it.
import { binding, savedSynAvailable } from '../addon/binding';
import { OPTION_STATUS } from '../addon/native';
import { RECORD_SIZE, decodeRecord } from '../addon/record';
import { lookupTap } from '../tap/registry';
import { toaModuleLoaded } from '../util/kernel-module';
import { socketFd } from '../util/socket-fd';
import { warnAmbiguous, warnUntrustedPeer } from '../util/warnings';
import { refused as refusedCounters } from './counters';
import { decide, type ConnectionFacts, type DecideEvents } from './decide';
import { kindTableAll } from './kinds';
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

// One record for every lookup of this thread: readSyn() fills it, decodeRecord() copies it out.
const record = new Uint8Array(RECORD_SIZE);

function readFacts(socket: object, fd: number): ConnectionFacts {
  const facts: ConnectionFacts = {};
  if (binding !== null && savedSynAvailable) {
    binding.readSyn(fd, kindTableAll(), toaModuleLoaded(), record);
    const found = decodeRecord(record);
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
    if (facts === undefined) {
      // A TLS socket and the net.Socket it wraps (`_parent`) are one connection: one SYN read.
      const inner = s._parent;
      if (typeof inner === 'object' && inner !== null) facts = inner[FACTS];
      if (facts === undefined) {
        const fd = socketFd(s);
        if (fd < 0) return Object.freeze(decide({}, this.options, fallback, events));
        facts = readFacts(s, fd);
        if (typeof inner === 'object' && inner !== null) inner[FACTS] = facts;
      }
      s[FACTS] = facts;
    }
    const answer = Object.freeze(decide(facts, this.options, fallback, events));
    s[this.key] = answer;
    return answer;
  }
}
