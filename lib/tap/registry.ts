// The open taps of this thread. A server carries its tap under a registry symbol: two copies of
// node-toa in one process (the same version twice in node_modules) find the tap the other one
// opened, as they share the saved SYN; a copy of another version has another symbol and reads
// SYNs only.
import type { NativeTap, NativeTapStats } from '../addon/native';
import { kindTableAll } from '../core/kinds';
import { warnSockopsUnseen } from '../util/warnings';

// v3: the tap is read in the same native call as the saved SYN (a SYN reader bound to it).
const TAP = Symbol.for('node-toa.ack-tap.v3');

interface TappedServer {
  [TAP]?: OpenTap;
}

/** An open tap: the native one and what stats() says of it. */
export class OpenTap {
  open = true;
  /**
   * A sock_ops tap: whether it is known if the program sees the server's connections (a lookup
   * found one, or NODE_TOA_SOCKOPS_UNSEEN was given); the timer asks no more.
   */
  settled = false;
  constructor(
    readonly tap: NativeTap,
    readonly port: number,
    readonly netns: number,
    /** How it reads the handshake's packets (tap/options.ts TapSource). */
    readonly source: 'sockops' | 'packet',
  ) {}
}

// Per thread: a worker thread loads its own copy of this module and opens its own taps.
const taps = new Set<OpenTap>();
// Lookups drain too; this keeps an idle server's buffer from filling with packets nobody asked
// about (connections whose app never reads the address). A sock_ops tap has nothing to drain:
// the timer only asks whether its program sees the server's connections, until it is known, and
// stops when no tap needs it (an idle server is not woken 20 times a second for nothing).
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
  'stale',
  'unseen',
  'storageLookups',
] as const satisfies readonly (keyof NativeTapStats)[];
type Counter = (typeof COUNTERS)[number];
// What closed taps counted: stats() keeps counting them.
const retired = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<Counter, number>;

function drainAll(): void {
  const table = kindTableAll();
  let needed = false;
  for (const r of taps) {
    if (r.source === 'packet') {
      r.tap.drain(table);
      needed = true;
    } else if (!r.settled) {
      settle(r);
      if (!r.settled) needed = true;
    }
  }
  if (!needed && timer !== null) {
    clearInterval(timer);
    timer = null;
  }
}

/**
 * Settles whether a sock_ops tap's program sees its server's connections, once it has looked one
 * up: it does when a lookup found one; when none did, the tap reads nothing, and says so once.
 */
function settle(r: OpenTap): void {
  const { lookups, unseen } = r.tap.stats();
  if (lookups === 0) return;
  r.settled = true;
  // A connection established before the program was attached is unseen too: only a server none
  // of whose connections the program saw has its listener outside the cgroup.
  if (unseen === lookups) warnSockopsUnseen(r.port);
}

export function hasTap(server: object): boolean {
  return (server as TappedServer)[TAP] !== undefined;
}

export function addTap(server: object, tap: OpenTap): void {
  taps.add(tap);
  (server as TappedServer)[TAP] = tap;
  if (timer === null) {
    timer = setInterval(drainAll, DRAIN_INTERVAL_MS);
    timer.unref();
  }
}

export function removeTap(server: object, tap: OpenTap): void {
  if (!taps.delete(tap)) return;
  tap.open = false;
  const s = tap.tap.stats();
  for (const c of COUNTERS) retired[c] += s[c];
  tap.tap.close();
  if ((server as TappedServer)[TAP] === tap) delete (server as TappedServer)[TAP];
  if (taps.size === 0 && timer !== null) {
    clearInterval(timer);
    timer = null;
  }
}

/** Closes the tap this copy opened for `server`, if any (install()'s undo). */
export function closeTap(server: object): void {
  const own = (server as TappedServer)[TAP];
  if (own instanceof OpenTap) removeTap(server, own);
}

/**
 * The tap that saw `socket`'s packets: its server's (this copy's or another's of this version), or
 * undefined. A socket that does not say its server (none of Node's do that) is asked of the only
 * open tap, if there is exactly one: the table is keyed by the connection, so another server's tap
 * would only miss.
 */
export function tapOf(socket: object, server: unknown): OpenTap | undefined {
  if (typeof server === 'object' && server !== null) {
    const own = (server as TappedServer)[TAP];
    return own !== undefined && own.open ? own : undefined;
  }
  if (taps.size !== 1) return undefined;
  const [only] = taps;
  return only;
}

/** Counters of one tap, as in `stats().taps`. */
export interface TapStatsEntry extends NativeTapStats {
  /** The listening port the tap watches. */
  port: number;
  /** Inode of the network namespace the tap listens in (`ls -iL /proc/<pid>/ns/net`). */
  netns: number;
  /**
   * How it reads the handshake's packets: `'sockops'` (the server's BPF program; the table
   * counters stay 0) or `'packet'` (packet sockets).
   */
  source: 'sockops' | 'packet';
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
    list.push({ ...s, port: r.port, netns: r.netns, source: r.source });
  }
  return { ...total, taps: list };
}
