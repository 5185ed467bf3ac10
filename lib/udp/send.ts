// Replies: socket.send() to a client learned from a flow goes to the flow's proxy (with the SPP
// header first when the flow came with SPP, as Spectrum and EdgeOne require), in every form Node
// takes: (msg, port[, address][, cb]) and (msg, offset, length, port[, address][, cb]), msg a
// Buffer, TypedArray, DataView, string or an array of them. Any other destination, and every
// call Node would refuse, goes to Node's own send unchanged.
import type { Socket } from 'node:dgram';
import { mappedIPv4 } from '../util/address';
import { now } from './clock';
import type { FlowTable } from './flows';

type Send = (this: Socket, ...args: unknown[]) => void;

function sppList(spp: Buffer, msg: unknown): unknown[] {
  return Array.isArray(msg) ? [spp, ...(msg as unknown[])] : [spp, msg];
}

/** msg[offset, offset + length) as Node's own sliceBuffer takes it; undefined where Node would throw. */
function slice(msg: unknown, offset: unknown, length: unknown): Uint8Array | undefined {
  const bytes = typeof msg === 'string' ? Buffer.from(msg) : ArrayBuffer.isView(msg) ? msg : undefined;
  if (bytes === undefined) return undefined;
  const o = (offset as number) >>> 0;
  const n = (length as number) >>> 0;
  if (o > bytes.byteLength || o + n > bytes.byteLength) return undefined;
  return Buffer.from(bytes.buffer, bytes.byteOffset + o, n);
}

/**
 * The socket's send, wrapped. `connected()` says whether the socket is connect()ed (then Node's
 * rules apply, untouched).
 */
export function wrapSend(send: Send, table: () => FlowTable, connected: (socket: Socket) => boolean): Send {
  return function toaSend(this: Socket, msg: unknown, offset?: unknown, length?: unknown, port?: unknown, address?: unknown, callback?: unknown) {
    const flows = table();
    // eslint-disable-next-line prefer-rest-params
    if (flows.size === 0 || connected(this)) return send.apply(this, arguments as unknown as unknown[]);
    // Node's own test for the offset/length form of an unconnected socket.
    const sliced = Boolean(address) || (Boolean(port) && typeof port !== 'function');
    const toPort = sliced ? port : offset;
    const toAddress = sliced ? address : length;
    if (typeof toAddress !== 'string' || (typeof toPort !== 'number' && typeof toPort !== 'string')) {
      // eslint-disable-next-line prefer-rest-params
      return send.apply(this, arguments as unknown as unknown[]);
    }
    const portNumber = typeof toPort === 'number' ? toPort : Number(toPort);
    let flow = flows.byClient(toAddress, portNumber, now());
    // A dual-stack socket's app may write an IPv4 client as ::ffff:a.b.c.d.
    if (flow === undefined && toAddress.startsWith('::ffff:')) {
      const v4 = mappedIPv4(toAddress);
      if (v4 !== undefined) flow = flows.byClient(v4, portNumber, now());
    }
    // eslint-disable-next-line prefer-rest-params
    if (flow === undefined) return send.apply(this, arguments as unknown as unknown[]);
    const proxy = flow.proxy;
    if (!sliced) {
      // (msg, port[, address][, cb]): cb is the argument after the address.
      return send.call(this, flow.spp === undefined ? msg : sppList(flow.spp, msg), proxy.port, proxy.address, port);
    }
    if (flow.spp === undefined) return send.call(this, msg, offset, length, proxy.port, proxy.address, callback);
    const part = slice(msg, offset, length);
    // Node's own error for what it cannot slice.
    if (part === undefined) return send.call(this, msg, offset, length, proxy.port, proxy.address, callback);
    return send.call(this, [flow.spp, part], proxy.port, proxy.address, callback);
  };
}
