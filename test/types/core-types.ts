// Compiled by test/types.test.ts with tsc --noEmit; never run: listen(), enableCluster() and
// node-toa/register's augmentation of net.Socket.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { clusterPrimaryEnabled, enableCluster, listen, type ListenOptions, type RealAddress } from '../../lib/index';
import '../../lib/register';

async function main(): Promise<void> {
  // listen() resolves with the very server it was given, with its own type.
  const server: http.Server = await listen(http.createServer(), { port: 3000 });
  const secure: http2.Http2SecureServer = await listen(http2.createSecureServer({}), { port: '8443', host: '::', reusePort: true });
  const options: ListenOptions = { port: 0, host: '127.0.0.1', backlog: 128, ipv6Only: false };
  await listen(net.createServer(), options);
  enableCluster();
  const inWorker: boolean = clusterPrimaryEnabled();

  server.on('connection', (socket) => {
    const real: RealAddress = socket.realRemoteAddress({ trustProxy: 'loopback' });
    return real;
  });

  // @ts-expect-error the port is required
  await listen(http.createServer(), {});
  // @ts-expect-error an unknown option
  await listen(http.createServer(), { port: 1, reuseport: true });
  // @ts-expect-error not a server
  await listen({}, { port: 1 });
  // @ts-expect-error enableCluster() takes no options
  enableCluster({ workers: 2 });
  return void [secure, inWorker];
}

void main;
