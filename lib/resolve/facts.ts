// What the kernel and the gate told of one connection, read once and cached on the socket itself
// under a registry symbol: the saved SYN can be read only once, and two copies of node-toa in one
// process (two versions in node_modules) share it instead of losing it. One native call reads
// everything (native/addon.cc makeSynReader): the saved SYN, then the server's tap when it has one.
import { binding, savedSynAvailable } from '../addon/binding';
import { RECORD_SIZE, decodeRecord } from '../addon/record';
import type { ConnectionFacts, HeaderFacts } from '../core/decide';
import type { RealAddress } from '../core/types';
import { kindTableAll } from '../core/kinds';
import { headerInfo, headerOf } from '../proxy-protocol/header';
import { tapOf, type OpenTap } from '../tap/registry';
import { toaModuleLoaded } from '../util/kernel-module';

// v3: the tap's packet after the SYN is read in the same call, into the same facts.
const FACTS = Symbol.for('node-toa.connection-facts.v3');

/**
 * A connection's facts as kept on its socket, with the answer of the first resolver that decided
 * for it: most processes have one resolver, whose answer then costs the socket no property of its
 * own (a property added to a fresh net.Socket copies its property array: a first read's cost).
 */
export interface SocketFacts extends ConnectionFacts {
  answeredBy: object | undefined;
  answer: RealAddress | undefined;
}

interface FactsSocket {
  [FACTS]?: SocketFacts;
  _parent?: FactsSocket | null;
}

/** Saved-SYN reads made by this copy (a test counts them: one per connection, whoever asks). */
export const synReads = { count: 0 };

type Reader = (fd: number) => number;

// One record for every read of this thread: a reader fills it, decodeRecord() copies it out.
const record = new Uint8Array(RECORD_SIZE);
// Readers bound to that record, to the kind table (which grows in place), to whether a vendor
// module may have rewritten getpeername (read once per process) and to a tap: the per-connection
// call passes only the fd. Made at the first read: one without a tap, one per tap.
let plainReader: Reader | undefined;
const tapReaders = new WeakMap<OpenTap, Reader>();

function readerFor(tap: OpenTap | undefined): Reader {
  const native = binding!;
  if (tap === undefined) return (plainReader ??= native.makeSynReader(kindTableAll(), record, toaModuleLoaded()));
  let reader = tapReaders.get(tap);
  if (reader === undefined) {
    reader = native.makeSynReader(kindTableAll(), record, toaModuleLoaded(), tap.tap);
    tapReaders.set(tap, reader);
  }
  return reader;
}

function headerFacts(socket: object): HeaderFacts | undefined {
  const h = headerOf(socket);
  if (h === undefined) return undefined;
  return { peer: h.peer, client: h.client, destination: h.destination, info: headerInfo(h) };
}

/**
 * A connection's facts before anything is read: one shape for every connection's (decodeRecord
 * fills the fields in place, never adds).
 */
export function blankFacts(header: HeaderFacts | undefined): SocketFacts {
  return {
    savedSyn: undefined,
    synPeer: undefined,
    synOptions: undefined,
    ackPeer: undefined,
    ackOptions: undefined,
    ackPacket: undefined,
    name: undefined,
    header,
    answeredBy: undefined,
    answer: undefined,
  };
}

function read(socket: object, fd: number, server: unknown): SocketFacts {
  const facts = blankFacts(headerFacts(socket));
  // A PROXY header the gate read is the answer (decide() looks no further): no SYN, no tap.
  if (facts.header !== undefined || binding === null || !savedSynAvailable) return facts;
  synReads.count++;
  readerFor(tapOf(socket, server))(fd);
  decodeRecord(record, facts);
  return facts;
}

/**
 * The facts already read for `socket`, or for the net.Socket a TLS socket wraps (`_parent`: one
 * connection, one SYN read); undefined when none were read yet.
 */
export function factsOf(socket: object): SocketFacts | undefined {
  const s = socket as FactsSocket;
  const own = s[FACTS];
  if (own !== undefined) return own;
  const inner = s._parent;
  if (typeof inner !== 'object' || inner === null) return undefined;
  const shared = inner[FACTS];
  if (shared !== undefined) s[FACTS] = shared;
  return shared;
}

/**
 * Reads the facts of `socket` from the kernel (descriptor `fd`, and `server`'s tap) and keeps
 * them on it, for every resolver and copy of node-toa: the saved SYN can be read only once.
 * Only where factsOf() found none.
 */
export function readFacts(socket: object, fd: number, server: unknown): SocketFacts {
  const s = socket as FactsSocket;
  const facts = read(socket, fd, server);
  const inner = s._parent;
  if (typeof inner === 'object' && inner !== null) inner[FACTS] = facts;
  s[FACTS] = facts;
  return facts;
}
