// enable(socket, options) for a dgram.Socket: the instance's `emit` is wrapped for 'message' (so
// listeners added before or after see the client, and nothing else of the socket changes), and
// its `send` for replies; close() frees the flow table and the UOA reader. A connect()ed socket
// keeps Node's behaviour both ways.
import * as dgram from 'node:dgram';
import { defaultTrust } from './default-trust';
import { trustNone } from '../core/trust';
import { warnUdpTrustsNoOne } from '../util/warnings';
import { FlowTable } from './flows';
import { dgramParserAvailable } from './header';
import { compileUdp, type CompiledUdp, type UdpOptions } from './options';
import { receive, type ReceiveState } from './receive';
import { UdpReport } from './report';
import { wrapSend } from './send';
import { openUoa } from './uoa';

const UDP = Symbol('node-toa.udp');

type Emit = (this: dgram.Socket, event: string | symbol, ...args: unknown[]) => boolean;
type Send = (this: dgram.Socket, ...args: unknown[]) => void;

interface UdpState extends ReceiveState {
  emit: Emit;
  send: Send;
  connect: (...args: unknown[]) => void;
  /** connect() was called: ask Node whether the socket is connected before touching anything. */
  connectCalled: boolean;
  closed: boolean;
}

interface UdpSocket extends dgram.Socket {
  [UDP]?: UdpState;
}

/** Whether `value` is a dgram.Socket (enable() routes those here). */
export function isDgramSocket(value: unknown): value is dgram.Socket {
  return value instanceof dgram.Socket;
}

function isConnected(socket: dgram.Socket, state: UdpState): boolean {
  if (!state.connectCalled) return false;
  try {
    socket.remoteAddress();
    return true;
  } catch {
    return false;
  }
}

function noParser(): Error {
  return Object.assign(new Error('node-toa: reading UDP headers needs the native addon, which did not load here (see toa.support().error)'), {
    code: 'ERR_TOA_NO_ADDON',
  });
}

function warnTrustNone(options: CompiledUdp): void {
  const trust = options.trust ?? defaultTrust();
  if (trust !== trustNone) return;
  warnUdpTrustsNoOne();
}

/** Applies compiled options to a socket (a second call changes them and starts a new flow table). */
export function enableUdpCompiled(socket: dgram.Socket, options: CompiledUdp): dgram.Socket {
  if (options.formats !== 0 && !dgramParserAvailable()) throw noParser();
  const s = socket as UdpSocket;
  const known = s[UDP];
  // First what may throw (uoa: true without CAP_NET_RAW): a refused call changes nothing.
  const uoa = openUoa(socket, options);
  if (known !== undefined && !known.closed) {
    known.options = options;
    known.table.clear();
    known.table = new FlowTable(options.capacity, options.maxAgeMs);
    known.uoa?.close();
    known.uoa = uoa;
    return socket;
  }
  const state: UdpState = {
    options,
    table: new FlowTable(options.capacity, options.maxAgeMs),
    report: new UdpReport(socket),
    uoa,
    emit: socket.emit as Emit,
    send: socket.send as Send,
    connect: socket.connect as (...args: unknown[]) => void,
    connectCalled: false,
    closed: false,
  };
  s[UDP] = state;
  const emit = state.emit;
  socket.emit = function toaEmit(this: dgram.Socket, event: string | symbol, msg?: unknown, rinfo?: unknown): boolean {
    if (event === 'message' && !state.closed && !isConnected(this, state)) {
      const out = receive(state, msg as Buffer, rinfo as dgram.RemoteInfo);
      if (out === null) return false;
      return emit.call(this, event, out, rinfo);
    }
    // eslint-disable-next-line prefer-rest-params
    return emit.apply(this, arguments as unknown as [string | symbol, ...unknown[]]);
  } as dgram.Socket['emit'];
  socket.send = wrapSend(state.send, () => state.table, (self) => isConnected(self, state)) as dgram.Socket['send'];
  socket.connect = function toaConnect(this: dgram.Socket, ...args: unknown[]) {
    state.connectCalled = true;
    return state.connect.apply(this, args);
  } as dgram.Socket['connect'];
  socket.once('close', () => {
    state.closed = true;
    state.table.clear();
    state.uoa?.close();
    state.uoa = null;
  });
  warnTrustNone(options);
  return socket;
}

/** enable(socket, options) for a dgram.Socket: validates, then applies. */
export function enableUdp(socket: dgram.Socket, options: UdpOptions | undefined, where = 'enable(socket, options)'): dgram.Socket {
  return enableUdpCompiled(socket, compileUdp(options, where));
}

/** Flows the socket remembers now (0 once closed): for tests and diagnostics. */
export function udpFlowCount(socket: dgram.Socket): number {
  return (socket as UdpSocket)[UDP]?.table.size ?? 0;
}

/** Whether enable() is on for this dgram socket. */
export function udpEnabled(socket: dgram.Socket): boolean {
  const state = (socket as UdpSocket)[UDP];
  return state !== undefined && !state.closed;
}

