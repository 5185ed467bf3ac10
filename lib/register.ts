// `require('node-toa/register')`: adds socket.realRemoteAddress(options?) to every net.Socket
// (and so to tls.TLSSocket and the sockets of http, https and http2 servers).
// Node's types come with this entry point (see index.ts).
/// <reference types="node" preserve="true" />
import { Socket } from 'node:net';
import { realRemoteAddress } from './index';
import type { RealAddress, ToaOptions } from './core/types';

declare module 'net' {
  interface Socket {
    /** The client of this connection: see node-toa's realRemoteAddress(). */
    realRemoteAddress(options?: ToaOptions): RealAddress;
  }
}

// Another copy of node-toa may have registered first; both read the same per-socket cache.
if (!Object.prototype.hasOwnProperty.call(Socket.prototype, 'realRemoteAddress')) {
  Object.defineProperty(Socket.prototype, 'realRemoteAddress', {
    value: function realRemoteAddressMethod(this: Socket, options?: ToaOptions): RealAddress {
      return realRemoteAddress(this, options);
    },
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

export {};
