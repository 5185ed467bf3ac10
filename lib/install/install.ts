// install(): the whole process at once, as a vendor kernel module would do it but with trust.
// Every TCP server saves SYNs from before listen(2) (the listen hook), optionally with the ACK tap,
// and accepted sockets' remoteAddress/remotePort/remoteFamily are the client's when a trusted
// proxy gave it (sockets.ts). node-toa/preload calls it with the environment's options.
import cluster from 'node:cluster';
import type * as net from 'node:net';
import { binding, savedSynAvailable } from '../addon/binding';
import { CORE_KEYS, checkOptionKeys, compileOptions } from '../core/options';
import { defaultResolver, setDefaultResolver } from '../resolve/defaults';
import { Resolver } from '../resolve/resolver';
import type { ProxyProtocolOption, ToaOptions } from '../core/types';
import { attachGate, detachGate, proxySupported } from '../proxy-protocol/gate';
import { compileProxyProtocol } from '../proxy-protocol/options';
import { CLUSTER_MARK, listeningFds } from '../server/cluster';
import { saveSynOn, useListenHook, type ListenHookUser } from '../server/listen-hook';
import { checkTapSupport, openTap } from '../tap/open';
import { compileTap, type CompiledTap, type TapOptions } from '../tap/options';
import { closeTap } from '../tap/registry';
import { compileSources, type Sources } from '../tap/sources';
import { show } from '../util/show';
import {
  warnAckSynOnly,
  warnInstallLate,
  warnInstallNoHook,
  warnInstallTrustsNoOne,
  warnSaveSynFailed,
  warnSavedSynUnsupported,
  warnTapFailed,
} from '../util/warnings';
import { patchSockets } from './sockets';

/** Options of `install(options)`: the core's, and `ack`. */
export interface InstallOptions extends ToaOptions {
  /**
   * The ACK tap, for proxies that put TOA into the handshake ACK or first data packet: `'auto'`
   * (default) opens it on every TCP server where the process may (the sock_ops program with
   * CAP_BPF and CAP_NET_ADMIN, else packet sockets with CAP_NET_RAW) and else reads SYNs only
   * (with one warning); `true` (or `{ capacity, maxAge, source }`) requires it (install() throws
   * ERR_TOA_NO_CAP_NET_RAW when neither opens); `false` reads SYNs only.
   */
  ack?: 'auto' | boolean | TapOptions;
  /**
   * Read a PROXY protocol header at the start of every connection from a trusted proxy (trustProxy),
   * on every TCP server: `true` (required), `'optional'`, or `{ mode, timeout, maxHeaderSize }`.
   * Default `false`.
   */
  proxyProtocol?: ProxyProtocolOption;
}

const KEYS: readonly string[] = [...CORE_KEYS, 'ack', 'proxyProtocol'];
/** Where the options came from, for messages: the code's call, or node-toa/preload's environment. */
export type InstallOrigin = 'install(options)' | 'preload';


let current: (() => void) | null = null;

/** Whether install() (or node-toa/preload) is on in this process (this thread). */
export function installed(): boolean {
  return current !== null;
}

function alreadyInstalled(): Error {
  const error = new Error(
    'node-toa: install() is already on in this process (node-toa/preload, or an earlier install()); ' +
      'call the function the first install() returned before installing again',
  ) as NodeJS.ErrnoException;
  error.code = 'ERR_TOA_ALREADY_INSTALLED';
  return error;
}

type AckMode = { tap: CompiledTap | null; auto: boolean };

function compileAck(value: unknown, where: string): AckMode {
  if (value === undefined || value === 'auto') return { tap: compileTap(true, where), auto: true };
  if (typeof value === 'string' || (typeof value !== 'boolean' && (typeof value !== 'object' || value === null || Array.isArray(value)))) {
    throw new TypeError(
      `${where}: options.ack must be 'auto', a boolean or an object such as { capacity: 65536, maxAge: 30000 }, got ${show(value)}`,
    );
  }
  return { tap: compileTap(value, where), auto: false };
}


/** For ack 'auto': whether a tap can open here; says once why not. */
function autoTapPossible(origin: InstallOrigin, tap: CompiledTap): boolean {
  if (binding === null || !binding.tapSupported) return false; // not Linux: SYNs are all there is
  const sockops = tap.source === 'packet' ? null : binding.probeSockops();
  if (sockops !== null && sockops.errno === 0) return true;
  const err = binding.probePacketSocket();
  if (err === 0) return true;
  warnAckSynOnly(sockops, err, origin === 'preload');
  return false;
}

// node:cluster's round-robin primary listens with a server of its own, made with
// net.createServer(assert.fail) (Node's internal assert: a function named fail), and hands each
// connection to a worker. The workers, which resolve, open their own tap; one in the primary
// would only read every packet once more. (Should this ever not match, that tap is only waste.)
function isClusterInternal(server: net.Server): boolean {
  if (!cluster.isPrimary || Object.keys(cluster.workers ?? {}).length === 0) return false;
  const listeners = server.listeners('connection');
  return listeners.length === 1 && listeners[0].name === 'fail';
}

/**
 * Opens the tap of a server about to listen: before listen(2) where the handle is bound (no
 * connection can have come yet, so none is missed: opening takes milliseconds), else on
 * 'listening' (a server given an fd).
 */
