// node-toa/express, node-toa/koa and node-toa/fastify with real Express 5 and 4, Koa 3 and 2 and
// Fastify 5 and 4: each module's shape and option errors, in memory (light-my-request, inject(),
// a hand-made request over a Duplex), and on loopback (the peer, keep-alive, TCP_SAVE_SYN turned
// on at the first request, setIp against the framework's own proxy setting). End to end with TOA
// SYNs: test/netns/frameworks.test.ts.
import { Duplex } from 'node:stream';
import * as http from 'node:http';
import type * as net from 'node:net';
import { enable, isEnabled, listen } from '../../lib/index';
import { toaMiddleware } from '../../lib/express';
import * as expressModule from '../../lib/express';
import { fastifyToa } from '../../lib/fastify';
import * as fastifyModule from '../../lib/fastify';
import { toaKoa } from '../../lib/koa';
import * as koaModule from '../../lib/koa';
import {
  EXPRESS, FRAMEWORKS, KOA, Koa2, Koa3, express4, express5, expressApp, fastify4, fastify5, fastifyApp, type ExpressFactory,
} from '../helpers/frameworks/apps';
import { injectInChild } from '../helpers/frameworks/in-memory';
import { collectWarnings, getOnLoopback } from '../helpers/sockets/http-client';
import { close } from '../helpers/sockets/pair';

const onLinux = process.platform === 'linux' ? describe : describe.skip;

async function stop(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await close(server);
}

const port = (server: net.Server) => (server.address() as net.AddressInfo).port;

describe('node-toa/express module', () => {
  it('exports the factory as toaMiddleware, default and module.exports', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cjs = require('../../lib/express');
    expect(typeof cjs).toBe('function');
    expect(cjs.toaMiddleware).toBe(toaMiddleware);
    expect(cjs.default).toBe(toaMiddleware);
    expect(expressModule.default).toBe(toaMiddleware);
  });

  it('returns a named middleware', () => {
    expect(toaMiddleware().name).toBe('nodeToaMiddleware');
  });

  it.each([
    [null, TypeError, 'toaMiddleware(options): options must be an object, got null'],
    [[], TypeError, 'toaMiddleware(options): options must be an object, got an array'],
    [{ trustproxy: true }, TypeError, "toaMiddleware(options): unknown option 'trustproxy' (known: trustProxy, kinds, multiple, setIp, ack)"],
    [{ setIp: 'yes' }, TypeError, "toaMiddleware(options): setIp must be a boolean, got 'yes'"],
    [{ trustProxy: 42 }, TypeError, 'trustProxy must be a boolean, a string, an array of strings or a function, got 42'],
    [{ kinds: [3] }, RangeError, 'kinds: 3 is not usable as a TOA kind'],
    [{ ack: 'yes' }, TypeError, "toaMiddleware(options): options.ack must be a boolean or an object such as { capacity: 65536, maxAge: 30000 }, got 'yes'"],
    [{ ack: { capacity: 0 } }, RangeError, 'toaMiddleware(options): options.ack.capacity must be from 1 to'],
  ])('options %p: %p at construction', (options, type, message) => {
    expect(() => toaMiddleware(options as never)).toThrow(type);
    expect(() => toaMiddleware(options as never)).toThrow(message);
  });
});

describe('node-toa/koa module', () => {
  it('exports the factory as module.exports, default, toaKoa and toaMiddleware', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cjs = require('../../lib/koa');
    expect(typeof cjs).toBe('function');
    expect(cjs.toaKoa).toBe(toaKoa);
    expect(cjs.toaMiddleware).toBe(toaKoa);
    expect(koaModule.default).toBe(toaKoa);
  });

  it.each([
    [5, TypeError, 'toaKoa(options): options must be an object, got number'],
    [{ setip: true }, TypeError, "toaKoa(options): unknown option 'setip' (known: trustProxy, kinds, multiple, setIp, ack)"],
    [{ setIp: null }, TypeError, 'toaKoa(options): setIp must be a boolean, got null'],
  ])('options %p: %p at construction', (options, type, message) => {
    expect(() => toaKoa(options as never)).toThrow(type);
    expect(() => toaKoa(options as never)).toThrow(message);
  });
});

