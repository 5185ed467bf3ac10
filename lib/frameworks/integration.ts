// What the Express, Fastify and Koa integrations share: their options (the core's plus setIp),
// turning TCP_SAVE_SYN on at the first request when the app never saw its server, and `ip`.
// Like every integration, it uses only the public API.
import {
  clusterPrimaryEnabled,
  createResolver,
  enable,
  isEnabled,
  type EnableOptions,
  type ProxyProtocolOption,
  type RealAddress,
  type TapOptions,
  type ToaOptions,
} from '../index';
// Not public: checks `ack` where the integration is created, as enable() would check it later.
import { CORE_KEYS, checkOptionKeys } from '../core/options';
import { compileTap } from '../tap/options';
import { compileProxyProtocol } from '../proxy-protocol/options';
import { isServer } from '../util/server-like';
import { show } from '../util/show';
import { warnEnabledLate, warnTapFailedAt } from '../util/warnings';

export interface IntegrationOptions extends ToaOptions {
  /**
   * Make the framework's own `ip` (`req.ip`, `request.ip`, `ctx.ip`) the client's address when a
   * trusted proxy gave it (TOA), so rate limiters and loggers use it unchanged. Where there is no
   * TOA, `ip` stays the framework's answer (its trust proxy / X-Forwarded-For settings apply).
   * Default `false`: `ip` is left alone.
   */
  setIp?: boolean;
  /**
   * Also read TOA from the handshake ACK and first data packet (the ACK tap: the sock_ops program
   * or packet sockets, see `TapOptions.source`), as `enable(server, { ack })`. Default `false`.
   */
  ack?: boolean | TapOptions;
  /**
   * The Fastify plugin only (it enables its own server): read a PROXY protocol header from the
   * peers in `trustProxy` first, as `enable(server, { proxyProtocol })`. Express and Koa meet their
   * server too late: enable the server with it, and the middleware reads what it found.
   */
  proxyProtocol?: ProxyProtocolOption;
}

const KEYS: readonly string[] = [...CORE_KEYS, 'setIp', 'ack'];
const SERVER_KEYS: readonly string[] = [...KEYS, 'proxyProtocol'];

export interface CompiledIntegration {
  resolve: (socket: object) => RealAddress;
  setIp: boolean;
  /** What the integration passes to enable(): undefined unless `ack` was asked for. */
  enableOptions: EnableOptions | undefined;
}

/**
 * Validates the options where the user passed them and compiles the core ones once. `ownsServer`:
 * the integration enables its server itself (Fastify), so `proxyProtocol` is one of its options.
 */
export function compileIntegration(options: IntegrationOptions | undefined, where: string, ownsServer = false): CompiledIntegration {
  if (options === undefined) return { resolve: createResolver(), setIp: false, enableOptions: undefined };
  if (!ownsServer && typeof options === 'object' && options !== null && 'proxyProtocol' in options) {
    throw new TypeError(
      `${where}: proxyProtocol is a server option: the middleware runs after the header is read; ` +
        'pass it to toa.enable(server, { proxyProtocol }) or toa.listen(server, { port, proxyProtocol })',
    );
  }
  checkOptionKeys(options, ownsServer ? SERVER_KEYS : KEYS, where);
  const { setIp, ack, proxyProtocol, ...core } = options;
  if (setIp !== undefined && typeof setIp !== 'boolean') {
    throw new TypeError(`${where}: setIp must be a boolean, got ${show(setIp)}`);
  }
  const withTap = compileTap(ack, where) !== null;
  const withGate = compileProxyProtocol(proxyProtocol, where) !== null;
  let enableOptions: EnableOptions | undefined;
  if (withTap || withGate) {
    enableOptions = {};
    if (withTap) enableOptions.ack = ack;
    // The gate believes the plugin's trustProxy (else configure()'s, at each connection).
    if (withGate) {
      enableOptions.proxyProtocol = proxyProtocol;
      if (core.trustProxy !== undefined) enableOptions.trustProxy = core.trustProxy;
    }
  }
  // Only setIp/ack given: the core options still follow toa.configure().
  const resolve = Object.keys(core).length === 0 ? createResolver() : createResolver(core);
  return { resolve, setIp: setIp === true, enableOptions };
}

const seen = new WeakSet<object>();
let warnedLate = false;

/**
 * For integrations that meet their server only through a request (Express, Koa): on the first
 * request of each server, make sure its listening socket saves SYNs. If it did not, turn it on
 * now and say once that the connections before had none.
 */
export function enableOnFirstRequest(
  socket: object | null | undefined,
  where: string,
  enableOptions: EnableOptions | undefined,
): void {
  const server = (socket as { server?: unknown } | null | undefined)?.server;
  if (!isServer(server) || seen.has(server)) return;
  seen.add(server);
  const wasEnabled = isEnabled(server);
  // A round-robin cluster worker's server has no socket of its own: the primary's is the one.
  if (wasEnabled || clusterPrimaryEnabled()) {
    if (enableOptions !== undefined) enableTap(server, enableOptions, where);
    return;
  }
  if (enableOptions !== undefined) enableTap(server, enableOptions, where);
  else enable(server);
  if (isEnabled(server) && !warnedLate) {
    warnedLate = true;
    warnEnabledLate(where);
  }
}

/** enable() with the tap; a request must not fail because the tap cannot open (no capability). */
function enableTap(server: import('node:net').Server, enableOptions: EnableOptions, where: string): void {
  try {
    enable(server, enableOptions);
  } catch (error) {
    warnTapFailedAt(where, (error as NodeJS.ErrnoException).code, (error as Error).message);
  }
}

/**
 * A per-request `ip` property, defined on the request object so it hides the framework's getter: the TOA client where a trusted proxy gave one, else what the
 * framework's own getter (found on the prototype chain at read time) says.
 */
export function ipProperty(realAddress: (self: object) => RealAddress): PropertyDescriptor {
  return {
    configurable: true,
    enumerable: true,
    get(this: object): unknown {
      const real = realAddress(this);
      if (real.source !== 'peer') return real.address;
      return Reflect.get(Object.getPrototypeOf(this) as object, 'ip', this);
    },
    // Code that assigns ip itself (Koa has a setter for it) gets its value back.
    set(this: object, value: unknown): void {
      Object.defineProperty(this, 'ip', { value, writable: true, configurable: true, enumerable: true });
    },
  };
}