function tapBeforeListen(server: net.Server, bound: boolean, tap: CompiledTap, sources: Sources, tapped: Set<net.Server>): void {
  if (isClusterInternal(server)) return;
  const open = () => {
    try {
      openTap(server, tap, sources);
      tapped.add(server);
      server.once('close', () => tapped.delete(server));
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      warnTapFailed(e.code, e.message);
    }
  };
  if (bound) open();
  else server.once('listening', open);
}

/** TCP listeners the process had before install(): TCP_SAVE_SYN now, and one warning. */
function lateListeners(user: ListenHookUser): void {
  let late = 0;
  for (const fd of listeningFds()) {
    if (binding!.getSaveSyn(fd) !== 0) continue;
    saveSynOn(fd, user);
    late++;
  }
  if (late > 0) warnInstallLate(late);
}

/** install() for node-toa/preload and the public call; `origin` words the messages. */
export function installFrom(options: InstallOptions | undefined, origin: InstallOrigin): () => void {
  const where = 'install(options)';
  checkOptionKeys(options, KEYS, where);
  const { ack, proxyProtocol, ...core } = options ?? {};
  const ackMode = compileAck(ack, where);
  const pp = compileProxyProtocol(proxyProtocol, where);
  if (pp !== null && !proxySupported()) {
    throw Object.assign(new Error('node-toa: proxyProtocol needs the native addon, which did not load here (see toa.support().error)'), {
      code: 'ERR_TOA_NO_ADDON',
    });
  }
  const resolver = new Resolver(compileOptions(core, where));
  if (current !== null) throw alreadyInstalled();
  // The capabilities are checked now, where the tap was asked for ('on' throws ERR_TOA_NO_CAP_NET_RAW
  // when neither source opens).
  let tap: CompiledTap | null = null;
  if (ackMode.tap !== null) {
    if (ackMode.auto) tap = autoTapPossible(origin, ackMode.tap) ? ackMode.tap : null;
    // Its taps open before listen(2) (tapBeforeListen), where the program is attached.
    else tap = checkTapSupport(ackMode.tap, false) ? ackMode.tap : null;
  }
  if (core.trustProxy === undefined) warnInstallTrustsNoOne(origin === 'preload');
  // The taps copy only the installed proxies' packets: a flood from anyone else stays in the kernel.
  const sources = tap !== null ? compileSources(core.trustProxy) : null;
  if (!savedSynAvailable || binding === null) warnSavedSynUnsupported();

  const tapped = new Set<net.Server>();
  const gated = new Set<net.Server>();
  const user: ListenHookUser = {
    saveSynFailed(name, err) {
      warnSaveSynFailed(name, err);
    },
    beforeListen(server, bound) {
      if (tap !== null) tapBeforeListen(server, bound, tap, sources, tapped);
      // The gate follows the default resolver's trust: this install()'s while it is on.
      if (pp !== null && !isClusterInternal(server)) {
        attachGate(server, pp, () => defaultResolver().trust);
        gated.add(server);
        server.once('close', () => gated.delete(server));
      }
    },
  };
  // The listen hook is also how servers meet the gate: where no SYN can be saved, only for it.
  const unhook = savedSynAvailable || pp !== null ? useListenHook(user) : null;
  if (savedSynAvailable && unhook === null) warnInstallNoHook();
  if (savedSynAvailable) lateListeners(user);
  // Where no SYN can be read (not Linux, no addon) the sockets stay Node's, at Node's cost.
  const unpatch = savedSynAvailable ? patchSockets(resolver) : () => undefined;
  // Calls without options (realRemoteAddress(socket), socket.realRemoteAddress(), the
  // integrations) follow the installed trust, as after configure(); undo puts the previous back.
  const previousDefaults = defaultResolver();
  setDefaultResolver(resolver);
  const hadMark = process.env[CLUSTER_MARK];
  if (savedSynAvailable && cluster.isPrimary) process.env[CLUSTER_MARK] = '1';

  const undo = () => {
    if (current !== undo) return;
    current = null;
    unpatch();
    unhook?.();
    if (defaultResolver() === resolver) setDefaultResolver(previousDefaults);
    for (const server of tapped) closeTap(server);
    tapped.clear();
    for (const server of gated) detachGate(server);
    gated.clear();
    if (hadMark === undefined) delete process.env[CLUSTER_MARK];
    else process.env[CLUSTER_MARK] = hadMark;
  };
  current = undo;
  return undo;
}

/**
 * Turns node-toa on for the whole process, first thing in the entry file: every TCP server the
 * process creates from now on saves SYNs from before listen(2), and `socket.remoteAddress`,
 * `remotePort` and `remoteFamily` of accepted sockets are the client's when a trusted proxy gave
 * it, else exactly Node's own. Returns the function that undoes it. `node-toa/preload` is this
 * with the options from the environment.
 *
 * @throws TypeError/RangeError for a bad option (naming it and the value); Error
 *   `ERR_TOA_ALREADY_INSTALLED` when on already; `ERR_TOA_NO_CAP_NET_RAW` for `ack: true` where no tap can open.
 */
export function install(options?: InstallOptions): () => void {
  return installFrom(options, 'install(options)');
}
