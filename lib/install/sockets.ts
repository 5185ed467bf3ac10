// `remoteAddress`, `remotePort` and `remoteFamily` of accepted sockets: the client's when a trusted
// proxy gave it, else exactly Node's own values. Node defines the three as non-configurable getters
// on net.Socket.prototype that return `this._getpeername()` (the object cached in `_peername`, or a
// getpeername(2)); `_getpeername` is an ordinary method, and it is the one replaced here while
// install() is on. tls.TLSSocket inherits it, and the HTTP/2 compat `req.socket` and
// `session.socket` Proxies read the getters on the session's real socket, so every view of one
// connection agrees.
import * as net from 'node:net';
import type { Endpoint } from '../core/types';
import type { Resolver } from '../resolve/resolver';
import type { HandleLike, PeerName } from '../util/node-socket';


interface AcceptedSocket extends net.Socket {
  server?: net.Server | null;
  _handle?: HandleLike | null;
  _peername?: PeerName;
}

interface ListeningServer extends net.Server {
  _handle?: object | null;
  [LISTEN_FAMILY]?: { handle: object; mapped: boolean };
}

// Per server: whether its listening socket is IPv6 (so IPv4 peers are written ::ffff:a.b.c.d).
const LISTEN_FAMILY = Symbol('node-toa.listen-family');

// `::ffff:a.b.c.d` of the IPv4 peers seen (mostly a handful of proxies): made once each. Bounded.
const MAPPED_LIMIT = 4096;
const mapped = new Map<string, string>();

function mappedText(ipv4: string): string {
  let text = mapped.get(ipv4);
  if (text === undefined) {
    text = `::ffff:${ipv4}`;
    if (mapped.size >= MAPPED_LIMIT) mapped.clear();
    mapped.set(ipv4, text);
  }
  return text;
}

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
 * `resolver` is the installed one (also the default resolver while install() is on): its answer
 * is cached on the socket and shared with realRemoteAddress() and the integrations, so the SYN is
 * read and decided once.
 */
export function patchSockets(resolver: Resolver): () => void {
  const proto = net.Socket.prototype as unknown as { _getpeername?: unknown };
  const nodeGetpeername = proto._getpeername;
  if (typeof nodeGetpeername !== 'function') {
    throw new Error('node-toa install(): this Node.js has no net.Socket.prototype._getpeername; cannot install');
  }

  /** The first read on a socket: undefined for sockets that stay Node's (the caller asks Node). */
  function first(socket: AcceptedSocket): PeerName | undefined {
    const server = socket.server;
    const handle = socket._handle;
    // Client sockets (no server), pipes (no getpeername), destroyed or in-memory sockets (no
    // handle): Node's values, untouched.
    if (
      server === null ||
      server === undefined ||
      handle === null ||
      handle === undefined ||
      typeof handle.getpeername !== 'function'
    ) {
      return undefined;
    }
    // Before the syscall, all that can be: how this server's sockets write IPv4 peers (a
    // dual-stack socket says ::ffff:a.b.c.d), and the descriptor.
    const mapped = mappedPeers(server as ListeningServer);
    const fd = handle.fd;
    // The server no longer listens (the family is unknown), or no descriptor: as Node.
    if (mapped === undefined || typeof fd !== 'number' || fd < 0) return undefined;
    // Where no packet answered, the resolver asks Node's own _getpeername (one getpeername).
    const found = resolver.peerName(socket, fd, server, nodeEndpoint);
    let peer: PeerName;
    if (found.source !== 'peer') {
      // The client: the (frozen) answer itself is the peer name; what else it says stays readable.
      peer = found;
    } else if (socket._peername !== undefined) {
      // No packet answered, so the resolver asked Node (getpeername): Node's object as it is.
      return socket._peername;
    } else if (found.family === 'IPv4' && mapped) {
      peer = { address: mappedText(found.address), family: 'IPv6', port: found.port };
    } else {
      // The SYN's source: Node's own value, without the getpeername.
      peer = found;
    }
    socket._peername = peer;
    return peer;
  }

  /** Node's answer as an Endpoint (what the resolver's fallback wants). */
  function nodeEndpoint(socket: object): Endpoint {
    const p = (nodeGetpeername as (this: object) => Partial<PeerName>).call(socket);
    const address = typeof p.address === 'string' ? p.address : '';
    return { address, port: typeof p.port === 'number' ? p.port : 0, family: p.family === 'IPv6' || address.includes(':') ? 'IPv6' : 'IPv4' };
  }

  // Node's own returns `_peername` whenever it is set (whatever the handle's state), so doing the
  // same first keeps its semantics; only the first read differs.
  const getpeername = function _getpeername(this: AcceptedSocket): Partial<PeerName> {
    const cached = this._peername;
    if (cached !== undefined) return cached;
    const peer = first(this);
    return peer !== undefined ? peer : (nodeGetpeername as (this: net.Socket) => Partial<PeerName>).call(this);
  };
  proto._getpeername = getpeername;

  return () => {
    // Only where ours is still in place (nobody wrapped it since).
    if (proto._getpeername === getpeername) proto._getpeername = nodeGetpeername;
  };
}
