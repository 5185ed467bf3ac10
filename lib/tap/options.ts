// The `ack` option (enable, listen, the integrations): validated where the user passed it.
import { checkOptionKeys, integerOption } from '../core/options';
import { show } from '../util/show';

/** `{ ack: { … } }`: the tap's table bounds. */
export interface TapOptions {
  /** Connections remembered between their handshake ACK and the lookup. Default 65536. */
  capacity?: number;
  /** Milliseconds an unclaimed entry is kept. Default 30000. */
  maxAge?: number;
  /**
   * How the handshake's packets are read: `'sockops'`, a BPF program in the server's cgroup that
   * keeps them in each connection's socket storage (one system call per connection, nothing
   * copied for anyone else: needs CAP_BPF and CAP_NET_ADMIN, cgroup v2, Linux 5.12); `'packet'`,
   * packet sockets (CAP_NET_RAW); `'auto'` (the default), sockops where it loads, else packet.
   */
  source?: TapSource;
}

export type TapSource = 'auto' | 'sockops' | 'packet';
const SOURCES: readonly TapSource[] = ['auto', 'sockops', 'packet'];

/** @deprecated the same as TapOptions: the option is `ack`, the thing it opens the ACK tap. */
export type AckOptions = TapOptions;

export interface CompiledTap {
  readonly capacity: number;
  readonly maxAgeMs: number;
  readonly source: TapSource;
}

const DEFAULTS: CompiledTap = Object.freeze({ capacity: 65536, maxAgeMs: 30000, source: 'auto' });
// The native table's own bounds (native/tap_addon.cc checks the same).
export const MAX_CAPACITY = 1 << 24;
export const MIN_MAX_AGE_MS = 100;
export const MAX_MAX_AGE_MS = 3600000;
const KEYS: readonly string[] = ['capacity', 'maxAge', 'source'];

/** Validates `ack`: null when the tap is off. */
export function compileTap(value: unknown, where: string): CompiledTap | null {
  if (value === undefined || value === false) return null;
  if (value === true) return DEFAULTS;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(
      `${where}: options.ack must be a boolean or an object such as { capacity: 65536, maxAge: 30000 }, got ${show(value)}`,
    );
  }
  checkOptionKeys(value, KEYS, where, 'ack.');
  const o = value as Record<string, unknown>;
  return Object.freeze({
    capacity: o.capacity === undefined ? DEFAULTS.capacity : integerOption(o.capacity, 'ack.capacity', 1, MAX_CAPACITY, where),
    maxAgeMs:
      o.maxAge === undefined ? DEFAULTS.maxAgeMs : integerOption(o.maxAge, 'ack.maxAge', MIN_MAX_AGE_MS, MAX_MAX_AGE_MS, where),
    source: o.source === undefined ? DEFAULTS.source : tapSource(o.source, `${where}: options.ack.source`),
  });
}

/** Validates a tap source (`ack.source`); `what` names it in the error. */
export function tapSource(value: unknown, what: string): TapSource {
  if (!SOURCES.includes(value as TapSource)) {
    throw new TypeError(`${what} must be one of ${SOURCES.map((s) => `'${s}'`).join(', ')}, got ${show(value)}`);
  }
  return value as TapSource;
}
