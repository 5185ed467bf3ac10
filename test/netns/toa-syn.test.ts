// End to end: real SYNs carrying real TOA options, sent by a full-NAT proxy in a network
// namespace to a real Node server using node-toa, and real HTTP clients.
import * as http from 'node:http';
import * as net from 'node:net';
import { ADDR, ToaNet, describeE2E, useToaNet } from '../helpers/netns/toa-net';
import type { RealAddress, ToaOptions } from '../../lib/index';

const trustProxy = [ADDR.lip4, ADDR.lip6];

describeE2E('TOA in the SYN, end to end', () => {
  let netns: ToaNet;
  let toa: typeof import('../../lib/index');
  useToaNet((created) => (netns = created));
  beforeEach(async () => {
    jest.resetModules();
    toa = await import('../../lib/index');
  });

  /** An HTTP server that answers every request with realRemoteAddress(req.socket). */
  async function serve(options: ToaOptions | undefined, { enabled = true } = {}) {
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(toa.realRemoteAddress(req.socket, options)));
    });
    if (enabled) toa.enable(server);
    const port = await netns.serve(server);
    return { server, port };
  }

  async function ask(port: number, vip: string, localAddress: string, count = 1) {
    const result = await netns.request({ protocol: 'http', vip, port, localAddress, path: '/', count });
    expect(result.responses).toHaveLength(count);
    const answers = result.responses.map((r) => JSON.parse(r.body) as RealAddress);
    return { ...result, answers };
  }

  async function stop(server: net.Server) {
    (server as http.Server).closeAllConnections?.();
    await new Promise((r) => server.close(r));
  }

  it('a trusted IPv4 proxy, IPv4 client (kind 200): the client', async () => {
    const { server, port } = await serve({ trustProxy });
    try {
      const { answers, localAddress, localPort } = await ask(port, ADDR.vip4, ADDR.clients4[1]);
      expect(localAddress).toBe(ADDR.clients4[1]);
      expect(answers[0]).toEqual({
        address: ADDR.clients4[1], port: localPort, family: 'IPv4', source: 'toa', kind: 200, packet: 'syn',
        proxy: { address: ADDR.lip4, port: expect.any(Number), family: 'IPv4' },
      });
      // Full NAT: the proxy's source port is its own, not the client's.
      expect(answers[0].proxy!.port).not.toBe(localPort);
    } finally {
      await stop(server);
    }
  });

  it('an IPv6 proxy carrying an IPv4 client: the IPv4 client', async () => {
    const { server, port } = await serve({ trustProxy });
    try {
      const { answers, localPort } = await ask(port, ADDR.vip4to6, ADDR.clients4[2]);
      expect(answers[0]).toMatchObject({
        address: ADDR.clients4[2], port: localPort, family: 'IPv4', source: 'toa',
        proxy: { address: ADDR.lip6, family: 'IPv6' },
      });
    } finally {
      await stop(server);
    }
  });

  it('an IPv6 client (kind 254, len 20) behind an IPv6 proxy: the IPv6 client', async () => {
    const { server, port } = await serve({ trustProxy });
    try {
      const { answers, localPort } = await ask(port, ADDR.vip6, ADDR.clients6[1]);
      expect(answers[0]).toMatchObject({
        address: ADDR.clients6[1], port: localPort, family: 'IPv6', source: 'toa', kind: 254,
        proxy: { address: ADDR.lip6, family: 'IPv6' },
      });
    } finally {
      await stop(server);
    }
  });

  it('NAT64: an IPv6 client (kind 253, len 20) on an IPv4 connection', async () => {
    await netns.rule(ADDR.clients6[2], { where: 'syn', kind: 253, format: 'v6' });
    const { server, port } = await serve({ trustProxy });
    try {
      const { answers, localPort } = await ask(port, ADDR.vip6to4, ADDR.clients6[2]);
      expect(answers[0]).toMatchObject({
        address: ADDR.clients6[2], port: localPort, family: 'IPv6', source: 'toa', kind: 253,
        proxy: { address: ADDR.lip4, family: 'IPv4' },
      });
    } finally {
      await stop(server);
    }
  });

  it('an untrusted peer’s TOA is ignored: the peer, and one warning naming it', async () => {
    await netns.rule(ADDR.clients4[3], { where: 'syn', lip: ADDR.untrusted4 });
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const { server, port } = await serve({ trustProxy });
    try {
      const first = await ask(port, ADDR.vip4, ADDR.clients4[3]);
      const second = await ask(port, ADDR.vip4, ADDR.clients4[3]);
      for (const { answers } of [first, second]) {
        expect(answers[0]).toEqual({ address: ADDR.untrusted4, port: expect.any(Number), family: 'IPv4', source: 'peer' });
      }
      const ours = emitWarning.mock.calls.filter((c) => String(c[0]).includes(ADDR.untrusted4));
      expect(ours).toHaveLength(1);
      expect(String(ours[0][0])).toMatch(/not a trusted proxy.*add it to trustProxy/);
    } finally {
      emitWarning.mockRestore();
      await stop(server);
    }
  });

  it('the default trustProxy (false) trusts no one', async () => {
    const { server, port } = await serve(undefined);
    try {
      const { answers } = await ask(port, ADDR.vip4, ADDR.clients4[4]);
      expect(answers[0]).toMatchObject({ address: ADDR.lip4, source: 'peer' });
    } finally {
      await stop(server);
    }
  });

  it('configure() sets the defaults of calls without options', async () => {
    toa.configure({ trustProxy: ADDR.lip4 });
    const { server, port } = await serve(undefined);
    try {
      const { answers, localPort } = await ask(port, ADDR.vip4, ADDR.clients4[4]);
      expect(answers[0]).toMatchObject({ address: ADDR.clients4[4], port: localPort, source: 'toa' });
    } finally {
      await stop(server);
    }
  });

  it('three requests on one keep-alive connection: the same answer each time', async () => {
    const { server, port } = await serve({ trustProxy });
    try {
      const { answers, localPort } = await ask(port, ADDR.vip4, ADDR.clients4[5], 3);
      expect(answers).toHaveLength(3);
      for (const a of answers) {
        expect(a).toEqual(answers[0]);
        expect(a).toMatchObject({ address: ADDR.clients4[5], port: localPort, source: 'toa' });
      }
    } finally {
      await stop(server);
    }
  });

  it('without enable() no SYN is saved: the proxy, not the client', async () => {
    const { server, port } = await serve({ trustProxy }, { enabled: false });
    try {
      const { answers } = await ask(port, ADDR.vip4, ADDR.clients4[1]);
      expect(answers[0]).toMatchObject({ address: ADDR.lip4, family: 'IPv4', source: 'peer' });
    } finally {
      await stop(server);
    }
  });

  it('a connection without TOA: the peer', async () => {
    await netns.rule(ADDR.clients4[6], { where: 'none' });
    const { server, port } = await serve({ trustProxy });
    try {
      const { answers } = await ask(port, ADDR.vip4, ADDR.clients4[6]);
      expect(answers[0]).toMatchObject({ address: ADDR.lip4, source: 'peer' });
    } finally {
      await stop(server);
    }
  });

  it('kinds: 28 (Alibaba CDN) is read only when opted in', async () => {
    await netns.rule(ADDR.clients4[7], { where: 'syn', kind: 28, format: 'ali' });
    const opted = { trustProxy, kinds: [200, 253, 254, 28] };
    for (const [options, expected] of [
      [{ trustProxy }, { address: ADDR.lip4, source: 'peer' }],
      [opted, { address: ADDR.clients4[7], source: 'toa', kind: 28, port: 0 }],
    ] as const) {
      const { server, port } = await serve(options);
      try {
        const { answers } = await ask(port, ADDR.vip4, ADDR.clients4[7]);
        expect(answers[0]).toMatchObject(expected);
      } finally {
        await stop(server);
      }
    }
  });

  it('kind 252 (Alibaba SLB VTOA, opt-in): the client, and the VIP it dialled as destination', async () => {
    await netns.rule(ADDR.clients4[6], { where: 'syn', format: 'vtoa', vid: 7 });
    const { server, port } = await serve({ trustProxy, kinds: [200, 253, 254, 252] });
    try {
      const { answers, localPort } = await ask(port, ADDR.vip4, ADDR.clients4[6]);
      expect(answers[0]).toEqual({
        address: ADDR.clients4[6], port: localPort, family: 'IPv4', source: 'toa', kind: 252, packet: 'syn',
        proxy: { address: ADDR.lip4, port: expect.any(Number), family: 'IPv4' },
        destination: { address: ADDR.vip4, port, family: 'IPv4' },
      });
    } finally {
      await stop(server);
    }
  });

  it('a custom kind with a named layout (a vendor that moved its number)', async () => {
    await netns.rule(ADDR.clients4[8], { where: 'syn', kind: 230, format: 'v4' });
    const { server, port } = await serve({ trustProxy, kinds: [{ kind: 230, layout: 'ipv4' }] });
    try {
      const { answers, localPort } = await ask(port, ADDR.vip4, ADDR.clients4[8]);
      expect(answers[0]).toMatchObject({ address: ADDR.clients4[8], port: localPort, source: 'toa', kind: 230 });
    } finally {
      await stop(server);
    }
  });

  it('two copies of node-toa in one process share the read-once SYN', async () => {
    let other!: typeof import('../../lib/index');
    jest.isolateModules(() => {
      other = require('../../lib/index');
    });
    expect(other.realRemoteAddress).not.toBe(toa.realRemoteAddress);
    const server = http.createServer((req, res) => {
      const mine = toa.realRemoteAddress(req.socket, { trustProxy });
      const theirs = other.realRemoteAddress(req.socket, { trustProxy });
      res.end(JSON.stringify([mine, theirs]));
    });
    toa.enable(server);
    const port = await netns.serve(server);
    try {
      const result = await netns.request({ protocol: 'http', vip: ADDR.vip4, port, localAddress: ADDR.clients4[1], path: '/', count: 1 });
      const [mine, theirs] = JSON.parse(result.responses[0].body);
      expect(mine).toMatchObject({ address: ADDR.clients4[1], port: result.localPort, source: 'toa' });
      expect(theirs).toEqual(mine);
    } finally {
      await stop(server);
    }
  });

  it('socket.realRemoteAddress() from node-toa/register on a plain net server', async () => {
    await import('../../lib/register');
    const server = net.createServer((socket) => {
      socket.once('data', () => socket.end(JSON.stringify(socket.realRemoteAddress({ trustProxy }))));
    });
    toa.enable(server);
    const port = await netns.serve(server);
    try {
      const result = await netns.request({ protocol: 'tcp', vip: ADDR.vip4, port, localAddress: ADDR.clients4[2], body: 'hi\n' });
      expect(JSON.parse(result.responses[0].body)).toMatchObject({
        address: ADDR.clients4[2], port: result.localPort, source: 'toa',
      });
    } finally {
      await stop(server);
    }
  });
});
