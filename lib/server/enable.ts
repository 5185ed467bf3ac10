// Turns on TCP_SAVE_SYN on a server's listening socket. Only SYNs that arrive after this are
// saved, so it must run before clients connect: now if the server listens, else on 'listening'.
import type { Socket as DgramSocket } from 'node:dgram';
import type { Server } from 'node:net';
import { binding, savedSynAvailable } from '../addon/binding';
import { isServer } from '../util/server-like';
import { socketFd } from '../util/socket-fd';
import { warnNoFdRuntime, warnNoListeningFd, warnSaveSynFailed, warnSavedSynUnsupported } from '../util/warnings';
import { errnoName } from '../util/errno';
import { checkTapSupport, openTap } from '../tap/open';
import { compileTap, type CompiledTap, type TapOptions } from '../tap/options';
import { compileSources, type Sources } from '../tap/sources';
import { checkOptionKeys } from '../core/options';
import { compileTrust, type TrustFn } from '../core/trust';
import type { ProxyProtocolOption, TrustProxy } from '../core/types';
import { attachGate } from '../proxy-protocol/gate';
import { compileProxyProtocol, type CompiledProxyProtocol } from '../proxy-protocol/options';
import { defaultResolver } from '../resolve/defaults';
import { clusterPrimaryEnabled } from './cluster';
import { typeName } from '../util/show';
import { otherRuntime } from '../util/runtime';
import { enableUdp, isDgramSocket } from '../udp/socket';
import type { UdpOptions } from '../udp/options';

/** Sets TCP_SAVE_SYN on the listening socket; returns false (with a warning) when it cannot. */
export function enableListening(server: Server): boolean {
  if (!savedSynAvailable || binding === null) {
    warnSavedSynUnsupported();
    return false;
  }
  const fd = socketFd(server);
  if (fd < 0) {
    // A round-robin worker: the primary's enableCluster() already saves the SYNs it accepts.
    if (clusterPrimaryEnabled()) return false;
    const runtime = otherRuntime();
    if (runtime !== null) {
      warnNoFdRuntime(runtime);
      return false;
    }
    warnNoListeningFd();
    return false;
  }
  const err = binding.setSaveSyn(fd, true);
  if (err !== 0) {
    warnSaveSynFailed(errnoName(err), err);
    return false;
  }
  return true;
}

/** Options of `enable(server, options)`. */
export interface EnableOptions {
  /**
   * Also read TOA from the handshake ACK and first data packet, for proxies that do not tag the
   * SYN: opens a packet tap (needs CAP_NET_RAW). `true`, or `{ capacity, maxAge }` to bound it.
   */
  ack?: boolean | TapOptions;
  /**
   * Read a PROXY protocol v1/v2 header at the start of each connection from a trusted proxy,
   * before the server sees the connection: `true` (required), `'optional'`, or `{ mode, timeout,
   * maxHeaderSize }`. Default `false`.
   */
  proxyProtocol?: ProxyProtocolOption;
  /**
   * The proxies of this server: the peers whose PROXY headers are read (with `proxyProtocol`), and
   * the only senders whose packets the ACK tap copies to user space (with `ack`: a SYN flood or a
   * forged option from anyone else stays in the kernel). Default: the PROXY gate follows the trust
   * of `configure()` / `install()` at each connection, and the tap copies every sender's packets.
   */
  trustProxy?: TrustProxy;
}

const ENABLE_KEYS: readonly string[] = ['ack', 'proxyProtocol', 'trustProxy'];

/** What a server gets: its PROXY protocol gate and ACK tap, and whom it trusts for them. */
export interface CompiledServer {
  readonly pp: CompiledProxyProtocol | null;
  readonly tap: CompiledTap | null;
  /** The server's own trust (enable's trustProxy); undefined follows the default resolver's. */
  readonly trust: TrustFn | undefined;
  /** The tap's trusted senders (null: every sender). */
  readonly sources: Sources;
}

/** Validates `ack`, `proxyProtocol` and the `trustProxy` that goes with them. */
export function compileServer(
  options: { ack?: unknown; proxyProtocol?: unknown; trustProxy?: unknown } | undefined,
  where: string,
): CompiledServer {
  const pp = compileProxyProtocol(options?.proxyProtocol, where);
  const tap = compileTap(options?.ack, where);
  const given = options?.trustProxy as TrustProxy | undefined;
  if (given !== undefined && pp === null && tap === null) {
    throw new TypeError(
      `${where}: options.trustProxy is read with proxyProtocol or ack only (pass it to realRemoteAddress(), configure() or install() otherwise)`,
    );
  }
  const trust = given === undefined ? undefined : compileTrust(given);
  return { pp, tap, trust, sources: given === undefined ? null : compileSources(given) };
}

/**
 * A TCP server: TCP_SAVE_SYN (and the ACK tap, the PROXY gate). A dgram.Socket (before or after
 * bind): its datagrams' SPP / PROXY v2 / UOA clients in 'message', and replies through their proxy
 * (lib/udp/).
 */
export function enable(socket: DgramSocket, options?: UdpOptions): DgramSocket;
// Last: Parameters<typeof enable> reads the last overload.
export function enable<T extends Server>(server: T, options?: EnableOptions): T;
export function enable<T extends Server>(target: T | DgramSocket, options?: EnableOptions | UdpOptions): T | DgramSocket {
  if (isDgramSocket(target)) return enableUdp(target, options as UdpOptions | undefined);
  return enableServer(target, options as EnableOptions | undefined);
}

function enableServer<T extends Server>(server: T, options?: EnableOptions): T {
  if (!isServer(server)) {
    throw new TypeError('enable(server): server must be a net.Server (or an http, https, http2 or tls server)');
  }
  const where = 'enable(server, options)';
  checkOptionKeys(options, ENABLE_KEYS, where);
  return enableCompiled(server, compileServer(options, where));
}

/** enable() with options already checked where the user passed them (listen() checks its own). */
export function enableCompiled<T extends Server>(server: T, compiled: CompiledServer): T {
  const { pp, tap, trust, sources } = compiled;
  // At once, listening or not: the first connection must already meet the gate.
  if (pp !== null) attachGate(server, pp, trust !== undefined ? () => trust : () => defaultResolver().trust);
  const opensTap = tap !== null && checkTapSupport(tap, !server.listening);
  if (server.listening) {
    enableListening(server);
    if (opensTap) openTap(server, tap, sources);
  } else {
    server.once('listening', () => {
      enableListening(server);
      if (!opensTap) return;
      try {
        openTap(server, tap, sources);
      } catch (error) {
        server.emit('error', error);
      }
    });
  }
  return server;
}

/** Whether TCP_SAVE_SYN is on for this server's listening socket (asks the kernel). */
export function isEnabled(server: Server): boolean {
  if (typeof server !== 'object' || server === null) {
    throw new TypeError(`isEnabled(server): server must be a net.Server, got ${typeName(server)}`);
  }
  if (binding === null || !savedSynAvailable) return false;
  const fd = socketFd(server);
  return fd >= 0 && binding.getSaveSyn(fd) === 1;
}
