// Finds the kernel socket behind a Node stream. Works for net.Socket, tls.TLSSocket (TLSWrap has
// the fd of the TCP socket under it) and the http2 compat API's `req.socket` Proxy, whose `get`
// trap forwards unknown properties to the session's real socket.
import type { HandleLike } from './node-socket';

interface SocketLike {
  _handle?: HandleLike | null;
}

/**
 * The socket's file descriptor, or -1 when it has none (destroyed, a pipe, an in-memory stream).
 * `destroyed` is not asked: net.Socket drops its handle as it is destroyed, and a handle that is
 * closing says fd -1 (libuv's uv_fileno refuses a closing handle); the getter would touch two
 * more objects, cold memory on a fresh socket, on every first read.
 */
export function socketFd(socket: object): number {
  const handle = (socket as SocketLike)._handle;
  if (handle === null || handle === undefined) return -1;
  const fd = handle.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}
