// Compiled by test/build/types.test.ts with tsc --noEmit; never run: listen(), enableCluster(),
// node-toa/register's augmentation of net.Socket, and enable() on a dgram socket.
import * as dgram from 'node:dgram';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import {
  clusterPrimaryEnabled,
  enable,
  enableCluster,
  listen,
  metrics,
  type ListenOptions,
  type RealAddress,
  type UdpOptions,
  type UdpRemoteInfo,
} from '../../../lib/index';
import '../../../lib/register';

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

  // enable() on a dgram socket returns it; rinfo is Node's with the client's source and proxy.
  const udpOptions: UdpOptions = { trustProxy: '198.51.100.0/24', spp: true, proxyProtocol: 'optional', uoa: 'auto', flows: { capacity: 1024, maxAge: 60000 } };
  const socket: dgram.Socket = enable(dgram.createSocket('udp4'), udpOptions);
  socket.on('message', (msg, rinfo) => {
    const info = rinfo as UdpRemoteInfo;
    const source: 'spp' | 'proxy-protocol' | 'uoa' | 'peer' = info.source;
    const proxy: string | undefined = info.proxy?.address;
    socket.send(msg, info.port, info.address);
    return void [source, proxy];
  });
  const flows: number = metrics().udp.flows.spp + metrics().udp.dropped.malformed;
  // @ts-expect-error spp is a boolean or 'optional'
  enable(dgram.createSocket('udp4'), { spp: 'required' });
  // @ts-expect-error ack is a TCP option
  enable(dgram.createSocket('udp4'), { spp: true, ack: true });
  return void [secure, inWorker, flows];
}

void main;
