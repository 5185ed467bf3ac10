// node-toa/express with real Express 5 and 4 servers: on loopback (the peer, keep-alive, turning
// TCP_SAVE_SYN on at the first request, setIp and Express's own trust proxy), in memory
// (light-my-request and a hand-made request over a Duplex), and end to end with TOA SYNs.
import { Duplex } from 'node:stream';
import * as http from 'node:http';
import type * as net from 'node:net';
import { enable, isEnabled, listen } from '../../lib/index';
import { toaMiddleware } from '../../lib/express';
import * as expressModule from '../../lib/express';
import { close } from '../helpers/sockets/pair';
import { injectInChild, type Framework } from '../helpers/frameworks/in-memory';
import { ask, frameworkCases, trustProxy, type StartApp } from '../helpers/frameworks/e2e-cases';
import { collectWarnings, getOnLoopback } from '../helpers/sockets/http-client';
import { ADDR, ToaNet, describeE2E, useToaNet } from '../helpers/netns/toa-net';

type ExpressFactory = typeof import('express');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const express5 = require('express') as ExpressFactory;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require('express4') as ExpressFactory;

const onLinux = process.platform === 'linux' ? describe : describe.skip;

/** An app that answers with what the request says about its client. */
function app(
  express: ExpressFactory,
  options?: Parameters<typeof toaMiddleware>[0],
  setup?: (a: ReturnType<ExpressFactory>) => void,
  factory: typeof toaMiddleware = toaMiddleware,
) {
  const a = express();
  setup?.(a);
  a.use(factory(options));
  a.get('/', (req, res) => {
    res.json({ real: req.realRemoteAddress(), ip: req.ip });
  });
  return a;
}

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

describe.each([
  ['Express 5', express5, 'express5'],
  ['Express 4', express4, 'express4'],
])('%s in memory', (_name, express, framework) => {
  it('light-my-request: realRemoteAddress() answers as a peer, without throwing; setIp keeps req.ip', () => {
    expect(injectInChild(framework as Framework)).toEqual({
      status: 200,
      body: { real: { address: '127.0.0.1', port: 0, family: 'IPv4', source: 'peer' }, ip: '127.0.0.1' },
    });
  });

  it('a hand-made request over a Duplex: a peer, without throwing', async () => {
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
    app(express)(req as never, res as never);
    await done;
    expect(JSON.parse(body).real).toEqual({ address: '', port: 0, family: 'IPv4', source: 'peer' });
  });
});

