// What counts as a server: anything net.Server-shaped (http, https, http2, tls servers are).
import type { Server } from 'node:net';

export function isServer(value: unknown): value is Server {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Server).listen === 'function' &&
    typeof (value as Server).once === 'function'
  );
}

// server.address() is a getsockname(2) per call: each server's port is asked once (once known).
const serverPorts = new WeakMap<object, number>();

/**
 * The port `server` listens on (the port metrics count under); 0 for a socket without a server,
 * a pipe, or a server not listening yet (asked again next time).
 */
export function listeningPort(server: unknown): number {
  if (typeof server !== 'object' || server === null) return 0;
  let port = serverPorts.get(server);
  if (port === undefined) {
    const address = (server as { address?: () => unknown }).address?.();
    port = typeof address === 'object' && address !== null ? ((address as { port?: number }).port ?? 0) : 0;
    if (port !== 0) serverPorts.set(server, port);
  }
  return port;
}
