// Fresh accepted sockets for the parts that read them under the preload (preload.ts,
// first-read.ts): a dual-stack server's, from in-process clients or from a child in a ToaCgroup
// whose kernel writes the TOA, and the check of what a read answered.
import * as net from 'node:net';
import { acceptN } from './common';
import { expectedClient, taggedClients, toaGroup, type ToaPacket } from './toa-clients';

export interface Batch {
  accepted: net.Socket[];
  close(): void;
}

/** A source of fresh accepted sockets: in-process clients, or a client in a ToaCgroup. */
export interface Connector {
  open(count: number): Promise<Batch>;
  /** What an answer must be for the socket (throws when wrong). */
  check(socket: net.Socket, address: string | undefined, family: string | undefined): void;
  stop(): Promise<void>;
}

export function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // No host: '::', dual stack, so Node writes these IPv4 peers as ::ffff:127.0.0.1, and so must we.
    server.listen(0, 4096, () => resolve((server.address() as net.AddressInfo).port));
  });
}

export function localConnector(server: net.Server, port: number): Connector {
  return {
    async open(count) {
      const clients: net.Socket[] = [];
      const accepted = await acceptN(server, count, () => {
        for (let i = 0; i < count; i++) clients.push(net.connect(port, '127.0.0.1').on('error', () => undefined));
      });
      return {
        accepted,
        close() {
          for (const s of accepted) s.destroy();
          for (const s of clients) s.destroy();
        },
      };
    },
    check(_socket, address, family) {
      if (address !== '::ffff:127.0.0.1' || family !== 'IPv6') throw new Error(`preload: unexpected answer ${address} ${family}`);
    },
    async stop() {},
  };
}

/** Node's own view of the peer's port (getpeername), whatever the preload says. */
function peerPort(socket: net.Socket): number {
  const handle = (socket as unknown as { _handle: { getpeername(out: object): number } })._handle;
  const out: { port?: number } = {};
  handle.getpeername(out);
  return out.port!;
}

// Connections from a child in a ToaCgroup: its kernel writes kind 254 into the packet asked for.
export async function toaConnector(server: net.Server, port: number, packet: ToaPacket): Promise<Connector> {
  const group = await toaGroup(packet);
  const clients = taggedClients(group, server, port);
  return {
    open: (count) => clients.open(count),
    check(socket, address, family) {
      const want = expectedClient(group, peerPort(socket));
      if (address !== want || family !== 'IPv4') throw new Error(`preload: expected ${want}, got ${address} ${family}`);
    },
    stop: () => clients.stop(),
  };
}
