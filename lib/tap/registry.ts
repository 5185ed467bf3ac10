// The open taps of this thread, and the lookup the resolver makes for a socket whose SYN had no
// TOA. A server carries its tap under a registry symbol: two copies of node-toa in one process
// (two versions in node_modules) find the tap the other one opened, as they share the saved SYN.
import type { NativeTap, NativeTapHit, NativeTapStats } from '../addon/native';
import type { ConnectionFacts } from '../core/decide';
import { kindTableAll } from '../core/kinds';

/**
 * What a server carries. Each copy of node-toa passes its own kind table. Keep this shape stable
 * (the key is versioned).
 */
interface SharedTap {
  lookup(fd: number, kindTable: Uint8Array, peer?: { address: string; port: number }): unknown;
}

const TAP = Symbol.for('node-toa.ack-tap.v2');

interface TappedServer {
  [TAP]?: SharedTap;
}

export class TapRecord implements SharedTap {
  open = true;
  constructor(
    readonly tap: NativeTap,
    readonly port: number,
    readonly netns: number,
  ) {}

  lookup(fd: number, kindTable: Uint8Array, peer?: { address: string; port: number }): NativeTapHit | null {
    if (!this.open) return null;
    const found =
      peer === undefined ? this.tap.lookup(fd, kindTable) : this.tap.lookup(fd, kindTable, peer.address, peer.port);
    return found === null || typeof found === 'number' ? null : found;
  }
}

// Per thread: a worker thread loads its own copy of this module and opens its own taps.
const taps = new Set<TapRecord>();
// Lookups drain too; this keeps an idle server's buffer from filling with packets nobody asked
// about (connections whose app never calls realRemoteAddress).
const DRAIN_INTERVAL_MS = 50;
let timer: NodeJS.Timeout | null = null;

export const COUNTERS = [
  'packets',
  'syns',
  'toaFound',
  'unmatched',
  'badSeq',
  'inserted',
  'evictions',
  'expired',
  'drops',
  'lookups',
  'hits',
  'malformed',
] as const satisfies readonly (keyof NativeTapStats)[];
type Counter = (typeof COUNTERS)[number];
// What closed taps counted: stats() keeps counting them.
const retired = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<Counter, number>;

function drainAll(): void {
  const table = kindTableAll();
  for (const r of taps) r.tap.drain(table);
}

export function hasTap(server: object): boolean {
  return (server as TappedServer)[TAP] !== undefined;
}

export function addTap(server: object, record: TapRecord): void {
  taps.add(record);
  (server as TappedServer)[TAP] = record;
  if (timer === null) {
    timer = setInterval(drainAll, DRAIN_INTERVAL_MS);
    timer.unref();
  }
}

export function removeTap(server: object, record: TapRecord): void {
  if (!taps.delete(record)) return;
  record.open = false;
  const s = record.tap.stats();
  for (const c of COUNTERS) retired[c] += s[c];
  record.tap.close();
  if ((server as TappedServer)[TAP] === record) delete (server as TappedServer)[TAP];
  if (taps.size === 0 && timer !== null) {
    clearInterval(timer);
    timer = null;
  }
}

/** Closes the tap this copy opened for `server`, if any (install()'s undo). */
export function closeTap(server: object): void {
  const own = (server as TappedServer)[TAP];
  if (own instanceof TapRecord) removeTap(server, own);
}

function ask(shared: SharedTap, fd: number, facts: ConnectionFacts): boolean {
  // The saved SYN's source is the connection's true peer (and one getpeername fewer).
  const found = shared.lookup(fd, kindTableAll(), facts.synPeer) as NativeTapHit | null;
  if (found === null || typeof found !== 'object') return false;
  facts.ackPeer = found.peer;
  facts.ackOptions = found.options;
  facts.ackPacket = found.packet;
  return true;
}

/** The tap a server carries (this copy's or another's), or undefined. */
export function serverTap(server: object): SharedTap | undefined {
  return (server as TappedServer)[TAP];
}

/** What `serverTap()` returns: opaque outside this module. */
export type ServerTap = SharedTap;

/** lookupTap() with the server's tap already looked up (`undefined`: it has none). */
export function lookupServerTap(tap: SharedTap | undefined, fd: number, facts: ConnectionFacts): void {
  if (tap !== undefined) ask(tap, fd, facts);
}

/** Adds what the server's tap kept of this socket's connection to `facts`: a property read when the server has none. */
export function lookupTap(socket: object, fd: number, facts: ConnectionFacts): void {
  const server = (socket as { server?: unknown }).server;
  if (typeof server === 'object' && server !== null) {
    // The server's own tap, or none: other taps watch other ports.
    const own = (server as TappedServer)[TAP];
    if (own !== undefined) ask(own, fd, facts);
    return;
  }
  // A socket that does not say its server (none of Node's do that): ask every tap.
  if (taps.size === 0) return;
  for (const r of taps) if (ask(r, fd, facts)) return;
}

/** Counters of one tap, as in `stats().taps`. */
export interface TapStatsEntry extends NativeTapStats {
  /** The listening port the tap watches. */
  port: number;
  /** Inode of the network namespace the tap listens in (`ls -iL /proc/<pid>/ns/net`). */
  netns: number;
}

/**
 * Counters of the ACK taps, summed over the taps of this thread (closed ones included, except
 * `tableSize` and `capacity`, which are of the open taps).
 */
export interface TapStats extends NativeTapStats {
  /** The open taps, one per server enabled with `{ ack }`. */
  taps: TapStatsEntry[];
}

/** Reads what the taps have queued first, so the numbers are current. */
export function tapStats(): TapStats {
  drainAll();
  const total = { ...retired, tableSize: 0, capacity: 0 };
  const list: TapStatsEntry[] = [];
  for (const r of taps) {
    const s = r.tap.stats();
    for (const c of COUNTERS) total[c] += s[c];
    total.tableSize += s.tableSize;
    total.capacity += s.capacity;
    list.push({ ...s, port: r.port, netns: r.netns });
  }
  return { ...total, taps: list };
}
