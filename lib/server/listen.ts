// toa.listen(server, options): the listening socket is made in native code with TCP_SAVE_SYN set
// before listen(2), then handed to Node, so not even the first SYN after start goes unsaved
// (enable() can only set it once Node has listened: a SYN in between is lost).
import cluster from 'node:cluster';
import { lookup } from 'node:dns/promises';
import { closeSync } from 'node:fs';
import * as net from 'node:net';
import { binding, savedSynAvailable } from '../addon/binding';
import { checkOptionKeys } from '../core/options';
import type { TapOptions } from '../tap/options';
import { compileServer, enable, enableCompiled, type CompiledServer } from './enable';
import type { ServerInternals } from './listen-hook';
import type { HandleLike } from '../util/node-socket';
import type { ProxyProtocolOption, TrustProxy } from '../core/types';
import { isServer } from '../util/server-like';
import { errnoName } from '../util/errno';
import { listenProblem } from '../util/address';
import { show, typeName } from '../util/show';

export interface ListenOptions {
  /** TCP port; 0 lets the kernel pick one (read it from `server.address()`). */
  port: number | string;
  /**
   * IP address or host name to listen on. Default: every address, IPv6 and IPv4 (`::`, or
   * `0.0.0.0` where IPv6 is off), as Node's `server.listen(port)` does.
   */
  host?: string;
  /** Length of the queue of connections not yet accepted. Default 511, as Node's. */
  backlog?: number;
  /**
   * SO_REUSEPORT: several processes listen on the same port and the kernel spreads connections
   * among them. Default `false`, except in a node:cluster worker, where each worker listens by
   * itself and needs it.
   */
  reusePort?: boolean;
  /** With an IPv6 host, accept IPv6 only (no IPv4-mapped clients). Default `false`. */
  ipv6Only?: boolean;
  /** Also open the ACK tap, as `enable(server, { ack })`: `true` or `{ capacity, maxAge }`. */
  ack?: boolean | TapOptions;
  /** Read a PROXY protocol header first, as `enable(server, { proxyProtocol })`. */
  proxyProtocol?: ProxyProtocolOption;
  /** The server's proxies (with `proxyProtocol` or `ack`), as enable()'s. */
  trustProxy?: TrustProxy;
}

interface Checked {
  port: number;
  host: string | undefined;
  backlog: number;
  reusePort: boolean;
  ipv6Only: boolean;
  enabled: CompiledServer;
}

const KEYS: readonly string[] = ['port', 'host', 'backlog', 'reusePort', 'ipv6Only', 'ack', 'proxyProtocol', 'trustProxy'];
const DEFAULT_BACKLOG = 511;
const MAX_BACKLOG = 0x7fffffff;


function checkPort(port: unknown): number {
  const n = typeof port === 'string' && /^\d{1,5}$/.test(port) ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw new TypeError(`listen(server, options): options.port must be an integer from 0 to 65535, got ${show(port)}`);
  }
  if (n < 0 || n > 65535) {
    throw new RangeError(`listen(server, options): options.port must be from 0 to 65535, got ${n}`);
  }
  return n;
}

function checkBoolean(options: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = options[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new TypeError(`listen(server, options): options.${key} must be a boolean, got ${show(value)}`);
  }
  return value;
}

function checkOptions(options: unknown): Checked {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(
      `listen(server, options): options must be an object such as { port: 3000 }, got ${typeName(options)}`,
    );
  }
  checkOptionKeys(options, KEYS, 'listen(server, options)');
  const o = options as Record<string, unknown>;
  if (o.port === undefined) throw new TypeError('listen(server, options): options.port is required (0 for any free port)');
  const port = checkPort(o.port);
  if (o.host !== undefined && (typeof o.host !== 'string' || o.host === '')) {
    throw new TypeError(`listen(server, options): options.host must be a non-empty string, got ${show(o.host)}`);
  }
  let backlog = DEFAULT_BACKLOG;
  if (o.backlog !== undefined) {
    if (typeof o.backlog !== 'number' || !Number.isInteger(o.backlog)) {
      throw new TypeError(`listen(server, options): options.backlog must be an integer, got ${show(o.backlog)}`);
    }
    if (o.backlog < 1 || o.backlog > MAX_BACKLOG) {
      throw new RangeError(`listen(server, options): options.backlog must be from 1 to ${MAX_BACKLOG}, got ${o.backlog}`);
    }
    backlog = o.backlog;
  }
  return {
    port,
    host: o.host as string | undefined,
    backlog,
    enabled: compileServer(o, 'listen(server, options)'),
    reusePort: checkBoolean(o, 'reusePort', cluster.isWorker),
    ipv6Only: checkBoolean(o, 'ipv6Only', false),
  };
}


/** An error shaped like Node's own listen errors (code, errno, syscall, address, port). */
function listenError(errno: number, host: string, port: number): NodeJS.ErrnoException {
  const code = errnoName(errno);
  const hint = code === 'EADDRINUSE' ? ' (to share a port between processes, pass reusePort: true in each)' : '';
  const why = listenProblem(code, host, port) + hint;
  const error = new Error(`node-toa listen: ${why} (${code})`) as NodeJS.ErrnoException & {
    address: string;
    port: number;
  };
  error.code = code;
  error.errno = -errno;
  error.syscall = 'listen';
  error.address = host;
  error.port = port;
  return error;
}

