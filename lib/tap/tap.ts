// TOA in the handshake ACK or the first data packet (proxies that never tag the SYN): one packet
// tap per server (native/toa_tap.h), looked up by the resolver when the SYN had no TOA, drained
// from the event loop so its buffer does not overflow, counted for operators.
import type { AddressInfo, Server } from 'node:net';
import { binding } from '../addon/binding';
import type { ConnectionFacts } from '../core/decide';
import { errnoName } from '../util/errno';
import type { NativeEndpoint, NativeTap, NativeTapStats, NativeToa } from '../addon/native';
import { kindTableAll, setFactsSupplement } from '../core/resolver';
import { socketFd } from '../util/socket-fd';
import { warnOnce } from '../util/warnings';

/** `enable(server, { ack })` as an object: the tap's table bounds. */
export interface AckOptions {
  /** Connections remembered between their handshake ACK and the lookup. Default 65536. */
  capacity?: number;
  /** Milliseconds an unclaimed entry is kept. Default 30000. */
  maxAge?: number;
}

export interface CompiledAck {
  readonly capacity: number;
  readonly maxAgeMs: number;
}

/** Counters of one tap, as in `stats().taps`. */
export interface AckTapStats extends NativeTapStats {
  /** The listening port the tap watches. */
  port: number;
  /** Inode of the network namespace the tap listens in (`ls -iL /proc/<pid>/ns/net`). */
  netns: number;
}

/**
 * Counters of the ACK taps, summed over the taps of this thread (closed ones included, except
 * `tableSize` and `capacity`, which are of the open taps).
 */
export interface AckStats extends NativeTapStats {
  /** The open taps, one per server enabled with `{ ack }`. */
  taps: AckTapStats[];
}

const DEFAULTS: CompiledAck = Object.freeze({ capacity: 65536, maxAgeMs: 30000 });
const MAX_CAPACITY = 1 << 24;
const MIN_MAX_AGE_MS = 100;
const MAX_MAX_AGE_MS = 3600000;
const ACK_KEYS: readonly string[] = ['capacity', 'maxAge'];
// Room for a few thousand queued packets between drains; root may go past net.core.rmem_max.
const RECEIVE_BUFFER = 4 << 20;
// Lookups drain too; this keeps an idle server's buffer from filling with packets nobody asked
// about (connections whose app never calls realRemoteAddress).
const DRAIN_INTERVAL_MS = 50;

function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}

function integerIn(value: unknown, name: string, min: number, max: number, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${where}: options.ack.${name} must be an integer, got ${show(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${where}: options.ack.${name} must be from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/** Validates `ack`: null when the tap is off. */
export function compileAck(value: unknown, where: string): CompiledAck | null {
  if (value === undefined || value === false) return null;
  if (value === true) return DEFAULTS;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(
      `${where}: options.ack must be a boolean or an object such as { capacity: 65536, maxAge: 30000 }, got ${show(value)}`,
    );
  }
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!ACK_KEYS.includes(key)) {
      throw new TypeError(`${where}: unknown option 'ack.${key}' (known: ${ACK_KEYS.join(', ')})`);
    }
  }
  return Object.freeze({
    capacity: o.capacity === undefined ? DEFAULTS.capacity : integerIn(o.capacity, 'capacity', 1, MAX_CAPACITY, where),
    maxAgeMs:
      o.maxAge === undefined ? DEFAULTS.maxAgeMs : integerIn(o.maxAge, 'maxAge', MIN_MAX_AGE_MS, MAX_MAX_AGE_MS, where),
  });
}

type TapError = Error & { code: string; errno?: number; syscall?: string };

function tapError(code: string, message: string, errno?: number, syscall?: string): TapError {
  const error = new Error(message) as TapError;
  error.code = code;
  if (errno !== undefined) error.errno = -errno;
  if (syscall !== undefined) error.syscall = syscall;
  return error;
}

const EPERM = 1;
const EACCES = 13;

function noCapability(errno: number, syscall: string): TapError {
  return tapError(
    'ERR_TOA_NO_CAP_NET_RAW',
    `node-toa: { ack: true } needs the CAP_NET_RAW capability to open a packet socket that reads TOA ` +
      `from handshake ACKs (${syscall} failed with ${errnoName(errno)}). TOA in SYNs still works ` +
      `without it: drop { ack: true }, or grant the capability (root in a container usually has it; ` +
      `docker run --cap-add NET_RAW; setcap cap_net_raw+ep on the node binary).`,
    errno,
    syscall,
  );
}

/**
 * Throws now, where the user passed `{ ack: true }`, when this process cannot open a tap at all.
 * Returns false (with a warning) where taps do not exist (not Linux): the SYN path still works.
 */
export function checkAckSupport(): boolean {
  if (binding === null || !binding.tapSupported) {
    warnOnce(
      'NODE_TOA_ACK_UNSUPPORTED',
      `node-toa: { ack: true } needs Linux packet sockets, not available on ${process.platform}; ` +
        'only TOA in SYNs is read.',
    );
    return false;
  }
  const err = binding.probePacketSocket();
  if (err === EPERM || err === EACCES) throw noCapability(err, 'socket(AF_PACKET)');
  if (err !== 0) {
    throw tapError('ERR_TOA_TAP_OPEN', `node-toa: cannot open a packet socket: ${errnoName(err)}`, err, 'socket');
  }
  return true;
}

