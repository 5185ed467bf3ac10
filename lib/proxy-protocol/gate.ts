// The gate: a server's accepted sockets are held until the PROXY header at their start has been
// read, then given to the server's own 'connection' listeners (net, http, https, tls, http2 and the
// user's) with the header gone from the stream, so TLS's ClientHello, pipelined HTTP requests and
// h2c's preface arrive once, in order. A header already whole at accept is taken off the socket
// there (record.ts), whatever followed it left in the kernel; otherwise the socket is read as a
// stream (stream-gate.ts) and what followed the header is put back in front.
//
// The instance's `emit` is wrapped rather than its 'connection' listeners moved: listeners added
// later (a framework that attaches after enable(), http2's own) are gated too, listeners() still
// shows the server's own, and nothing else about the server changes. Only sockets the server
// accepted (net.Socket with a TCP handle) go through; anything a user emits (an in-memory duplex)
// and sockets already gated pass as they are.
import * as net from 'node:net';
import { binding } from '../addon/binding';
import { trustNone, type TrustFn } from '../core/trust';
import { endpoint } from '../core/decide';
import type { Endpoint } from '../core/types';
import { PROXY_STATUS } from '../addon/native';
import { accept, refuse, SEEN, type Emit, type GateHandle, type GateState, type RawSocket } from './gate-state';
import type { CompiledProxyProtocol } from './options';
import { warnProxyTrustsNoOne } from '../util/warnings';
import { listeningPort } from '../util/server-like';
import { PEEK_BROKEN, PEEK_UNDECIDED, peekHeader, recordedHeader, recordedReason } from './record';
import { StreamGate } from './stream-gate';

const GATE = Symbol('node-toa.proxy-gate');

interface GatedServer extends net.Server {
  [GATE]?: GateState;
}

/** Whether the PROXY protocol can be read here (the native addon loaded). */
export function proxySupported(): boolean {
  return binding !== null;
}

function noParser(): Error {
  const error = new Error(
    'node-toa: proxyProtocol needs the native addon, which did not load here (see toa.support().error)',
  ) as NodeJS.ErrnoException;
  error.code = 'ERR_TOA_NO_ADDON';
  return error;
}

/**
 * Puts the gate on `server` (once; a second call changes its options). `trust`: the peers whose
 * headers are read, asked at each connection (the caller passes a fixed one, or the default
 * resolver's as it is then).
 */
export function attachGate(server: net.Server, pp: CompiledProxyProtocol, trust: () => TrustFn): void {
  if (!proxySupported()) throw noParser();
  const s = server as GatedServer;
  const known = s[GATE];
  if (known !== undefined) {
    known.pp = pp;
    known.trust = trust;
    return;
  }
  const ownEmit = Object.prototype.hasOwnProperty.call(server, 'emit');
  const state: GateState = { pp, trust, emit: server.emit as Emit, ownEmit, wrapper: undefined };
  s[GATE] = state;
  state.wrapper = function gatedEmit(this: net.Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'connection' && s[GATE] === state) {
      const socket = args[0];
      if (socket instanceof net.Socket && (socket as RawSocket)[SEEN] === undefined) {
        const handle = (socket as RawSocket)._handle;
        if (handle !== null && handle !== undefined && typeof handle.getpeername === 'function') {
          gate(this, state, socket as RawSocket, handle as GateHandle);
          return true;
        }
      }
    }
    return state.emit.call(this, event, ...args);
  };
  server.emit = state.wrapper as net.Server['emit'];
}

/** Takes the gate off (the server's 'connection' goes straight to its listeners again). */
export function detachGate(server: net.Server): void {
  const s = server as GatedServer;
  const state = s[GATE];
  if (state === undefined) return;
  delete s[GATE];
  // Someone wrapped emit after us: ours stays under theirs, inert (it checks that it is current).
  if ((server.emit as Emit) !== state.wrapper) return;
  if (state.ownEmit) server.emit = state.emit as net.Server['emit'];
  else delete (server as { emit?: unknown }).emit;
}

/** Whether `server` has the gate. */
export function hasGate(server: object): boolean {
  return (server as GatedServer)[GATE] !== undefined;
}

// Node's own `_getpeername`, as this module found it: while it is still the one in place, the
// peer name the gate asks the kernel for is the one Node would cache for `socket.remoteAddress`,
// so the gate caches it there (one getpeername per connection, not two). install() puts its own
// in place, which must resolve: then the gate leaves `_peername` alone.
const NODE_GETPEERNAME = (net.Socket.prototype as unknown as { _getpeername?: unknown })._getpeername;

/** The L3 peer from the handle itself: the socket's getters may be install()'s, which resolve. */
function l3Peer(socket: RawSocket, handle: GateHandle): Endpoint | undefined {
  // Under install()'s getter `_peername` may be the resolved client, not the peer to trust.
  const nodeOwn = (socket as unknown as { _getpeername?: unknown })._getpeername === NODE_GETPEERNAME;
  let out = nodeOwn ? socket._peername : undefined;
  if (out === undefined) {
    out = {};
    if (handle.getpeername(out) !== 0) return undefined;
    if (nodeOwn) socket._peername = out;
  }
  if (typeof out.address !== 'string' || typeof out.port !== 'number') return undefined;
  return endpoint({ address: out.address, port: out.port, family: out.family === 'IPv6' ? 'IPv6' : 'IPv4' });
}

/** How the gate found headers in this copy: taken at accept, or read from the stream (tests count them). */
export const gateReads = { peeked: 0, streamed: 0 };

function gate(server: net.Server, state: GateState, socket: RawSocket, handle: GateHandle): void {
  socket[SEEN] = true;
  const peer = l3Peer(socket, handle);
  if (peer === undefined) return void state.emit.call(server, 'connection', socket);
  const trust = state.trust();
  if (!trust(peer.address)) {
    // The commonest misconfiguration: the gate is on and nothing says whom to believe.
    if (trust === trustNone) warnProxyTrustsNoOne(listeningPort(server));
    return void state.emit.call(server, 'connection', socket);
  }

  const { required, maxHeaderSize } = state.pp;
  // The kernel's queue is the stream only while Node has read nothing of it (a socket someone
  // emits again after reading is read as a stream).
  const fd = handle.fd;
  if (typeof fd === 'number' && fd >= 0 && socket.bytesRead === 0 && socket.readableLength === 0) {
    const status = peekHeader(fd, maxHeaderSize);
    if (status !== PEEK_UNDECIDED) gateReads.peeked++;
    switch (status) {
      case PROXY_STATUS.ok:
        return accept(server, state, socket, recordedHeader(peer));
      case PROXY_STATUS.notProxy:
        if (required) return refuse(server, state, peer, socket, 'missing');
        return void state.emit.call(server, 'connection', socket);
      case PROXY_STATUS.tooLarge:
        return refuse(server, state, peer, socket, 'tooLarge', recordedReason());
      case PROXY_STATUS.malformed:
        return refuse(server, state, peer, socket, 'malformed', recordedReason());
      case PEEK_BROKEN:
        return refuse(server, state, peer, socket, 'malformed', 'the header could not be read whole');
    }
  }
  gateReads.streamed++;
  new StreamGate(server, state, socket, peer).start();
}
