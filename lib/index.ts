// node-toa: the real client address of TCP connections that came through an L4 proxy which puts
// it into a TCP option (TOA), read from the saved SYN, without a kernel module.
// The published .d.ts use Node's types (net.Socket, servers): bring @types/node along, since TypeScript 7
// (and any tsconfig with `types`) no longer includes @types/* on its own. preserve: tsc >= 5.5 drops it otherwise.
/// <reference types="node" preserve="true" />
import { binding, loadError, savedSynAvailable } from './addon/binding';
import { compileOptions } from './core/options';
import { Resolver } from './resolve/resolver';
import { defaultResolver, setDefaultResolver } from './resolve/defaults';
import { proxyProtocolTotal, refusedTotal, snapshot, type MetricCounts, type ProxyProtocolCounts } from './core/metrics';
import type { RealAddress, RefusedReason, ToaOptions } from './core/types';
import { tapStats, type TapStats, type TapStatsEntry } from './tap/registry';

export type {
  Endpoint,
  Family,
  KindSpec,
  ProxyProtocolInfo,
  ProxyProtocolOption,
  ProxySsl,
  ProxyTlv,
  RealAddress,
  RefusedReason,
  ToaLayout,
  ToaOptions,
  TrustProxy,
} from './core/types';
export { enable, isEnabled, type EnableOptions } from './server/enable';
export type { MetricCounts, ProxyProtocolCounts } from './core/metrics';
export type { RefusedOption, ResolveMessage } from './resolve/resolver';
export type { WarningMessage } from './util/warnings';
export type { AckOptions, TapOptions, TapSource } from './tap/options';
export type { TapStats, TapStatsEntry } from './tap/registry';
/** @deprecated the same as TapStatsEntry */
export type AckTapStats = TapStatsEntry;
export { listen, type ListenOptions } from './server/listen';
export type { UdpCounts } from './core/metrics';
export type { UdpOptions, UdpFlowOptions } from './udp/options';
export type { UdpRemoteInfo } from './udp/receive';
export type { UdpAnswer, UdpRefusedReason, UdpResolveMessage } from './udp/report';
export { enableCluster, clusterPrimaryEnabled } from './server/cluster';
export { install, installed, type InstallOptions } from './install/install';

// Options objects compiled before: passing the same object again costs a WeakMap lookup.
const compiled = new WeakMap<object, Resolver>();

/**
 * Sets the process-wide defaults used by every call that passes no options (including the
 * framework integrations created without options). Validates them now.
 */
export function configure(options: ToaOptions): void {
  if (options === undefined) throw new TypeError('configure(options): options must be an object, got undefined');
  setDefaultResolver(new Resolver(compileOptions(options, 'configure')));
}

// The options object of the last call, and its resolver: a handler passing the same constant
// options on every request skips even the WeakMap.
let lastOptions: object | undefined;
let lastResolver: Resolver | undefined;

// Options written as a literal in the call (`realRemoteAddress(s, { trustProxy: '10.0.0.0/8' })`)
// are a new object every time: compile each distinct content once. Functions have no content
// key; such options are compiled per object. Bounded, as the contents come from code.
const byContent = new Map<string, Resolver>();
const BY_CONTENT_LIMIT = 64;

function contentKey(options: ToaOptions): string | undefined {
  if (typeof options !== 'object' || options === null || typeof options.trustProxy === 'function') return undefined;
  try {
    return JSON.stringify(options);
  } catch {
    return undefined;
  }
}

function resolverFor(options: ToaOptions | undefined, where: string): Resolver {
  if (options === undefined) return defaultResolver();
  if (options === lastOptions) return lastResolver!;
  let r = typeof options === 'object' && options !== null ? compiled.get(options) : undefined;
  if (r === undefined) {
    const key = contentKey(options);
    r = key === undefined ? undefined : byContent.get(key);
    if (r === undefined) {
      r = new Resolver(compileOptions(options, where));
      if (key !== undefined) {
        if (byContent.size >= BY_CONTENT_LIMIT) byContent.clear();
        byContent.set(key, r);
      }
    }
    compiled.set(options, r);
  }
  lastOptions = options;
  lastResolver = r;
  return r;
}

/**
 * The client of `socket`: from a trusted proxy's TCP option address when there is one, else the
 * peer. The first call per socket reads the saved SYN (once: the kernel frees it); later calls
 * return the cached answer.
 */
export function realRemoteAddress(socket: object, options?: ToaOptions): RealAddress {
  return resolverFor(options, 'realRemoteAddress').resolve(socket);
}

/**
 * Compiles options once and returns a function that answers like `realRemoteAddress(socket)`.
 * With no options it follows `configure()`, also when that is called later.
 */
export function createResolver(options?: ToaOptions): (socket: object) => RealAddress {
  if (options === undefined) return (socket) => defaultResolver().resolve(socket);
  const r = new Resolver(compileOptions(options, 'createResolver'));
  return (socket) => r.resolve(socket);
}

/** What this process can do: whether the addon loaded and saved SYNs can be read here. */
export function support(): { addon: boolean; savedSyn: boolean; error?: string } {
  return {
    addon: binding !== null,
    savedSyn: savedSynAvailable,
    ...(loadError !== null ? { error: loadError.message } : {}),
  };
}

/** What `stats()` returns: the ACK taps' counters, and what the resolvers refused. */
export interface Stats extends TapStats {
  /** The same as `metrics().refused`: connections whose options were not believed, by reason. */
  refused: Record<RefusedReason, number>;
  /** The same as `metrics().proxyProtocol`: PROXY headers read, and connections closed for theirs. */
  proxyProtocol: ProxyProtocolCounts;
}

/** @deprecated the same as Stats */
export type AckStats = Stats;

/**
 * The ACK taps' counters (packets, TOA found, table size, evictions, drops, lookups, hits; summed
 * over this thread's taps, each in `taps`) and the resolvers' refusals.
 */
export function stats(): Stats {
  return { ...tapStats(), refused: refusedTotal(), proxyProtocol: proxyProtocolTotal() };
}

/** What `metrics()` returns: the counts of every port summed, each port's, and the taps'. */
export interface Metrics extends MetricCounts {
  /** The same counts per listening port (the server's port; `'0'` for sockets without a server). */
  ports: Record<string, MetricCounts>;
  /** The ACK taps: packets the kernel dropped, entries evicted by capacity, lookups that found nothing. */
  tap: { drops: number; evictions: number; misses: number };
}

/**
 * Counters since start, for a metrics exporter: connections resolved by source, by packet and
 * by option kind, refused by reason, without a saved SYN, per listening port and summed; and the
 * taps' drops, evictions and misses. Each connection counts once, at its first resolution.
 * Cheap enough to call at scrape rate.
 */
export function metrics(): Metrics {
  const { total: sum, ports } = snapshot();
  const tap = tapStats();
  return { ...sum, ports, tap: { drops: tap.drops, evictions: tap.evictions, misses: tap.lookups - tap.hits } };
}