describe('node-toa/fastify module', () => {
  it('is the plugin itself under require(), .default and .fastifyToa', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cjs = require('../../lib/fastify');
    expect(typeof cjs).toBe('function');
    expect(cjs.default).toBe(cjs);
    expect(cjs.fastifyToa).toBe(cjs);
    expect(fastifyModule.default).toBe(fastifyToa);
  });

  it("is a fastify-plugin named 'node-toa' for fastify >=4, not encapsulated", () => {
    const meta = (fastifyToa as unknown as Record<symbol, unknown>)[Symbol.for('plugin-meta')];
    expect(meta).toMatchObject({ fastify: '>=4', name: 'node-toa' });
    expect((fastifyToa as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')]).toBe(true);
  });
});

// Every version, the same cases.
describe.each(FRAMEWORKS.map((f) => [f.name, f] as const))('%s', (_name, framework) => {
  // Node 18 cannot require() an ES module, and Fastify 5's inject loads light-my-request 6, which
  // does (Fastify 5 needs Node 20): that one case is skipped there, by name.
  const no18 = framework.id === 'fastify5' && Number(process.versions.node.split('.')[0]) < 20;
  (no18 ? it.skip : it)(`in memory (light-my-request, inject()): realRemoteAddress() answers as a peer, without throwing; setIp keeps the framework's ip${no18 ? ' (skipped: Node 18 cannot require() an ES module, as Fastify 5 inject needs)' : ''}`, () => {
    expect(injectInChild(framework.id)).toEqual({
      status: 200,
      body: { real: { address: '127.0.0.1', port: 0, family: 'IPv4', source: 'peer' }, ip: '127.0.0.1' },
    });
  });

  onLinux('on loopback', () => {
    it("setIp: true without a TOA leaves the ip to the framework's own proxy setting (X-Forwarded-For)", async () => {
      const { server, close: stopApp } = await framework.server({ setIp: true }, true);
      try {
        await listen(server, { port: 0, host: '127.0.0.1' });
        const r = await getOnLoopback(port(server), { headers: { 'x-forwarded-for': '203.0.113.8' } });
        const answer = JSON.parse(r.responses[0].body);
        expect(answer.ip).toBe('203.0.113.8');
        expect(answer.real.source).toBe('peer');
      } finally {
        await stopApp();
      }
    });
  });
});

describe.each([...EXPRESS, ...KOA].map((f) => [f.name, f] as const))('%s on loopback', (_name, framework) => {
  (process.platform === 'linux' ? it : it.skip)('3 requests on one keep-alive connection: the same answer, the peer, each time', async () => {
    const { server, close: stopApp } = await framework.server({ trustProxy: ['198.51.100.2'] });
    try {
      await listen(server, { port: 0, host: '127.0.0.1' });
      const r = await getOnLoopback(port(server), { count: 3 });
      expect(r.connections).toBe(1);
      for (const x of r.responses) {
        expect(JSON.parse(x.body)).toEqual({ real: { address: '127.0.0.1', port: r.localPort, family: 'IPv4', source: 'peer' }, ip: '127.0.0.1' });
      }
    } finally {
      await stopApp();
    }
  });
});

describe.each([
  ['Express 5', express5],
  ['Express 4', express4],
])('%s, Express only', (_name, express) => {
  it('in memory, a hand-made request over a Duplex: a peer, without throwing', async () => {
    const socket = new Duplex({ read() {}, write(_chunk, _enc, cb) { cb(); } });
    const req = new http.IncomingMessage(socket as unknown as net.Socket);
    req.method = 'GET';
    req.url = '/';
    req.headers = { host: 'example.test' };
    const res = new http.ServerResponse(req);
    let body = '';
    const done = new Promise<void>((resolve) => {
      res.write = ((chunk: unknown) => ((body += String(chunk)), true)) as typeof res.write;
      res.end = ((chunk?: unknown) => {
        if (chunk !== undefined && typeof chunk !== 'function') body += String(chunk);
        resolve();
        return res;
      }) as typeof res.end;
    });
    expressApp(express)(req as never, res as never);
    await done;
    expect(JSON.parse(body).real).toEqual({ address: '', port: 0, family: 'IPv4', source: 'peer' });
  });

  onLinux('on loopback', () => {
    const servers: http.Server[] = [];
    afterEach(async () => {
      await Promise.all(servers.splice(0).map(stop));
    });

    async function startPlain(a: ReturnType<ExpressFactory>): Promise<{ server: http.Server; port: number }> {
      const server = http.createServer(a);
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { server, port: port(server) };
    }

    it('a server started without TCP_SAVE_SYN gets it at its first request, with one warning', async () => {
      // A fresh copy of the module: it warns once per process, and each Express version says it here.
      let fresh!: typeof toaMiddleware;
      jest.isolateModules(() => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        fresh = (require('../../lib/express') as typeof import('../../lib/express')).toaMiddleware;
      });
      const first = await startPlain(expressApp(express, undefined, undefined, fresh));
      expect(isEnabled(first.server)).toBe(false);
      const { warnings } = await collectWarnings(() => getOnLoopback(first.port, { count: 2 }));
      expect(isEnabled(first.server)).toBe(true);
      const late = warnings.filter((w) => w.code === 'NODE_TOA_ENABLED_LATE');
      expect(late).toHaveLength(1);
      expect(late[0].message).toContain('toa.listen(server, { port })');
      // A second late server in the same process: the advice was given already.
      const second = await startPlain(expressApp(express, undefined, undefined, fresh));
      const again = await collectWarnings(() => getOnLoopback(second.port));
      expect(isEnabled(second.server)).toBe(true);
      expect(again.warnings.filter((w) => w.code === 'NODE_TOA_ENABLED_LATE')).toHaveLength(0);
    });

    it('a server enabled before listen(): no warning', async () => {
      const server = http.createServer(expressApp(express));
      servers.push(server);
      enable(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { warnings } = await collectWarnings(() => getOnLoopback(port(server)));
      expect(warnings.filter((w) => w.code === 'NODE_TOA_ENABLED_LATE')).toHaveLength(0);
    });

    it("setIp: false leaves req.ip to Express's own trust proxy (X-Forwarded-For)", async () => {
      const server = http.createServer(expressApp(express, { setIp: false }, (a) => a.set('trust proxy', 'loopback')));
      servers.push(server);
      await listen(server, { port: 0, host: '127.0.0.1' });
      const r = await getOnLoopback(port(server), { headers: { 'x-forwarded-for': '203.0.113.7' } });
      const answer = JSON.parse(r.responses[0].body);
      expect(answer.ip).toBe('203.0.113.7');
      expect(answer.real.source).toBe('peer');
    });
  });
});

describe.each([
  ['Koa 3', Koa3],
  ['Koa 2', Koa2],
])('%s, Koa only', (_name, Koa) => {
  onLinux('on loopback', () => {
    const servers: http.Server[] = [];
    afterEach(async () => {
      await Promise.all(servers.splice(0).map(stop));
    });

    it('a server started without TCP_SAVE_SYN gets it at its first request, with a warning', async () => {
      let fresh!: typeof toaKoa;
      jest.isolateModules(() => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        fresh = (require('../../lib/koa') as typeof import('../../lib/koa')).toaKoa;
      });
      const app = new Koa();
      app.use(fresh());
      app.use((ctx) => {
        ctx.body = ctx.realRemoteAddress();
      });
      const server = http.createServer(app.callback());
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      expect(isEnabled(server)).toBe(false);
      const { warnings } = await collectWarnings(() => getOnLoopback(port(server)));
      expect(isEnabled(server)).toBe(true);
      expect(warnings.filter((w) => w.code === 'NODE_TOA_ENABLED_LATE').map((w) => w.message)).toEqual([
        expect.stringContaining('node-toa (koa): the server did not save SYNs until its first request'),
      ]);
    });

    it('setIp: true, and a later middleware may still assign ctx.request.ip, as Koa allows', async () => {
      const app = new Koa();
      app.use(toaKoa({ setIp: true }));
      app.use((ctx) => {
        ctx.request.ip = '192.0.2.200';
        ctx.body = { ip: ctx.ip };
      });
      const server = http.createServer(app.callback());
      servers.push(server);
      await listen(server, { port: 0, host: '127.0.0.1' });
      const r = await getOnLoopback(port(server));
      expect(JSON.parse(r.responses[0].body)).toEqual({ ip: '192.0.2.200' });
    });
  });
});

