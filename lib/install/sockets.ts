// `remoteAddress`, `remotePort` and `remoteFamily` of accepted sockets: the client's when a trusted
// proxy gave it, else exactly Node's own values. Node defines the three as non-configurable getters
// on net.Socket.prototype that return `this._getpeername()` (the object cached in `_peername`, or a
// getpeername(2)); `_getpeername` is an ordinary method, and it is the one replaced here while
// install() is on. tls.TLSSocket inherits it, and the HTTP/2 compat `req.socket` and
// `session.socket` Proxies read the getters on the session's real socket, so every view of one
// connection agrees.
import * as net from 'node:net';
import type { RealAddress } from '../core/types';

/** What `_getpeername()` returns, and what the getters read. */
interface Peername {
  address: string;
  family: string;
  port: number;
}

interface HandleLike {
  getpeername?: unknown;
}

interface AcceptedSocket extends net.Socket {
  server?: net.Server | null;
  _handle?: HandleLike | null;
  _peername?: Peername;
}

interface ListeningServer extends net.Server {
  _handle?: object | null;
  [LISTEN_FAMILY]?: { handle: object; mapped: boolean };
}

// Per server: whether its listening socket is IPv6 (so IPv4 peers are written ::ffff:a.b.c.d).
const LISTEN_FAMILY = Symbol('node-toa.listen-family');

/**
 * Whether accepted sockets of `server` are IPv6 ones (a dual-stack `::` listener writes IPv4
 * peers as `::ffff:a.b.c.d`, family 'IPv6'); undefined when the server no longer listens.
 */
function mappedPeers(server: ListeningServer): boolean | undefined {
  const handle = server._handle;
  if (handle === null || handle === undefined) return undefined;
  const known = server[LISTEN_FAMILY];
  if (known !== undefined && known.handle === handle) return known.mapped;
  let address: ReturnType<net.Server['address']>;
  try {
    address = server.address();
  } catch {
    return undefined;
  }
  if (address === null || typeof address !== 'object') return undefined;
  const mapped = address.family === 'IPv6' || (address.family as unknown) === 6;
  server[LISTEN_FAMILY] = { handle, mapped };
  return mapped;
}

/**
 * Replaces `net.Socket.prototype._getpeername`; returns the function that puts Node's back.
 * `resolve` is the installed resolver (cached per socket, shared with realRemoteAddress() and the
 * integrations: the SYN is read once).
 */
export function patchSockets(resolve: (socket: object) => RealAddress): () => void {
  const proto = net.Socket.prototype as unknown as { _getpeername?: unknown };
  const nodeGetpeername = proto._getpeername;
  if (typeof nodeGetpeername !== 'function') {
    throw new Error('node-toa install(): this Node.js has no net.Socket.prototype._getpeername; cannot install');
  }
  // The socket being resolved: the resolver's fallback reads its remoteAddress, which is Node's.
  let resolving: object | null = null;

  /** The first read on a socket: undefined for sockets that stay Node's (the caller asks Node). */
  function first(socket: AcceptedSocket): Peername | undefined {
    const server = socket.server;
    const handle = socket._handle;
    // Client sockets (no server), pipes (no getpeername), destroyed or in-memory sockets (no
    // handle), and the resolver's own fallback read: Node's values, untouched.
    if (
      server === null ||
      server === undefined ||
      handle === null ||
      handle === undefined ||
      typeof handle.getpeername !== 'function' ||
      resolving === socket
    ) {
      return undefined;
    }
    let real: RealAddress;
    resolving = socket;
    try {
      real = resolve(socket);
    } finally {
      resolving = null;
    }
    let peer: Peername;
    if (real.source !== 'peer') {
      peer = { address: real.address, family: real.family, port: real.port };
    } else if (socket._peername !== undefined) {
      // No packet answered, so the resolver asked Node (getpeername): Node's object as it is.
      return socket._peername;
    } else {
      // The SYN's own IP source, written as Node writes getpeername's answer on this socket.
      const mapped = real.family === 'IPv4' ? mappedPeers(server as ListeningServer) : false;
      if (mapped === undefined) return undefined; // the server closed: ask the kernel, as Node
      peer = mapped
        ? { address: `::ffff:${real.address}`, family: 'IPv6', port: real.port }
        : { address: real.address, family: real.family, port: real.port };
    }
    socket._peername = peer;
    return peer;
  }

  // Node's own returns `_peername` whenever it is set (whatever the handle's state), so doing the
  // same first keeps its semantics; only the first read differs.
  const getpeername = function _getpeername(this: AcceptedSocket): Partial<Peername> {
    const cached = this._peername;
    if (cached !== undefined) return cached;
    const peer = first(this);
    return peer !== undefined ? peer : (nodeGetpeername as (this: net.Socket) => Partial<Peername>).call(this);
  };
  proto._getpeername = getpeername;

  return () => {
    // Only where ours is still in place (nobody wrapped it since).
    if (proto._getpeername === getpeername) proto._getpeername = nodeGetpeername;
  };
}