async function resolveHost(host: string): Promise<string> {
  if (net.isIP(host) !== 0) return host;
  try {
    return (await lookup(host)).address;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    e.message = `node-toa listen: cannot resolve host '${host}': ${e.message}`;
    throw e;
  }
}

/** errno values after which the IPv6 wildcard is retried as IPv4 (IPv6 is off on this host). */
const NO_IPV6 = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL', 'EPROTONOSUPPORT']);

function createFd(native: NonNullable<typeof binding>, host: string | undefined, o: Checked): { fd: number; host: string } {
  const first = host ?? '::';
  let fd = native.createListener(first, o.port, o.backlog, o.reusePort, o.ipv6Only);
  if (fd < 0 && host === undefined && NO_IPV6.has(errnoName(fd))) {
    fd = native.createListener('0.0.0.0', o.port, o.backlog, o.reusePort, false);
    if (fd < 0) throw listenError(-fd, '0.0.0.0', o.port);
    return { fd, host: '0.0.0.0' };
  }
  if (fd < 0) throw listenError(-fd, first, o.port);
  return { fd, host: first };
}

function whenListening(server: net.Server, start: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    try {
      start();
    } catch (error) {
      server.off('error', onError);
      server.off('listening', onListening);
      reject(error);
    }
  });
}

// Node 18 sends listen(handle) in a cluster worker to the primary, which cannot listen on it
// (ERR_INVALID_ARG_VALUE there); Node 19 and later listen in the worker. On 18 a worker does what
// Node itself does outside a worker: the server takes the handle, then its _listen2.
const HANDLE_GOES_TO_PRIMARY = cluster.isWorker && Number(process.versions.node.split('.')[0]) < 19;

function listenHere(server: net.Server, holder: net.Socket, backlog: number): void {
  (server as ServerInternals)._handle = (holder as unknown as { _handle: HandleLike | null })._handle;
  (server as ServerInternals)._listen2(null, -1, -1, backlog);
}

/**
 * Hands a listening fd to `server`. `server.listen({ fd })` would not do in a node:cluster
 * worker: Node sends the fd's number to the primary, where it means nothing. `listen(handle)`
 * with a socket wrapping the fd is Node's documented form for a handle the process owns; it
 * listens right here, in every kind of process.
 */
function adopt(server: net.Server, fd: number, backlog: number): Promise<void> {
  let holder: net.Socket;
  try {
    // Not readable: a stream must never try to read from a listening socket.
    holder = new net.Socket({ fd, readable: false, writable: false });
  } catch (error) {
    closeSync(fd);
    return Promise.reject(error);
  }
  return whenListening(server, () => {
    try {
      if (HANDLE_GOES_TO_PRIMARY) listenHere(server, holder, backlog);
      else server.listen(holder, backlog);
    } catch (error) {
      holder.destroy();
      throw error;
    }
  });
}

async function listenChecked<T extends net.Server>(server: T, o: Checked): Promise<T> {
  if (!savedSynAvailable || binding === null) {
    // No saved SYN here (not Linux, or no addon): listen as Node would; enable() says why once.
    await whenListening(server, () => {
      server.listen({ port: o.port, host: o.host, backlog: o.backlog, ipv6Only: o.ipv6Only, reusePort: o.reusePort } as net.ListenOptions);
    });
    enable(server);
    return server;
  }
  const host = o.host === undefined ? undefined : await resolveHost(o.host);
  // Checked again after the lookup: the server may have been started meanwhile.
  if (server.listening) throw alreadyListening();
  const { fd } = createFd(binding, host, o);
  await adopt(server, fd, o.backlog);
  return server;
}

function alreadyListening(): Error {
  const error = new Error('node-toa listen: the server is already listening; pass a server that was not started') as NodeJS.ErrnoException;
  error.code = 'ERR_SERVER_ALREADY_LISTEN';
  return error;
}

/**
 * Starts `server` listening on a socket that had TCP_SAVE_SYN before listen(2), so the TOA of
 * every connection, the very first included, can be read. Resolves with the server once it
 * listens. Wrong options throw here (TypeError/RangeError); a port in use, a forbidden port or
 * an address not of this machine rejects with an error naming host:port and its `code`.
 *
 * Off Linux, or without the addon, it listens as `server.listen({ port, host })` would.
 *
 * @example
 *   const server = await toa.listen(http.createServer(app), { port: 8080 });
 */
export function listen<T extends net.Server>(server: T, options: ListenOptions): Promise<T> {
  if (!isServer(server)) {
    throw new TypeError('listen(server, options): server must be a net.Server (or an http, https, http2 or tls server)');
  }
  const checked = checkOptions(options);
  if (server.listening) return Promise.reject(alreadyListening());
  // The tap opens on 'listening'; the gate is on at once.
  if (checked.enabled.tap !== null || checked.enabled.pp !== null) enableCompiled(server, checked.enabled);
  return listenChecked(server, checked);
}
