// node-toa: the real client address of TCP connections that came through an L4 proxy which puts
// it into a TCP option (TOA), read from the saved SYN, without a kernel module.
import { binding, loadError, savedSynAvailable } from './addon/binding';
import { compileOptions } from './core/options';
import { Resolver } from './core/resolver';
import { refused } from './core/counters';
import { defaultResolver, setDefaultResolver } from './core/defaults';
import type { Refusal } from './core/select';
import type { RealAddress, ToaOptions } from './core/types';
import { tapStats, type TapStats } from './tap/registry';

export type { Endpoint, Family, KindSpec, RealAddress, ToaLayout, ToaOptions, TrustProxy } from './core/types';
export { enable, isEnabled, type EnableOptions } from './server/enable';
export type { Refusal } from './core/select';
export type { AckOptions, TapOptions } from './tap/options';
export type { TapStats, TapStatsEntry, TapStatsEntry as AckTapStats } from './tap/registry';
export { listen, type ListenOptions } from './server/listen';
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
  /**
   * Connections whose packet from a trusted proxy held TOA-shaped options that were not believed,
   * by reason: several options (`ambiguous`, with `multiple: 'ignore'`), or the deciding option
   * named no client (a TCP Fast Open cookie in a SYN, 0.0.0.0 or ::, a bad version byte).
   */
  refused: Record<Refusal, number>;
}

/** @deprecated the same as Stats */
export type AckStats = Stats;

/**
 * Counters since start: the ACK taps' (packets, TOA found, table size, evictions, drops, lookups,
 * hits; summed over this thread's taps, each in `taps`) and the resolvers' refusals.
 */
export function stats(): Stats {
  return { ...tapStats(), refused: { ...refused } };
}