/**
 * What a server carries under a registry symbol: two copies of node-toa in one process (two
 * versions in node_modules) find the tap the other one opened, as they share the saved SYN.
 * Each passes its own kind table. Keep this shape stable (the key is versioned).
 */
interface SharedTap {
  lookup(fd: number, kindTable: Uint8Array, peer?: NativeEndpoint): { peer: NativeEndpoint; toa: NativeToa } | null;
}

class TapRecord implements SharedTap {
  open = true;
  constructor(
    readonly tap: NativeTap,
    readonly port: number,
    readonly netns: number,
  ) {}

  lookup(fd: number, kindTable: Uint8Array, peer?: NativeEndpoint): { peer: NativeEndpoint; toa: NativeToa } | null {
    if (!this.open) return null;
    const found =
      peer === undefined ? this.tap.lookup(fd, kindTable) : this.tap.lookup(fd, kindTable, peer.address, peer.port);
    return found === null || typeof found === 'number' ? null : found;
  }
}

const TAP = Symbol.for('node-toa.ack-tap.v1');

interface TappedServer {
  [TAP]?: SharedTap;
}

// Per thread: a worker thread loads its own copy of this module and opens its own taps.
const taps = new Set<TapRecord>();
let timer: NodeJS.Timeout | null = null;
const COUNTERS = [
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
] as const;
type Counter = (typeof COUNTERS)[number];
const retired: Record<Counter, number> = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<Counter, number>;

function drainAll(): void {
  const table = kindTableAll();
  for (const r of taps) r.tap.drain(table);
}

function ask(shared: SharedTap, fd: number, facts: ConnectionFacts): boolean {
  // The saved SYN's source is the connection's true peer (and one getpeername fewer).
  const found = shared.lookup(fd, kindTableAll(), facts.synPeer);
  if (found === null) return false;
  facts.ackPeer = found.peer;
  facts.ackToa = found.toa;
  return true;
}

// Called by the resolver for a socket whose SYN held no TOA: a property read when the server has
// no tap.
function supplement(socket: object, fd: number, facts: ConnectionFacts): void {
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

setFactsSupplement(supplement);

function closeTap(server: TappedServer, r: TapRecord): void {
  if (!taps.delete(r)) return;
  r.open = false;
  const s = r.tap.stats();
  for (const c of COUNTERS) retired[c] += s[c];
  r.tap.close();
  if (server[TAP] === r) delete server[TAP];
  if (taps.size === 0 && timer !== null) {
    clearInterval(timer);
    timer = null;
  }
}

/**
 * Opens the tap of a listening server, in the network namespace of its listening socket. Throws
 * an Error with a `code` when it cannot. Does nothing for a server that has one.
 */
export function openAckTap(server: Server, ack: CompiledAck): void {
  const s = server as unknown as TappedServer;
  if (binding === null || !binding.tapSupported) return;
  if (s[TAP] !== undefined) return; // this copy or another one tapped it already
  const address = server.address();
  if (address === null || typeof address === 'string') {
    warnOnce('NODE_TOA_ACK_NOT_TCP', 'node-toa: { ack: true } applies to TCP servers only; this one listens on a pipe.');
    return;
  }
  const port = (address as AddressInfo).port;
  // A node:cluster worker has no listening fd (the primary accepts): -1 opens the tap in this
  // thread's own namespace, where the port is.
  const fd = socketFd(server);
  const tap = new binding.Tap(ack.capacity, ack.maxAgeMs, RECEIVE_BUFFER);
  const opened = tap.open(fd);
  let err = opened.errno;
  let syscall = opened.syscall ?? 'socket(AF_PACKET)';
  if (err === 0) {
    err = tap.setPorts([port]);
    syscall = 'setsockopt(SO_ATTACH_FILTER)';
  }
  if (err !== 0) {
    tap.close();
    if ((err === EPERM || err === EACCES) && syscall.startsWith('socket')) throw noCapability(err, syscall);
    const hint = syscall.startsWith('setns')
      ? " (the listening socket lives in another network namespace; entering it needs CAP_SYS_ADMIN)"
      : '';
    throw tapError(
      'ERR_TOA_TAP_OPEN',
      `node-toa: cannot open the ACK tap for port ${port}: ${syscall} failed with ${errnoName(err)}${hint}`,
      err,
      syscall,
    );
  }
  const record = new TapRecord(tap, port, opened.netns);
  taps.add(record);
  s[TAP] = record;
  server.once('close', () => closeTap(s, record));
  if (timer === null) {
    timer = setInterval(drainAll, DRAIN_INTERVAL_MS);
    timer.unref();
  }
}

/**
 * The ACK taps' counters: packets seen, TOA found, table size, evictions, drops, lookups, hits.
 * Reads what the taps have queued first, so the numbers are current.
 */
export function stats(): AckStats {
  drainAll();
  const total = { ...retired, tableSize: 0, capacity: 0 };
  const list: AckTapStats[] = [];
  for (const r of taps) {
    const s = r.tap.stats();
    for (const c of COUNTERS) total[c] += s[c];
    total.tableSize += s.tableSize;
    total.capacity += s.capacity;
    list.push({ ...s, port: r.port, netns: r.netns });
  }
  return { ...total, taps: list };
}
