// What the kernel and the gate told of one connection, read once and cached on the socket itself
// under a registry symbol: the saved SYN can be read only once, and two copies of node-toa in one
// process (two versions in node_modules) share it instead of losing it. One native call reads
// everything (native/addon.cc makeSynReader): the saved SYN, then the server's tap when it has one.
import { binding, savedSynAvailable } from '../addon/binding';
import { RECORD_SIZE, decodeRecord } from '../addon/record';
import type { ConnectionFacts, HeaderFacts } from '../core/decide';
import { kindTableAll } from '../core/kinds';
import { headerInfo, headerOf } from '../proxy-protocol/header';
import { tapOf, type OpenTap } from '../tap/registry';
import { toaModuleLoaded } from '../util/kernel-module';

// v3: the tap's packet after the SYN is read in the same call, into the same facts.
const FACTS = Symbol.for('node-toa.connection-facts.v3');

interface FactsSocket {
  [FACTS]?: ConnectionFacts;
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

function read(socket: object, fd: number, server: unknown): ConnectionFacts {
  // One shape for every connection's facts (decodeRecord fills the fields in place, never adds).
  const facts: ConnectionFacts = {
    savedSyn: undefined,
    synPeer: undefined,
    synOptions: undefined,
    ackPeer: undefined,
    ackOptions: undefined,
    ackPacket: undefined,
    name: undefined,
    header: headerFacts(socket),
  };
  // A PROXY header the gate read is the answer (decide() looks no further): no SYN, no tap.
  if (facts.header !== undefined || binding === null || !savedSynAvailable) return facts;
  synReads.count++;
  readerFor(tapOf(socket, server))(fd);
  decodeRecord(record, facts);
  return facts;
}

/**
 * The facts of `socket` (cached: read at the first call, by whichever resolver asks first).
 * `fd` is its descriptor (< 0: none, then nothing is read or cached and undefined is returned);
 * `server` its server, whose tap is asked. `fresh.value` says whether this call read them.
 */
export function connectionFacts(socket: object, fd: number, server: unknown, fresh: { value: boolean }): ConnectionFacts | undefined {
  const s = socket as FactsSocket;
  fresh.value = false;
  let facts = s[FACTS];
  if (facts !== undefined) return facts;
  // A TLS socket and the net.Socket it wraps (`_parent`) are one connection: one SYN read.
  const inner = s._parent;
  if (typeof inner === 'object' && inner !== null) facts = inner[FACTS];
  if (facts === undefined) {
    if (fd < 0) return undefined;
    facts = read(socket, fd, server);
    fresh.value = true;
    if (typeof inner === 'object' && inner !== null) inner[FACTS] = facts;
  }
  s[FACTS] = facts;
  return facts;
}
