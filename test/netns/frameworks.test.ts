// node-toa/express, node-toa/koa and node-toa/fastify end to end: each version's app behind the
// full-NAT proxy of the netns harness, with TOA SYNs from real clients, through the same cases
// (helpers/frameworks/e2e-cases.ts). Their module shape, option errors, in-memory requests and
// loopback servers are in test/loopback/frameworks.test.ts.
import * as http from 'node:http';
import { enable, isEnabled } from '../../lib/index';
import { toaMiddleware } from '../../lib/express';
import { EXPRESS, FASTIFY, KOA, expressApp, express5, fastify5, type FrameworkApp } from '../helpers/frameworks/apps';
import { ask, frameworkCases, trustProxy, type StartApp } from '../helpers/frameworks/e2e-cases';
import { collectWarnings } from '../helpers/sockets/http-client';
import { close } from '../helpers/sockets/pair';
import { ADDR, ToaNet, describeE2E, useToaNet } from '../helpers/netns/toa-net';

/**
 * As the docs say: Express and Koa servers are enabled before the first client comes; Fastify's
 * plugin enabled its server at ready().
 */
const start =
  (framework: FrameworkApp): StartApp =>
  async (netns, options) => {
    const { server, close: stop } = await framework.server(options);
    if (framework.family !== 'fastify') enable(server);
    const port = await netns.serve(server);
    return { port, close: stop };
  };

/** The cases only one framework has, with the family's ToaNet. */
const onlyExpress = (netns: () => ToaNet) =>
  it('a server nobody enabled: its first connection answers the proxy (with one warning), the next ones the client', async () => {
    let fresh!: typeof toaMiddleware;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      fresh = (require('../../lib/express') as typeof import('../../lib/express')).toaMiddleware;
    });
    const server = http.createServer(expressApp(express5, { trustProxy }, undefined, fresh));
    const port = await netns().serve(server);
    try {
      expect(isEnabled(server)).toBe(false);
      const first = await collectWarnings(() => ask(netns(), port, ADDR.vip4, ADDR.clients4[7]));
      expect(first.result.answers[0].real).toMatchObject({ address: ADDR.lip4, source: 'peer' });
      expect(first.warnings.filter((w) => w.code === 'NODE_TOA_ENABLED_LATE')).toHaveLength(1);
      expect(isEnabled(server)).toBe(true);
      const second = await ask(netns(), port, ADDR.vip4, ADDR.clients4[8]);
      expect(second.answers[0].real).toMatchObject({ address: ADDR.clients4[8], port: second.localPort, source: 'toa' });
    } finally {
      server.closeAllConnections();
      await close(server);
    }
  });

const onlyFastify = (netns: () => ToaNet) =>
  it('(control) without the plugin no SYN is saved: the proxy, not the client', async () => {
    const app = fastify5();
    app.get('/', async (request) => ({ ip: request.ip }));
    await app.ready();
    const port = await netns().serve(app.server);
    try {
      expect(isEnabled(app.server)).toBe(false);
      const r = await netns().request({ protocol: 'http', vip: ADDR.vip4, port, localAddress: ADDR.clients4[8] });
      expect(JSON.parse(r.responses[0].body).ip.replace(/^::ffff:/, '')).toBe(ADDR.lip4);
    } finally {
      await app.close();
    }
  });

// One namespace per framework; `clients` (offsets into ADDR.clients4/6) keep the two versions
// sharing it on different client addresses.
const FAMILIES: Array<{ name: string; versions: FrameworkApp[]; clients: Array<{ v4: number; v6: number }>; only?: (netns: () => ToaNet) => void }> = [
  { name: 'Express', versions: EXPRESS, clients: [{ v4: 0, v6: 0 }, { v4: 3, v6: 3 }], only: onlyExpress },
  { name: 'Koa', versions: KOA, clients: [{ v4: 0, v6: 0 }, { v4: 5, v6: 5 }] },
  { name: 'Fastify', versions: FASTIFY, clients: [{ v4: 0, v6: 0 }, { v4: 4, v6: 4 }], only: onlyFastify },
];

for (const family of FAMILIES) {
  describeE2E(`${family.name} end to end, TOA SYNs through the proxy`, () => {
    let netns: ToaNet;
    useToaNet((created) => (netns = created));
    family.versions.forEach((framework, i) => {
      describe(framework.name, () => frameworkCases(() => netns, start(framework), family.clients[i]));
    });
    family.only?.(() => netns);
  });
}
