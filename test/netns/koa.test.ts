// node-toa/koa with real Koa 3 and 2: module shape, option errors, in memory, loopback (setIp
// against Koa's own proxy setting, ctx.ip still assignable), and end to end with TOA SYNs.
import * as http from 'node:http';
import type * as net from 'node:net';
import { enable, isEnabled, listen } from '../../lib/index';
import { toaKoa } from '../../lib/koa';
import * as koaModule from '../../lib/koa';
import { close } from '../helpers/sockets/pair';
import { frameworkCases, type StartApp } from '../helpers/frameworks/e2e-cases';
import { injectInChild } from '../helpers/frameworks/in-memory';
import { collectWarnings, getOnLoopback } from '../helpers/sockets/http-client';
import { ToaNet, describeE2E, useToaNet } from '../helpers/netns/toa-net';

type KoaClass = typeof import('koa');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Koa3 = require('koa') as KoaClass;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Koa2 = require('koa2') as KoaClass;

const onLinux = process.platform === 'linux' ? describe : describe.skip;

function build(Koa: KoaClass, options?: Parameters<typeof toaKoa>[0], proxy = false) {
  const app = new Koa({ proxy });
  app.use(toaKoa(options));
  app.use((ctx) => {
    ctx.body = { real: ctx.realRemoteAddress(), ip: ctx.ip };
  });
  return app;
}

async function stop(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await close(server);
}

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

describe.each([
  ['Koa 3', Koa3, 'koa3'],
  ['Koa 2', Koa2, 'koa2'],
])('%s', (_name, Koa, framework) => {
  it('in memory (light-my-request): realRemoteAddress() answers as a peer, without throwing', () => {
    expect(injectInChild(framework as 'koa3' | 'koa2')).toEqual({
      status: 200,
      body: { real: { address: '127.0.0.1', port: 0, family: 'IPv4', source: 'peer' }, ip: '127.0.0.1' },
    });
  });

  onLinux('on loopback', () => {
    const servers: http.Server[] = [];
    afterEach(async () => {
      await Promise.all(servers.splice(0).map(stop));
    });

    async function start(app: { callback(): http.RequestListener }): Promise<number> {
      const server = http.createServer(app.callback());
      servers.push(server);
      await listen(server, { port: 0, host: '127.0.0.1' });
      return (server.address() as net.AddressInfo).port;
    }

    it('keep-alive: 3 requests, one connection, the peer each time', async () => {
      const port = await start(build(Koa));
      const r = await getOnLoopback(port, { count: 3 });
      expect(r.connections).toBe(1);
      for (const x of r.responses) {
        expect(JSON.parse(x.body).real).toEqual({ address: '127.0.0.1', port: r.localPort, family: 'IPv4', source: 'peer' });
      }
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
      const { warnings } = await collectWarnings(() => getOnLoopback((server.address() as net.AddressInfo).port));
      expect(isEnabled(server)).toBe(true);
      expect(warnings.filter((w) => w.code === 'NODE_TOA_ENABLED_LATE').map((w) => w.message)).toEqual([
        expect.stringContaining('node-toa (koa): the server did not save SYNs until its first request'),
      ]);
    });

    it("setIp: true without a TOA leaves ctx.ip to Koa's proxy setting (X-Forwarded-For)", async () => {
      const port = await start(build(Koa, { setIp: true }, true));
      const r = await getOnLoopback(port, { headers: { 'x-forwarded-for': '203.0.113.10' } });
      expect(JSON.parse(r.responses[0].body).ip).toBe('203.0.113.10');
    });

    it('setIp: true, and a later middleware may still assign ctx.request.ip, as Koa allows', async () => {
      const app = new Koa();
      app.use(toaKoa({ setIp: true }));
      app.use((ctx) => {
        ctx.request.ip = '192.0.2.200';
        ctx.body = { ip: ctx.ip };
      });
      const port = await start(app);
      const r = await getOnLoopback(port);
      expect(JSON.parse(r.responses[0].body)).toEqual({ ip: '192.0.2.200' });
    });
  });
});

const startKoa =
  (Koa: KoaClass): StartApp =>
  async (netns, options) => {
    const server = http.createServer(build(Koa, options).callback());
    enable(server);
    const port = await netns.serve(server);
    return { port, close: () => stop(server) };
  };

describeE2E('Koa end to end, TOA SYNs through the proxy', () => {
  let netns: ToaNet;
  useToaNet((created) => (netns = created));

  describe('Koa 3', () => frameworkCases(() => netns, startKoa(Koa3), { v4: 0, v6: 0 }));
  describe('Koa 2', () => frameworkCases(() => netns, startKoa(Koa2), { v4: 5, v6: 5 }));
});
