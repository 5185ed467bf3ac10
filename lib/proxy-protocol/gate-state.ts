// What the gate's two ways to a header share: the per-server state, the raw socket shape, and the
// two endings of a gated connection (refused, or handed to the server with its header recorded).
import type * as net from 'node:net';
import { countProxy, type ProxyRefusedReason } from '../core/metrics';
import type { TrustFn } from '../core/trust';
import type { Endpoint } from '../core/types';
import type { HandleLike, PeerName } from '../util/node-socket';
import { listeningPort } from '../util/server-like';
import { warnProxyHeader } from '../util/warnings';
import { PROXY_HEADER, type ProxyHeader } from './header';
import type { CompiledProxyProtocol } from './options';

export type Emit = (this: net.Server, event: string | symbol, ...args: unknown[]) => boolean;

// Set on every socket the gate saw, so a socket passed on to a second gated server is not read twice.
export const SEEN = Symbol.for('node-toa.proxy-gate-seen.v1');

export interface GateState {
  pp: CompiledProxyProtocol;
  /** Whom the gate believes, asked at each connection (enable's trustProxy, or the default resolver's). */
  trust: () => TrustFn;
  emit: Emit;
  /** Whether `emit` was the instance's own property (else the prototype's, put back by delete). */
  ownEmit: boolean;
  wrapper: Emit | undefined;
}

/** A handle the gate reads: one with getpeername (a TCP socket's). */
export type GateHandle = HandleLike & Required<Pick<HandleLike, 'getpeername'>>;

export interface RawSocket extends net.Socket {
  [SEEN]?: true;
  _handle?: HandleLike | null;
  _peername?: Partial<PeerName>;
}

/** Closes a gated connection; `reason`: the parser's words, when it had some. */
export function refuse(server: net.Server, state: GateState, peer: Endpoint, socket: RawSocket, refused: ProxyRefusedReason, reason?: string): void {
  const port = listeningPort(server);
  countProxy(port, refused);
  warnProxyHeader(peer.address, port, refused, reason);
  socket.destroy();
}

export function accept(server: net.Server, state: GateState, socket: RawSocket, header: ProxyHeader): void {
  (socket as unknown as Record<symbol, unknown>)[PROXY_HEADER] = header;
  countProxy(listeningPort(server), header.client !== undefined ? 'headers' : 'local');
  state.emit.call(server, 'connection', socket);
}
