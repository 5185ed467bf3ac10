// proxyProtocol through install() (the preload's path: socket.remoteAddress is the header's
// client), the Fastify plugin (which enables its own server), and Express and Koa middleware on a
// server enabled with it. Real servers on loopback, crafted headers from a real client socket.
import express from 'express';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as toa from '../../lib/index';
import { fastifyToa } from '../../lib/fastify';
import { toaMiddleware } from '../../lib/express';
import { toaKoa } from '../../lib/koa';
import { exchange } from '../helpers/producers/proxy-client';
import { DST4, SRC4, latin1, proxyV1, proxyV2 } from '../helpers/vectors/proxy-vectors';

type FastifyFactory = typeof import('fastify').default;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fastify5 = require('fastify') as FastifyFactory;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Koa = require('koa') as typeof import('koa');

const GET = 'GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
const header = () => proxyV2({ source: SRC4, destination: DST4, tlvs: [{ type: 0x02, value: 'www.example.com' }] });

function bodyOf(data: Buffer): { status: number; json: Record<string, unknown> } {
  const text = data.toString('utf8');
  const at = text.indexOf('\r\n\r\n');
  const body = text.slice(at + 4);
  // Chunked (Koa, Express): the JSON is between the size lines.
  const json = body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1);
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]), json: JSON.parse(json) };
}

async function ask(port: number, pieces: (Uint8Array | string)[]) {
  const r = await exchange(port, pieces, { timeoutMs: 5000 });
  return bodyOf(r.data);
}

function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

describe('install({ proxyProtocol })', () => {
  test('socket.remoteAddress is the client a trusted proxy named; LOCAL keeps the peer; undo takes the gate off', async () => {
    const undo = toa.install({ trustProxy: 'loopback', proxyProtocol: true, ack: false });
    const app = (req: http.IncomingMessage, res: http.ServerResponse) =>
      res.end(JSON.stringify({
        remoteAddress: req.socket.remoteAddress,
        remotePort: req.socket.remotePort,
        real: toa.realRemoteAddress(req.socket),
      }));
    const server = http.createServer(app);
    let after: http.Server | undefined;
    try {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = portOf(server);
      const proxied = await ask(port, [Buffer.concat([header(), latin1(GET)])]);
      expect(proxied.json).toMatchObject({
        remoteAddress: SRC4.address,
        remotePort: SRC4.port,
        real: { source: 'proxy-protocol', proxy: { address: '127.0.0.1' }, proxyProtocol: { authority: 'www.example.com' } },
      });
      const local = await ask(port, [Buffer.concat([proxyV2({ command: 'LOCAL' }), latin1(GET)])]);
      expect(local.json).toMatchObject({ remoteAddress: '127.0.0.1', real: { source: 'peer', proxyProtocol: { command: 'LOCAL' } } });
      // Required: a trusted peer without a header is closed.
      const missing = await exchange(port, [GET]);
      expect(missing.closed).toBe(true);
      expect(missing.data.length).toBe(0);
    } finally {
      undo();
      await closeServer(server);
    }
    // After undo, a new server reads no header: it reaches http as data (400).
    after = http.createServer(app);
    await new Promise<void>((r) => after!.listen(0, '127.0.0.1', () => r()));
    try {
      const r = await exchange(portOf(after), [Buffer.concat([proxyV1('TCP4', SRC4, DST4), latin1(GET)])]);
      expect(r.data.toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
    } finally {
      await closeServer(after);
    }
  });
});

describe('Fastify plugin { proxyProtocol, trustProxy }', () => {
  test('request.realRemoteAddress() and request.ip (setIp) are the header\'s client', async () => {
    const app = fastify5();
    app.register(fastifyToa, { trustProxy: 'loopback', proxyProtocol: true, setIp: true });
    app.get('/who', async (request) => ({ real: request.realRemoteAddress(), ip: request.ip }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const r = await ask(portOf(app.server), [Buffer.concat([header(), latin1(GET)])]);
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ ip: SRC4.address, real: { source: 'proxy-protocol', address: SRC4.address, destination: { address: DST4.address } } });
    } finally {
      await app.close();
    }
  });

  test('a bad proxyProtocol fails the registration', async () => {
    const app = fastify5();
    app.register(fastifyToa, { proxyProtocol: { timeout: 0 } });
    await expect(app.ready()).rejects.toThrow(
      new RangeError('fastifyToa(options): options.proxyProtocol.timeout must be from 1 to 600000, got 0'),
    );
  });
});

describe('Express and Koa read what the server-level option found', () => {
  test('Express: req.realRemoteAddress() and req.ip (setIp)', async () => {
    const app = express();
    app.use(toaMiddleware({ trustProxy: 'loopback', setIp: true }));
    app.get('/who', (req, res) => res.json({ real: req.realRemoteAddress(), ip: req.ip }));
    const server = toa.enable(http.createServer(app), { proxyProtocol: true, trustProxy: 'loopback' });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const r = await ask(portOf(server), [Buffer.concat([header(), latin1(GET)])]);
      expect(r.json).toMatchObject({ ip: SRC4.address, real: { source: 'proxy-protocol', address: SRC4.address } });
    } finally {
      await closeServer(server);
    }
  });

  test('Koa: ctx.realRemoteAddress() and ctx.ip (setIp)', async () => {
    const app = new Koa();
    app.use(toaKoa({ trustProxy: 'loopback', setIp: true }));
    app.use((ctx) => {
      ctx.body = { real: ctx.realRemoteAddress(), ip: ctx.ip };
    });
    const server = toa.enable(http.createServer(app.callback()), { proxyProtocol: 'optional', trustProxy: 'loopback' });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const r = await ask(portOf(server), [proxyV1('TCP4', SRC4, DST4), GET]);
      expect(r.json).toMatchObject({ ip: SRC4.address, real: { source: 'proxy-protocol', address: SRC4.address } });
      const plain = await ask(portOf(server), [GET]);
      expect(plain.json).toMatchObject({ real: { source: 'peer', address: '127.0.0.1' } });
    } finally {
      await closeServer(server);
    }
  });
});
