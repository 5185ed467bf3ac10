// node-toa/fastify with real Fastify 5 and 4: the plugin's shape and option errors, enable() on
// fastify.server at registration, inject() (in memory), loopback, and end to end with TOA SYNs,
// started both as Fastify's own listen would (the plugin enables the server) and with
// toa.listen(app.server) after ready().
import * as net from 'node:net';
import { isEnabled, listen } from '../../lib/index';
import { fastifyToa } from '../../lib/fastify';
import * as fastifyModule from '../../lib/fastify';
import { frameworkCases, type StartApp } from '../helpers/frameworks/e2e-cases';
import { injectInChild } from '../helpers/frameworks/in-memory';
import { getOnLoopback } from '../helpers/sockets/http-client';
import { ADDR, ToaNet, describeE2E, useToaNet } from '../helpers/netns/toa-net';

type FastifyFactory = typeof import('fastify').default;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fastify5 = require('fastify') as FastifyFactory;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fastify4 = require('fastify4') as FastifyFactory;

const onLinux = process.platform === 'linux' ? describe : describe.skip;

function build(fastify: FastifyFactory, options?: Parameters<typeof fastifyToa>[1]) {
  const app = fastify();
  app.register(fastifyToa, options ?? {});
  app.get('/', async (request) => ({ real: request.realRemoteAddress(), ip: request.ip }));
  return app;
}

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

describe.each([
  ['Fastify 5', fastify5, 'fastify5'],
  ['Fastify 4', fastify4, 'fastify4'],
])('%s', (_name, fastify, framework) => {
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

  // Node 18 cannot require() an ES module, and Fastify 5's inject loads light-my-request 6, which
  // does (Fastify 5 needs Node 20): that one case is skipped there, by name.
  const no18 = framework === 'fastify5' && Number(process.versions.node.split('.')[0]) < 20;
  (no18 ? it.skip : it)(`inject(): realRemoteAddress() answers as a peer, without throwing; setIp keeps request.ip${no18 ? ' (skipped: Node 18 cannot require() an ES module, as Fastify 5 inject needs)' : ''}`, () => {
    expect(injectInChild(framework as 'fastify5' | 'fastify4')).toEqual({
      status: 200,
      body: { real: { address: '127.0.0.1', port: 0, family: 'IPv4', source: 'peer' }, ip: '127.0.0.1' },
    });
  });

  onLinux('on loopback', () => {
    it('the plugin enables fastify.server itself: saved SYNs from the first connection', async () => {
      const app = build(fastify, { trustProxy: ['198.51.100.2'] });
      try {
        await app.listen({ port: 0, host: '127.0.0.1' });
        expect(isEnabled(app.server)).toBe(true);
        const { port } = app.server.address() as net.AddressInfo;
        const r = await getOnLoopback(port, { count: 3 });
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
      const app = build(fastify);
      await app.ready();
      await listen(app.server, { port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as net.AddressInfo;
      const r = await getOnLoopback(port);
      expect(JSON.parse(r.responses[0].body).real).toMatchObject({ address: '127.0.0.1', port: r.localPort });
      await app.close();
      expect(app.server.listening).toBe(false);
    });

    it("setIp: true without a TOA leaves request.ip to Fastify's trustProxy (X-Forwarded-For)", async () => {
      const app = fastify({ trustProxy: '127.0.0.1' });
      app.register(fastifyToa, { setIp: true });
      app.get('/', async (request) => ({ ip: request.ip }));
      try {
        await app.listen({ port: 0, host: '127.0.0.1' });
        const { port } = app.server.address() as net.AddressInfo;
        const r = await getOnLoopback(port, { headers: { 'x-forwarded-for': '203.0.113.9' } });
        expect(JSON.parse(r.responses[0].body)).toEqual({ ip: '203.0.113.9' });
      } finally {
        await app.close();
      }
    });
  });
});

/** Fastify's own listen(): the plugin turned TCP_SAVE_SYN on at registration. */
const startFastify =
  (fastify: FastifyFactory): StartApp =>
  async (netns, options) => {
    const app = build(fastify, options);
    await app.ready();
    const port = await netns.serve(app.server);
    return { port, close: () => app.close() };
  };

describeE2E('Fastify end to end, TOA SYNs through the proxy', () => {
  let netns: ToaNet;
  useToaNet((created) => (netns = created));

  describe('Fastify 5', () => frameworkCases(() => netns, startFastify(fastify5), { v4: 0, v6: 0 }));
  describe('Fastify 4', () => frameworkCases(() => netns, startFastify(fastify4), { v4: 4, v6: 4 }));

  it('(control) without the plugin no SYN is saved: the proxy, not the client', async () => {
    const app = fastify5();
    app.get('/', async (request) => ({ ip: request.ip }));
    await app.ready();
    const port = await netns.serve(app.server);
    try {
      expect(isEnabled(app.server)).toBe(false);
      const r = await netns.request({ protocol: 'http', vip: ADDR.vip4, port, localAddress: ADDR.clients4[8] });
      expect(JSON.parse(r.responses[0].body).ip.replace(/^::ffff:/, '')).toBe(ADDR.lip4);
    } finally {
      await app.close();
    }
  });
});
