// The gate: a server's accepted sockets are held until the PROXY header at their start has been
// read, then given to the server's own 'connection' listeners (net, http, https, tls, http2 and the
// user's) with the header gone from the stream; whatever followed it is put back in front
// (unshift), so TLS's ClientHello, pipelined HTTP requests and h2c's preface arrive once, in order.
//
// The instance's `emit` is wrapped rather than its 'connection' listeners moved: listeners added
// later (a framework that attaches after enable(), http2's own) are gated too, listeners() still
// shows the server's own, and nothing else about the server changes. Only sockets the server
// accepted (net.Socket with a TCP handle) go through; anything a user emits (an in-memory duplex)
// and sockets already gated pass as they are.
import * as net from 'node:net';
import { binding } from '../addon/binding';
import { defaultResolver } from '../core/defaults';
import { countProxy, type ProxyOutcome } from '../core/metrics';
import type { TrustFn } from '../core/trust';
import { endpoint } from '../core/decide';
import type { Endpoint } from '../core/types';
import { warnProxyHeader } from '../util/warnings';
import { makeRecord, PROXY_HEADER } from './header';
import { PROXY_STATUS, type NativeBinding } from '../addon/native';
import type { CompiledProxyProtocol } from './options';

type ParseProxyHeader = NativeBinding['parseProxyHeader'];
type Emit = (this: net.Server, event: string | symbol, ...args: unknown[]) => boolean;

interface GateState {
  pp: CompiledProxyProtocol;
  /** The gate's own trust (enable's trustProxy), else the default resolver's at each connection. */
  trust: TrustFn | undefined;
  emit: Emit;
  /** Whether `emit` was the instance's own property (else the prototype's, put back by delete). */
  ownEmit: boolean;
  wrapper: Emit | undefined;
  port: number;
}

const GATE = Symbol('node-toa.proxy-gate');
// Set on every socket the gate saw, so a socket passed on to a second gated server is not read twice.
const SEEN = Symbol.for('node-toa.proxy-gate-seen.v1');

interface GatedServer extends net.Server {
  [GATE]?: GateState;
}

interface RawSocket extends net.Socket {
  [SEEN]?: true;
  _handle?: { getpeername?: (out: object) => number } | null;
}