onLinux.each([
  ['Express 5', express5],
  ['Express 4', express4],
])('%s on loopback', (_name, express) => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      (s as http.Server).closeAllConnections?.();
      await close(s);
    }
  });

  async function start(a: ReturnType<ExpressFactory>, how: 'toa.listen' | 'plain'): Promise<{ server: http.Server; port: number }> {
    const server = http.createServer(a);
    servers.push(server);
    if (how === 'toa.listen') await listen(server, { port: 0, host: '127.0.0.1' });
    else await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, port: (server.address() as net.AddressInfo).port };
  }

  it('3 requests on one keep-alive connection: the same answer, the peer, each time', async () => {
    const { port } = await start(app(express, { trustProxy: ['198.51.100.2'] }), 'toa.listen');
    const r = await getOnLoopback(port, { count: 3 });
    expect(r.connections).toBe(1);
    const answers = r.responses.map((x) => JSON.parse(x.body));
    for (const a of answers) {
      expect(a.real).toEqual({ address: '127.0.0.1', port: r.localPort, family: 'IPv4', source: 'peer' });
    }
  });

  it('a server started without TCP_SAVE_SYN gets it at its first request, with one warning', async () => {
    // A fresh copy of the module: it warns once per process, and each Express version says it here.
    let fresh!: typeof toaMiddleware;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      fresh = (require('../../lib/express') as typeof import('../../lib/express')).toaMiddleware;
    });
    const { server, port } = await start(app(express, undefined, undefined, fresh), 'plain');
    expect(isEnabled(server)).toBe(false);
    const { warnings } = await collectWarnings(() => getOnLoopback(port, { count: 2 }));
    expect(isEnabled(server)).toBe(true);
    const late = warnings.filter((w) => w.code === 'NODE_TOA_ENABLED_LATE');
    expect(late).toHaveLength(1);
    expect(late[0].message).toContain('toa.listen(server, { port })');
    // A second late server in the same process: the advice was given already.
    const second = await start(app(express, undefined, undefined, fresh), 'plain');
    const again = await collectWarnings(() => getOnLoopback(second.port));
    expect(isEnabled(second.server)).toBe(true);
    expect(again.warnings.filter((w) => w.code === 'NODE_TOA_ENABLED_LATE')).toHaveLength(0);
  });

  it('a server enabled before listen(): no warning', async () => {
    const a = app(express);
    const server = http.createServer(a);
    servers.push(server);
    enable(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { warnings } = await collectWarnings(() => getOnLoopback((server.address() as net.AddressInfo).port));
    expect(warnings.filter((w) => w.code === 'NODE_TOA_ENABLED_LATE')).toHaveLength(0);
  });

  it("setIp: false leaves req.ip to Express's own trust proxy (X-Forwarded-For)", async () => {
    const { port } = await start(app(express, { setIp: false }, (a) => a.set('trust proxy', 'loopback')), 'toa.listen');
    const r = await getOnLoopback(port, { headers: { 'x-forwarded-for': '203.0.113.7' } });
    const answer = JSON.parse(r.responses[0].body);
    expect(answer.ip).toBe('203.0.113.7');
    expect(answer.real.source).toBe('peer');
  });

  it("setIp: true without a TOA: req.ip is still Express's answer", async () => {
    const { port } = await start(app(express, { setIp: true }, (a) => a.set('trust proxy', 'loopback')), 'toa.listen');
    const r = await getOnLoopback(port, { headers: { 'x-forwarded-for': '203.0.113.8' } });
    expect(JSON.parse(r.responses[0].body).ip).toBe('203.0.113.8');
  });
});

async function stop(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await close(server);
}

/** Express as documented: the server saves SYNs before the first client comes. */
const startExpress =
  (express: ExpressFactory): StartApp =>
  async (netns, options) => {
    const server = http.createServer(app(express, options));
    enable(server);
    const port = await netns.serve(server);
    return { port, close: () => stop(server) };
  };

describeE2E('Express end to end, TOA SYNs through the proxy', () => {
  let netns: ToaNet;
  useToaNet((created) => (netns = created));

  describe('Express 5', () => frameworkCases(() => netns, startExpress(express5), { v4: 0, v6: 0 }));
  describe('Express 4', () => frameworkCases(() => netns, startExpress(express4), { v4: 3, v6: 3 }));

  it('a server nobody enabled: its first connection answers the proxy (with one warning), the next ones the client', async () => {
    let fresh!: typeof toaMiddleware;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      fresh = (require('../../lib/express') as typeof import('../../lib/express')).toaMiddleware;
    });
    const server = http.createServer(app(express5, { trustProxy }, undefined, fresh));
    const port = await netns.serve(server);
    try {
      expect(isEnabled(server)).toBe(false);
      const first = await collectWarnings(() => ask(netns, port, ADDR.vip4, ADDR.clients4[7]));
      expect(first.result.answers[0].real).toMatchObject({ address: ADDR.lip4, source: 'peer' });
      expect(first.warnings.filter((w) => w.code === 'NODE_TOA_ENABLED_LATE')).toHaveLength(1);
      expect(isEnabled(server)).toBe(true);
      const second = await ask(netns, port, ADDR.vip4, ADDR.clients4[8]);
      expect(second.answers[0].real).toMatchObject({ address: ADDR.clients4[8], port: second.localPort, source: 'toa' });
    } finally {
      await stop(server);
    }
  });
});