describe.each([
  ['Fastify 5', fastify5],
  ['Fastify 4', fastify4],
])('%s, Fastify only', (_name, fastify) => {
  it.each([
    [{ trustproxy: true }, TypeError, "fastifyToa(options): unknown option 'trustproxy' (known: trustProxy, kinds, multiple, setIp, ack, proxyProtocol)"],
    [{ setIp: 1 }, TypeError, 'fastifyToa(options): setIp must be a boolean, got 1'],
    [{ trustProxy: {} }, TypeError, 'trustProxy must be a boolean, a string, an array of strings or a function, got {}'],
  ])('register(fastifyToa, %p): ready() rejects with %p', async (options, type, message) => {
    const app = fastify();
    app.register(fastifyToa, options as never);
    await expect(app.ready()).rejects.toThrow(type);
    await expect(app.ready()).rejects.toThrow(message);
    await app.close().catch(() => undefined);
  });

  it("accepts Fastify's own register options (prefix, logLevel) beside its own", async () => {
    const app = fastify();
    app.register(fastifyToa, { prefix: '/x', logLevel: 'warn', setIp: true } as never);
    await app.ready();
    await app.close();
  });

  onLinux('on loopback', () => {
    it('the plugin enables fastify.server itself: saved SYNs from the first connection', async () => {
      const app = fastifyApp(fastify, { trustProxy: ['198.51.100.2'] });
      try {
        await app.listen({ port: 0, host: '127.0.0.1' });
        expect(isEnabled(app.server)).toBe(true);
        const r = await getOnLoopback(port(app.server), { count: 3 });
        expect(r.connections).toBe(1);
        for (const x of r.responses) {
          expect(JSON.parse(x.body)).toEqual({
            real: { address: '127.0.0.1', port: r.localPort, family: 'IPv4', source: 'peer' },
            ip: '127.0.0.1',
          });
        }
      } finally {
        await app.close();
      }
    });

    it('await app.ready(); await toa.listen(app.server, { port }): serves, and app.close() stops it', async () => {
      const app = fastifyApp(fastify);
      await app.ready();
      await listen(app.server, { port: 0, host: '127.0.0.1' });
      const r = await getOnLoopback(port(app.server));
      expect(JSON.parse(r.responses[0].body).real).toMatchObject({ address: '127.0.0.1', port: r.localPort });
      await app.close();
      expect(app.server.listening).toBe(false);
    });
  });
});