/** The native parser, or null where the addon did not load. */
export function proxyParser(): ParseProxyHeader | null {
  const native = binding;
  // Bound once: the per-connection call passes the bytes only.
  return native !== null && typeof native.parseProxyHeader === 'function' ? native.parseProxyHeader.bind(native) : null;
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
 * headers are read; undefined follows the default resolver (configure(), install()).
 */
export function attachGate(server: net.Server, pp: CompiledProxyProtocol, trust: TrustFn | undefined): void {
  const parse = proxyParser();
  if (parse === null) throw noParser();
  const s = server as GatedServer;
  const known = s[GATE];
  if (known !== undefined) {
    known.pp = pp;
    known.trust = trust;
    return;
  }
  const ownEmit = Object.prototype.hasOwnProperty.call(server, 'emit');
  const state: GateState = { pp, trust, emit: server.emit as Emit, ownEmit, wrapper: undefined, port: 0 };
  s[GATE] = state;
  state.wrapper = function gatedEmit(this: net.Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'connection' && s[GATE] === state) {
      const socket = args[0];
      if (socket instanceof net.Socket && (socket as RawSocket)[SEEN] === undefined) {
        const handle = (socket as RawSocket)._handle;
        if (handle !== null && handle !== undefined && typeof handle.getpeername === 'function') {
          gate(this, state, parse, socket as RawSocket);
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

/** The L3 peer from the handle itself: the socket's getters may be install()'s, which resolve. */
function l3Peer(socket: RawSocket): Endpoint | undefined {
  const out: { address?: unknown; port?: unknown; family?: unknown } = {};
  const handle = socket._handle;
  if (handle === null || handle === undefined || handle.getpeername!(out) !== 0) return undefined;
  if (typeof out.address !== 'string' || typeof out.port !== 'number') return undefined;
  return endpoint({ address: out.address, port: out.port, family: out.family === 'IPv6' ? 'IPv6' : 'IPv4' });
}

function listeningPort(server: net.Server, state: GateState): number {
  if (state.port === 0) {
    const a = server.address();
    state.port = typeof a === 'object' && a !== null ? a.port : 0;
  }
  return state.port;
}

const PROBLEM: Record<Exclude<ProxyOutcome, 'headers' | 'local'>, string> = {
  malformed: 'a malformed PROXY protocol header',
  tooLarge: 'a PROXY protocol header larger than maxHeaderSize',
  timeout: 'no complete PROXY protocol header within the timeout',
  missing: 'no PROXY protocol header',
};

function gate(server: net.Server, state: GateState, parse: ParseProxyHeader, socket: RawSocket): void {
  socket[SEEN] = true;
  const pass = () => state.emit.call(server, 'connection', socket);
  const peer = l3Peer(socket);
  if (peer === undefined) return void pass();
  const trust = state.trust ?? defaultResolver().trust;
  if (!trust(peer.address)) return void pass();

  const { required, timeoutMs, maxHeaderSize } = state.pp;
  let data: Buffer | undefined;
  let done = false;

  const cleanup = () => {
    done = true;
    clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('end', onEnd);
    socket.removeListener('error', onError);
    socket.removeListener('close', onClose);
  };
  const fail = (outcome: Exclude<ProxyOutcome, 'headers' | 'local'>, reason?: string) => {
    cleanup();
    const port = listeningPort(server, state);
    countProxy(port, outcome);
    warnProxyHeader(peer.address, port, reason ? `${PROBLEM[outcome]} (${reason})` : PROBLEM[outcome]);
    socket.destroy();
  };
  const finish = (rest: Buffer | undefined) => {
    cleanup();
    if (rest !== undefined && rest.length > 0) socket.unshift(rest);
    state.emit.call(server, 'connection', socket);
  };
  const examine = () => {
    const buf = data!;
    const r = parse(buf, maxHeaderSize);
    switch (r.status) {
      case PROXY_STATUS.ok: {
        const record = makeRecord(peer, r, buf);
        (socket as unknown as Record<symbol, unknown>)[PROXY_HEADER] = record;
        countProxy(listeningPort(server, state), record.source !== undefined ? 'headers' : 'local');
        finish(buf.length > r.length ? buf.subarray(r.length) : undefined);
        return;
      }
      case PROXY_STATUS.incomplete:
        if (buf.length >= maxHeaderSize) fail('tooLarge');
        return;
      case PROXY_STATUS.notProxy:
        if (required) fail('missing');
        else finish(buf);
        return;
      case PROXY_STATUS.tooLarge:
        fail('tooLarge', r.reason);
        return;
      default:
        fail('malformed', r.reason);
    }
  };
  function onReadable(): void {
    let chunk: Buffer | null;
    while (!done && (chunk = socket.read() as Buffer | null) !== null) {
      data = data === undefined ? chunk : Buffer.concat([data, chunk]);
      examine();
    }
  }
  // The peer closed before a whole header: a connection without a byte is a TCP health check or a
  // port probe (closed, not counted); one that stopped inside a header is a malformed one.
  function onEnd(): void {
    if (data === undefined) {
      cleanup();
      socket.destroy();
    } else fail('malformed', 'the connection ended inside the header');
  }
  function onError(): void {
    cleanup();
    socket.destroy();
  }
  function onClose(): void {
    cleanup();
  }
  const timer = setTimeout(() => {
    if (done) return;
    // Optional mode and not a byte yet: the peer may wait for the server to speak first.
    if (!required && data === undefined) finish(undefined);
    else fail('timeout');
  }, timeoutMs);
  timer.unref();
  socket.on('error', onError);
  socket.on('end', onEnd);
  socket.on('close', onClose);
  socket.on('readable', onReadable);
}
