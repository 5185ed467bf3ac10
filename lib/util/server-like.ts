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
