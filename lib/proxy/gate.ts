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
import { makeRecord, PROXY_HEADER, type ProxyHeaderRecord } from './header';
import { PEEK_BROKEN, PEEK_UNDECIDED, recordedLength, peekHeader, recordedReason, recordedHeader, recordParser } from './record';
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

interface PeerName {
  address?: unknown;
  port?: unknown;
  family?: unknown;
}

interface GateHandle {
  getpeername: (out: PeerName) => number;
  fd?: number;
}

interface RawSocket extends net.Socket {
  [SEEN]?: true;
  _handle?: Partial<GateHandle> | null;
  _peername?: PeerName;
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
          gate(this, state, parse, socket as RawSocket, handle as GateHandle);
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
  let out = socket._peername;
  if (out === undefined) {
    out = {};
    if (handle.getpeername(out) !== 0) return undefined;
    if ((socket as unknown as { _getpeername?: unknown })._getpeername === NODE_GETPEERNAME) socket._peername = out;
  }
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

type Problem = Exclude<ProxyOutcome, 'headers' | 'local'>;

const PROBLEM: Record<Problem, string> = {
  malformed: 'a malformed PROXY protocol header',
  tooLarge: 'a PROXY protocol header larger than maxHeaderSize',
  timeout: 'no complete PROXY protocol header within the timeout',
  missing: 'no PROXY protocol header',
};

function refuse(server: net.Server, state: GateState, peer: Endpoint, socket: RawSocket, outcome: Problem, reason?: string): void {
  const port = listeningPort(server, state);
  countProxy(port, outcome);
  warnProxyHeader(peer.address, port, reason ? `${PROBLEM[outcome]} (${reason})` : PROBLEM[outcome]);
  socket.destroy();
}

function accept(server: net.Server, state: GateState, socket: RawSocket, record: ProxyHeaderRecord): void {
  (socket as unknown as Record<symbol, unknown>)[PROXY_HEADER] = record;
  countProxy(listeningPort(server, state), record.source !== undefined ? 'headers' : 'local');
  state.emit.call(server, 'connection', socket);
}

/** How the gate found headers in this copy: taken at accept, or read from the stream (tests count them). */
export const gateReads = { peeked: 0, streamed: 0 };

function gate(server: net.Server, state: GateState, parse: ParseProxyHeader, socket: RawSocket, handle: GateHandle): void {
  socket[SEEN] = true;
  const peer = l3Peer(socket, handle);
  if (peer === undefined) return void state.emit.call(server, 'connection', socket);
  const trust = state.trust ?? defaultResolver().trust;
  if (!trust(peer.address)) return void state.emit.call(server, 'connection', socket);

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
  new StreamGate(server, state, parse, socket, peer).start();
}

/**
 * The header read from the stream, as it arrives: the peek found it not there yet (or not whole).
 * One object with its handlers as methods (bound once), not a closure per handler.
 */
class StreamGate {
  private data: Buffer | undefined = undefined;
  private done = false;
  private timer: NodeJS.Timeout | undefined = undefined;
  private readonly onReadable = () => this.readable();
  private readonly onEnd = () => this.end();
  private readonly onError = () => this.error();
  private readonly onClose = () => this.cleanup();

  constructor(
    private readonly server: net.Server,
    private readonly state: GateState,
    private readonly parse: ParseProxyHeader,
    private readonly socket: RawSocket,
    private readonly peer: Endpoint,
  ) {}

  start(): void {
    const socket = this.socket;
    this.timer = setTimeout(() => this.expire(), this.state.pp.timeoutMs);
    this.timer.unref();
    socket.on('error', this.onError);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('readable', this.onReadable);
  }

  private cleanup(): void {
    this.done = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    socket.removeListener('readable', this.onReadable);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('error', this.onError);
    socket.removeListener('close', this.onClose);
  }

  private fail(outcome: Problem, reason?: string): void {
    this.cleanup();
    refuse(this.server, this.state, this.peer, this.socket, outcome, reason);
  }

  private finish(rest: Buffer | undefined): void {
    this.cleanup();
    if (rest !== undefined && rest.length > 0) this.socket.unshift(rest);
    this.state.emit.call(this.server, 'connection', this.socket);
  }

  private examine(): void {
    const buf = this.data!;
    const { required, maxHeaderSize } = this.state.pp;
    const parseInto = recordParser();
    let status: number;
    let length = 0;
    let reason = '';
    let record: ProxyHeaderRecord | undefined;
    if (parseInto !== null) {
      status = parseInto(buf, maxHeaderSize);
      if (status === PROXY_STATUS.ok) {
        length = recordedLength();
        record = recordedHeader(this.peer, buf);
      } else if (status === PROXY_STATUS.malformed || status === PROXY_STATUS.tooLarge) reason = recordedReason();
    } else {
      const r = this.parse(buf, maxHeaderSize);
      status = r.status;
      length = r.length;
      reason = r.reason;
      if (status === PROXY_STATUS.ok) record = makeRecord(this.peer, r, buf);
    }
    switch (status) {
      case PROXY_STATUS.ok: {
        this.cleanup();
        if (buf.length > length) this.socket.unshift(buf.subarray(length));
        accept(this.server, this.state, this.socket, record!);
        return;
      }
      case PROXY_STATUS.incomplete:
        if (buf.length >= maxHeaderSize) this.fail('tooLarge');
        return;
      case PROXY_STATUS.notProxy:
        if (required) this.fail('missing');
        else this.finish(buf);
        return;
      case PROXY_STATUS.tooLarge:
        this.fail('tooLarge', reason);
        return;
      default:
        this.fail('malformed', reason);
    }
  }

  private readable(): void {
    let chunk: Buffer | null;
    while (!this.done && (chunk = this.socket.read() as Buffer | null) !== null) {
      this.data = this.data === undefined ? chunk : Buffer.concat([this.data, chunk]);
      this.examine();
    }
  }

  // The peer closed before a whole header: a connection without a byte is a TCP health check or a
  // port probe (closed, not counted); one that stopped inside a header is a malformed one.
  private end(): void {
    if (this.data === undefined) {
      this.cleanup();
      this.socket.destroy();
    } else this.fail('malformed', 'the connection ended inside the header');
  }

  private error(): void {
    this.cleanup();
    this.socket.destroy();
  }

  private expire(): void {
    if (this.done) return;
    // Optional mode and not a byte yet: the peer may wait for the server to speak first.
    if (!this.state.pp.required && this.data === undefined) this.finish(undefined);
    else this.fail('timeout');
  }
}
