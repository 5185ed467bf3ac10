// A real server on loopback and a real client: each accepted socket is handed to the test.
import * as net from 'node:net';

export interface Accepted {
  server: net.Socket;
  client: net.Socket;
}

export function listen(server: net.Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** Connects to `server` and resolves with both ends once the server accepted. */
export function connectPair(server: net.Server, host: string, port: number): Promise<Accepted> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connection within 5 s')), 5000);
    server.once('connection', (accepted: net.Socket) => {
      clearTimeout(timer);
      const settle = () => resolve({ server: accepted, client });
      if (client.localPort !== undefined) settle();
      else client.once('connect', settle);
    });
    const client = net.connect(port, host);
    client.on('error', reject);
  });
}

/** Connects to `port` and resolves once the connection closed (the server's handler ends it). */
export function connectOnce(port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, host);
    c.once('error', reject).once('close', () => resolve());
  });
}

export function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * The servers a test makes: push them here, and after each test each one's connections are
 * closed (an http server's too) and it is closed.
 */
export function closeAfterEach(): net.Server[] {
  const servers: net.Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await close(server);
    }
  });
  return servers;
}
