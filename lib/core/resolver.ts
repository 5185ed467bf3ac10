// socket -> fd -> one native call -> trust -> cache. The saved SYN can be read only once, so
// what the kernel said is cached on the socket itself under a registry symbol: two copies of
// node-toa in one process (two versions in node_modules) share it instead of losing it.
import { binding, savedSynAvailable } from '../addon/binding';
import { decide, type ConnectionFacts } from './decide';
import { toaModuleLoaded } from '../util/kernel-module';
import type { NativeToa } from '../addon/native';
import type { CompiledOptions } from './options';
import { socketFd } from '../util/socket-fd';
import { RECORD_SIZE, decodeRecord } from '../addon/record';
import type { Endpoint, RealAddress } from './types';
import { warnUntrustedPeer } from '../util/warnings';

const FACTS = Symbol.for('node-toa.connection-facts.v1');

interface CachedSocket {
  [FACTS]?: ConnectionFacts;
  // Each resolver's answer, under the resolver's own symbol: a cached call is one property read.
  [answer: symbol]: RealAddress | ConnectionFacts | undefined;
  remoteAddress?: string;
  remotePort?: number;
  remoteFamily?: string;
}

/** Looks up extra facts (the ACK tap) for a socket whose SYN had no TOA; set by ack.ts. */
export type FactsSupplement = (socket: object, fd: number, facts: ConnectionFacts) => void;

let supplement: FactsSupplement | null = null;

export function setFactsSupplement(fn: FactsSupplement | null): void {
  supplement = fn;
}

function onUntrusted(peer: Endpoint, toa: { kind: number }): void {
  warnUntrustedPeer(peer.address, toa.kind);
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
    binding.readSyn(fd, KIND_TABLE_ALL, toaModuleLoaded(), record);
    const found = decodeRecord(record);
    if (found.peer !== undefined) facts.synPeer = found.peer;
    if (found.toa !== undefined) facts.synToa = found.toa;
    if (found.name !== undefined) facts.name = found.name;
  }
  if (facts.synToa === undefined && supplement !== null) supplement(socket, fd, facts);
  return facts;
}

// The kernel's answer is read once for every resolver, so it is parsed with every kind any
// resolver might want; each resolver then keeps only the kinds it was configured for.
const KIND_TABLE_ALL = new Uint8Array(256);

/** Every kind any resolver reads (live: grows as resolvers are made). The ACK tap parses with it. */
export function kindTableAll(): Uint8Array {
  return KIND_TABLE_ALL;
}

function registerKindTable(table: Uint8Array): void {
  for (let i = 0; i < 256; i++) KIND_TABLE_ALL[i] |= table[i];
}

// Layout bits as in kinds.ts: which layout the parser used follows from the option's length.
function kindAccepts(table: Uint8Array, toa: NativeToa): boolean {
  const layouts = table[toa.kind];
  switch (toa.length) {
    case 8:
      return (layouts & 1) !== 0;
    case 20:
      return (layouts & (toa.vid === undefined ? 2 : 8)) !== 0;
    default:
      return (layouts & 4) !== 0;
  }
}

export class Resolver {
  private readonly key = Symbol('node-toa.answer');

  constructor(private readonly options: CompiledOptions) {
    registerKindTable(options.kindTable);
  }

  resolve(socket: object): RealAddress {
    if (typeof socket !== 'object' || socket === null) {
      throw new TypeError(`socket must be a net.Socket, got ${socket === null ? 'null' : typeof socket}`);
    }
    const cached = (socket as CachedSocket)[this.key] as RealAddress | undefined;
    return cached !== undefined ? cached : this.first(socket as CachedSocket);
  }

  private first(s: CachedSocket): RealAddress {
    // Node's own peer name costs a getpeername(2): asked only when no packet answered.
    const fallback = () => nodePeer(s);
    let facts = s[FACTS];
    if (facts === undefined) {
      const fd = socketFd(s);
      if (fd < 0) return Object.freeze(decide({}, fallback, this.options.trust, onUntrusted));
      facts = readFacts(s, fd);
      s[FACTS] = facts;
    }
    const answer = Object.freeze(decide(this.accepted(facts), fallback, this.options.trust, onUntrusted));
    s[this.key] = answer;
    return answer;
  }

  /** The facts without options of kinds this resolver was not configured to read. */
  private accepted(facts: ConnectionFacts): ConnectionFacts {
    const table = this.options.kindTable;
    const synOk = facts.synToa === undefined || kindAccepts(table, facts.synToa);
    const ackOk = facts.ackToa === undefined || kindAccepts(table, facts.ackToa);
    if (synOk && ackOk) return facts;
    return {
      ...facts,
      synToa: synOk ? facts.synToa : undefined,
      ackToa: ackOk ? facts.ackToa : undefined,
    };
  }
}
