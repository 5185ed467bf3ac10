// The parts of Node's socket internals node-toa reads, one name each: a socket's libuv handle and
// the peer name object Node caches. Every module that reaches into a socket uses these.

/** What the handle's getpeername(out) fills, `_getpeername()` returns, and `_peername` caches. */
export interface PeerName {
  address: string;
  family: string;
  port: number;
}

/** A socket's (or server's) libuv handle: its fd, and getpeername(out) (0 or an errno) on a TCP one. */
export interface HandleLike {
  fd?: unknown;
  getpeername?: (out: Partial<PeerName>) => number;
}
