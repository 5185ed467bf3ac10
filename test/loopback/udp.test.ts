// UDP on loopback, real datagrams through test relays (test/helpers/producers/udp-relay.ts), one per producer
// behaviour: SPP on every datagram with the header expected back on replies (Spectrum, EdgeOne),
// PROXY v2 on the first datagram of a flow only (Spectrum, DPVS), PROXY v2 on every datagram
// (caddy-l4, go-proxyproto), each over IPv4 and IPv6. The relay sends from 127.0.0.1 / ::1 and
// names a documentation address as the client, so the server's answer shows where it came from;
// replies to that address reach the client only through the relay.
import * as dgram from 'node:dgram';
import { channel } from 'node:diagnostics_channel';
import { enable, metrics } from '../../lib/index';
import { udpFlowCount } from '../../lib/udp/socket';
import type { UdpRemoteInfo } from '../../lib/udp/receive';
import type { UdpResolveMessage } from '../../lib/udp/report';
import { UdpClient, UdpRelay, ppDgramHeader, sppHeader, type RelayMode, type UdpEndpoint } from '../helpers/producers/udp-relay';
import { proxyV2 } from '../helpers/vectors/proxy-vectors';

interface Seen {
  msg: string;
  rinfo: UdpRemoteInfo;
}

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

function bind(socket: dgram.Socket, host: string): Promise<void> {
  return new Promise((resolve) => socket.bind(0, host, resolve));
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

/** An echo server: each datagram answered to rinfo with what rinfo said. */
async function echoServer(host: string, options: Parameters<typeof enableDgram>[1], when: 'before' | 'after' = 'after') {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  if (when === 'before') enableDgram(socket, options);
  await bind(socket, host);
  if (when === 'after') enableDgram(socket, options);
  const seen: Seen[] = [];
  socket.on('message', (msg, rinfo) => {
    seen.push({ msg: msg.toString(), rinfo: { ...(rinfo as UdpRemoteInfo) } });
    socket.send(`${rinfo.address} ${rinfo.port} ${(rinfo as UdpRemoteInfo).source} ${msg}`, rinfo.port, rinfo.address);
  });
  open.push({ close: () => closeSocket(socket) });
  return { socket, seen, endpoint: { address: host, port: socket.address().port } };
}

const enableDgram = (socket: dgram.Socket, options: Parameters<typeof enable>[1] | Record<string, unknown>) =>
  (enable as unknown as (s: dgram.Socket, o: unknown) => dgram.Socket)(socket, options);

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

const CLAIM4 = (real: UdpEndpoint): UdpEndpoint => ({ address: '203.0.113.7', port: real.port });
const CLAIM6 = (real: UdpEndpoint): UdpEndpoint => ({ address: '2001:db8::7', port: real.port });

const PRODUCERS: Array<{ mode: RelayMode; option: 'spp' | 'proxyProtocol'; source: string }> = [
  { mode: 'spp', option: 'spp', source: 'spp' },
  { mode: 'pp-first', option: 'proxyProtocol', source: 'proxy-protocol' },
  { mode: 'pp-every', option: 'proxyProtocol', source: 'proxy-protocol' },
];

describe.each([
  { family: 'IPv4', host: '127.0.0.1', clientHost: '127.0.0.2', claim: CLAIM4, claimed: '203.0.113.7' },
  { family: 'IPv6', host: '::1', clientHost: '::1', claim: CLAIM6, claimed: '2001:db8::7' },
])('$family', ({ host, clientHost, claim, claimed }) => {
  describe.each(PRODUCERS)('relay $mode', ({ mode, option, source }) => {
    it('gives every datagram the client the header named, and replies reach the client through the relay', async () => {
      const server = await echoServer(host, { trustProxy: host, [option]: true });
      const relay = await UdpRelay.start({ mode, server: server.endpoint, host, claim });
      open.push(relay);
      const client = await UdpClient.start(clientHost);
      open.push(client);
      for (let i = 0; i < 3; i++) client.send(`hello ${i}`, relay.endpoint);
      const replies = await client.replies(3);
      const port = client.endpoint.port;
      expect(replies.sort()).toEqual([0, 1, 2].map((i) => `${claimed} ${port} ${source} hello ${i}`));
      const upstream = relay.upstreamOf(client.endpoint)!;
      for (const { msg, rinfo } of server.seen) {
        expect(rinfo).toMatchObject({
          address: claimed,
          port,
          family: claimed.includes(':') ? 'IPv6' : 'IPv4',
          source,
          size: Buffer.byteLength(msg),
          proxy: { address: host, port: upstream.port, family: host.includes(':') ? 'IPv6' : 'IPv4' },
        });
      }
      if (mode === 'spp') expect(relay.replies).toEqual({ withHeader: 3, withoutHeader: 0, wrongHeader: 0 });
      else expect(relay.replies).toEqual({ withHeader: 0, withoutHeader: 3, wrongHeader: 0 });
    });
  });

  it('two clients through one relay keep their own addresses and replies', async () => {
    const server = await echoServer(host, { trustProxy: host, proxyProtocol: true });
    let n = 0;
    const relay = await UdpRelay.start({
      mode: 'pp-first',
      server: server.endpoint,
      host,
      claim: (real) => ({ address: claimed.replace(/7$/, String(++n)), port: real.port }),
    });
    open.push(relay);
    const a = await UdpClient.start(clientHost);
    const b = await UdpClient.start(clientHost);
    open.push(a, b);
    a.send('a1', relay.endpoint);
    await a.replies(1);
    b.send('b1', relay.endpoint);
    await b.replies(1);
    a.send('a2', relay.endpoint);
    b.send('b2', relay.endpoint);
    const ra = await a.replies(2);
    const rb = await b.replies(2);
    const one = claimed.replace(/7$/, '1');
    const two = claimed.replace(/7$/, '2');
    expect(ra).toEqual([`${one} ${a.endpoint.port} proxy-protocol a1`, `${one} ${a.endpoint.port} proxy-protocol a2`]);
    expect(rb).toEqual([`${two} ${b.endpoint.port} proxy-protocol b1`, `${two} ${b.endpoint.port} proxy-protocol b2`]);
  });
});

describe('trust', () => {
  it('from a sender not trusted, a forged header is data: the bytes as they are, the sender as rinfo', async () => {
    const server = await echoServer('127.0.0.1', { trustProxy: '127.0.0.1', spp: true, proxyProtocol: true });
    const sender = await UdpClient.start('127.0.0.2');
    open.push(sender);
    const before = metrics().udp.refused.untrusted;
    const forged = Buffer.concat([sppHeader({ address: '203.0.113.66', port: 1 }, { address: '127.0.0.1', port: 2 }), Buffer.from('x')]);
    sender.send(forged, server.endpoint);
    const pp = Buffer.concat([ppDgramHeader({ address: '203.0.113.67', port: 1 }, { address: '127.0.0.1', port: 2 }), Buffer.from('y')]);
    sender.send(pp, server.endpoint);
    await until(() => server.seen.length === 2);
    expect(server.seen.map((s) => s.rinfo)).toEqual([
      { address: '127.0.0.2', port: sender.endpoint.port, family: 'IPv4', size: forged.length, source: 'peer' },
      { address: '127.0.0.2', port: sender.endpoint.port, family: 'IPv4', size: pp.length, source: 'peer' },
    ]);
    expect(server.seen[0].msg).toBe(forged.toString());
    expect(metrics().udp.refused.untrusted).toBe(before + 2);
    expect(udpFlowCount(server.socket)).toBe(0);
  });
});

describe('a trusted proxy', () => {
  async function trustedSender() {
    const sender = await UdpClient.start('127.0.0.1');
    open.push(sender);
    return sender;
  }

  const CLIENT = { address: '198.51.100.20', port: 40000 };
  // Whole datagrams.
  type Bad = [string, Buffer, 'malformed' | 'tooLarge'];
  const bad = ([
    ['an SPP header cut short (a datagram of 37 bytes)', sppHeader(CLIENT, { address: '127.0.0.1', port: 1 }).subarray(0, 37), 'malformed'],
    ['an SPP header with :: as the client', sppHeader({ address: '::', port: 5 }, { address: '127.0.0.1', port: 1 }), 'malformed'],
    ['a PROXY v2 header longer than the datagram', ppDgramHeader(CLIENT, { address: '127.0.0.1', port: 1 }).subarray(0, 27), 'malformed'],
    ['a PROXY v2 header of version 3', Buffer.from(proxyV2({ source: CLIENT, destination: { address: '127.0.0.1', port: 1 }, transport: 'dgram', versionCommand: 0x31 })), 'malformed'],
    ['a PROXY v2 header for TCP (0x11) in a datagram', Buffer.from(proxyV2({ source: CLIENT, destination: { address: '127.0.0.1', port: 1 }, transport: 'stream' })), 'malformed'],
    ['a PROXY v2 header with 0.0.0.0 as the source', Buffer.from(proxyV2({ source: { address: '0.0.0.0', port: 9 }, destination: { address: '127.0.0.1', port: 1 }, transport: 'dgram' })), 'malformed'],
    ['a PROXY v2 header of 5000 bytes (TLVs)', Buffer.from(proxyV2({ source: CLIENT, destination: { address: '127.0.0.1', port: 1 }, transport: 'dgram', tlvs: [{ type: 0xe0, value: new Uint8Array(4970) }] })), 'tooLarge'],
  ] as Bad[]).map(([name, header, reason]): Bad => [
    name,
    name.includes('cut') || name.includes('longer') ? header : Buffer.concat([header, Buffer.from('bad')]),
    reason,
  ]);

  it.each(bad)('drops a datagram with %s, counts it, and delivers the next good one', async (_name, header, reason) => {
    const server = await echoServer('127.0.0.1', { trustProxy: '127.0.0.1', spp: 'optional', proxyProtocol: 'optional' });
    const sender = await trustedSender();
    const before = metrics().udp.dropped[reason];
    // Per port too (a delta: the kernel may give this port to a socket of an earlier test again).
    const portBefore = metrics().ports[String(server.endpoint.port)]?.udp.dropped[reason] ?? 0;
    sender.send(header, server.endpoint);
    sender.send(Buffer.concat([ppDgramHeader(CLIENT, server.endpoint), Buffer.from('good')]), server.endpoint);
    await until(() => server.seen.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(server.seen.map((s) => [s.msg, s.rinfo.address, s.rinfo.source])).toEqual([['good', CLIENT.address, 'proxy-protocol']]);
    expect(metrics().udp.dropped[reason]).toBe(before + 1);
    expect(metrics().ports[String(server.endpoint.port)].udp.dropped[reason]).toBe(portBefore + 1);
  });

  it('without a header on a flow not seen before: true drops it and counts it, optional delivers it as the peer', async () => {
    const required = await echoServer('127.0.0.1', { trustProxy: '127.0.0.1', spp: true });
    const optional = await echoServer('127.0.0.1', { trustProxy: '127.0.0.1', spp: 'optional' });
    const sender = await trustedSender();
    const before = metrics().udp.dropped.missing;
    sender.send('no header', required.endpoint);
    sender.send('no header', optional.endpoint);
    await until(() => optional.seen.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(required.seen).toEqual([]);
    expect(metrics().udp.dropped.missing).toBe(before + 1);
    expect(optional.seen[0]).toEqual({
      msg: 'no header',
      rinfo: { address: '127.0.0.1', port: sender.endpoint.port, family: 'IPv4', size: 9, source: 'peer' },
    });
  });

  it('a PROXY v2 LOCAL header (a health check) is taken off and the datagram is the proxy\'s own', async () => {
    const server = await echoServer('127.0.0.1', { trustProxy: '127.0.0.1', proxyProtocol: true });
    const sender = await trustedSender();
    sender.send(Buffer.concat([Buffer.from(proxyV2({ command: 'LOCAL' })), Buffer.from('ping')]), server.endpoint);
    await until(() => server.seen.length === 1);
    expect(server.seen[0]).toEqual({ msg: 'ping', rinfo: { address: '127.0.0.1', port: sender.endpoint.port, family: 'IPv4', size: 4, source: 'peer' } });
  });

  it('a flow is remembered for maxAge, then forgotten (required: the header-less datagram is dropped)', async () => {
    const server = await echoServer('127.0.0.1', { trustProxy: '127.0.0.1', proxyProtocol: true, flows: { maxAge: 100 } });
    const sender = await trustedSender();
    sender.send(Buffer.concat([ppDgramHeader(CLIENT, server.endpoint), Buffer.from('1')]), server.endpoint);
    sender.send('2', server.endpoint);
    await until(() => server.seen.length === 2);
    expect(server.seen.map((s) => [s.msg, s.rinfo.address])).toEqual([['1', CLIENT.address], ['2', CLIENT.address]]);
    expect(udpFlowCount(server.socket)).toBe(1);
    await new Promise((r) => setTimeout(r, 250));
    sender.send('3', server.endpoint);
    await new Promise((r) => setTimeout(r, 50));
    expect(server.seen).toHaveLength(2);
    expect(udpFlowCount(server.socket)).toBe(0);
  });

  it('the flow table holds at most flows.capacity flows, the least recently seen going first', async () => {
    const server = await echoServer('127.0.0.1', { trustProxy: '127.0.0.1', proxyProtocol: 'optional', flows: { capacity: 2 } });
    const senders = [await trustedSender(), await trustedSender(), await trustedSender()];
    for (const [i, s] of senders.entries()) {
      s.send(Buffer.concat([ppDgramHeader({ address: `198.51.100.${i + 1}`, port: 1000 + i }, server.endpoint), Buffer.from('h')]), server.endpoint);
      await until(() => server.seen.length === i + 1);
    }
    expect(udpFlowCount(server.socket)).toBe(2);
    senders[0].send('later', server.endpoint);
    senders[2].send('later', server.endpoint);
    await until(() => server.seen.length === 5);
    expect(server.seen.slice(3).map((s) => s.rinfo.address).sort()).toEqual(['127.0.0.1', '198.51.100.3']);
  });

  it('close() frees the flow table', async () => {
    const server = await echoServer('127.0.0.1', { trustProxy: '127.0.0.1', proxyProtocol: true });
    const sender = await trustedSender();
    for (let i = 0; i < 5; i++) {
      sender.send(Buffer.concat([ppDgramHeader({ address: `198.51.100.${i + 1}`, port: 1 }, server.endpoint), Buffer.from('x')]), server.endpoint);
    }
    const extra = await trustedSender();
    extra.send(Buffer.concat([ppDgramHeader(CLIENT, server.endpoint), Buffer.from('x')]), server.endpoint);
    await until(() => server.seen.length === 6);
    expect(udpFlowCount(server.socket)).toBe(2);
    await closeSocket(server.socket);
    expect(udpFlowCount(server.socket)).toBe(0);
  });
});

describe('the socket', () => {
  it('enable() before bind works as after', async () => {
    const server = await echoServer('127.0.0.1', { trustProxy: '127.0.0.1', spp: true }, 'before');
    const relay = await UdpRelay.start({ mode: 'spp', server: server.endpoint, host: '127.0.0.1', claim: CLAIM4 });
    const client = await UdpClient.start('127.0.0.2');
    open.push(relay, client);
    client.send('hi', relay.endpoint);
    expect(await client.replies(1)).toEqual([`203.0.113.7 ${client.endpoint.port} spp hi`]);
  });

  it('every form of send() reaches an SPP client with the header, and other destinations are untouched', async () => {
    const socket = dgram.createSocket('udp4');
    await bind(socket, '127.0.0.1');
    enableDgram(socket, { trustProxy: '127.0.0.1', spp: true });
    open.push({ close: () => closeSocket(socket) });
    const server = { address: '127.0.0.1', port: socket.address().port };
    const relay = await UdpRelay.start({ mode: 'spp', server, host: '127.0.0.1', claim: CLAIM4 });
    const client = await UdpClient.start('127.0.0.2');
    const other = await UdpClient.start('127.0.0.3');
    open.push(relay, client, other);
    const sent = new Promise<void>((resolve) => {
      socket.once('message', (_msg, rinfo) => {
        const { port, address } = rinfo;
        let callbacks = 0;
        const cb = (err: Error | null) => {
          expect(err).toBeNull();
          if (++callbacks === 2) resolve();
        };
        socket.send('a-string', port, address);
        socket.send(Buffer.from('xxbufferxx'), 2, 6, port, address);
        socket.send(Buffer.from('xxoffsetcbxx'), 2, 8, port, address, cb);
        socket.send([Buffer.from('an-'), 'array'], port, address);
        socket.send(new Uint8Array(Buffer.from('typed')), port, address, cb);
        socket.send(new DataView(new Uint8Array(Buffer.from('dataview')).buffer), port, address);
        socket.send('direct', other.endpoint.port, other.endpoint.address);
      });
    });
    client.send('go', relay.endpoint);
    await sent;
    const got = await client.replies(6);
    expect(got.sort()).toEqual(['a-string', 'an-array', 'buffer', 'dataview', 'offsetcb', 'typed'].sort());
    expect(relay.replies).toEqual({ withHeader: 6, withoutHeader: 0, wrongHeader: 0 });
    expect(await other.replies(1)).toEqual(['direct']);
  });

  it('a second enable() replaces the options and starts a new flow table', async () => {
    const server = await echoServer('127.0.0.1', { trustProxy: '127.0.0.1', proxyProtocol: true });
    const sender = await UdpClient.start('127.0.0.1');
    open.push(sender);
    sender.send(Buffer.concat([ppDgramHeader({ address: '198.51.100.70', port: 7 }, server.endpoint), Buffer.from('1')]), server.endpoint);
    await until(() => server.seen.length === 1);
    expect(udpFlowCount(server.socket)).toBe(1);
    enableDgram(server.socket, { trustProxy: '127.0.0.1', spp: 'optional' });
    expect(udpFlowCount(server.socket)).toBe(0);
    const pp = Buffer.concat([ppDgramHeader({ address: '198.51.100.71', port: 7 }, server.endpoint), Buffer.from('2')]);
    sender.send(pp, server.endpoint);
    await until(() => server.seen.length === 2);
    // PROXY v2 is off now: its header is data, the sender the proxy itself.
    expect(server.seen[1]).toEqual({ msg: pp.toString(), rinfo: { address: '127.0.0.1', port: sender.endpoint.port, family: 'IPv4', size: pp.length, source: 'peer' } });
  });

  it('a dual-stack udp6 socket on :: reads IPv4 relays, and a reply to ::ffff:a.b.c.d also goes through the flow', async () => {
    const socket = dgram.createSocket('udp6');
    await bind(socket, '::');
    enableDgram(socket, { trustProxy: '127.0.0.1', spp: true });
    open.push({ close: () => closeSocket(socket) });
    const seen: UdpRemoteInfo[] = [];
    socket.on('message', (msg, rinfo) => {
      seen.push({ ...(rinfo as UdpRemoteInfo) });
      socket.send(msg, rinfo.port, `::ffff:${rinfo.address}`);
    });
    const relay = await UdpRelay.start({ mode: 'spp', server: { address: '127.0.0.1', port: socket.address().port }, host: '127.0.0.1', claim: CLAIM4 });
    const client = await UdpClient.start('127.0.0.2');
    open.push(relay, client);
    client.send('v4 over v6', relay.endpoint);
    expect(await client.replies(1)).toEqual(['v4 over v6']);
    expect(seen[0]).toMatchObject({ address: '203.0.113.7', family: 'IPv4', source: 'spp', proxy: { address: '::ffff:127.0.0.1', family: 'IPv6' } });
    expect(relay.replies).toEqual({ withHeader: 1, withoutHeader: 0, wrongHeader: 0 });
  });

  it("a connect()ed socket keeps Node's behaviour", async () => {
    const server = dgram.createSocket('udp4');
    await bind(server, '127.0.0.1');
    open.push({ close: () => closeSocket(server) });
    const sock = dgram.createSocket('udp4');
    enableDgram(sock, { trustProxy: true, spp: true });
    open.push({ close: () => closeSocket(sock) });
    await new Promise<void>((resolve) => sock.connect(server.address().port, '127.0.0.1', resolve));
    const seen: Array<[string, string]> = [];
    sock.on('message', (msg, rinfo) => seen.push([msg.toString('latin1'), (rinfo as UdpRemoteInfo).source ?? 'none']));
    const header = sppHeader({ address: '198.51.100.1', port: 1 }, { address: '127.0.0.1', port: 2 });
    server.send(Buffer.concat([header, Buffer.from('x')]), sock.address().port, '127.0.0.1');
    await until(() => seen.length === 1);
    expect(seen).toEqual([[Buffer.concat([header, Buffer.from('x')]).toString('latin1'), 'none']]);
  });

  it('metrics() counts flows by source, and node-toa:resolve publishes each flow', async () => {
    const server = await echoServer('127.0.0.1', { trustProxy: '127.0.0.1', spp: true, proxyProtocol: true });
    const messages: UdpResolveMessage[] = [];
    const onMessage = (m: unknown) => {
      if ((m as UdpResolveMessage).transport === 'udp') messages.push(m as UdpResolveMessage);
    };
    channel('node-toa:resolve').subscribe(onMessage);
    try {
      const before = metrics().udp;
      const spp = await UdpRelay.start({ mode: 'spp', server: server.endpoint, host: '127.0.0.1', claim: CLAIM4 });
      const pp = await UdpRelay.start({ mode: 'pp-first', server: server.endpoint, host: '127.0.0.1', claim: CLAIM4 });
      const client = await UdpClient.start('127.0.0.2');
      open.push(spp, pp, client);
      client.send('1', spp.endpoint);
      client.send('2', spp.endpoint);
      client.send('3', pp.endpoint);
      client.send('4', pp.endpoint);
      await client.replies(4);
      const after = metrics().udp;
      expect(after.flows.spp - before.flows.spp).toBe(1);
      expect(after.flows['proxy-protocol'] - before.flows['proxy-protocol']).toBe(1);
      expect(after.datagrams.spp - before.datagrams.spp).toBe(2);
      expect(after.datagrams['proxy-protocol'] - before.datagrams['proxy-protocol']).toBe(2);
      expect(messages.map((m) => [m.answer.source, m.answer.address, m.port, m.socket === server.socket])).toEqual([
        ['spp', '203.0.113.7', server.endpoint.port, true],
        ['proxy-protocol', '203.0.113.7', server.endpoint.port, true],
      ]);
    } finally {
      channel('node-toa:resolve').unsubscribe(onMessage);
    }
  });
});

describe('options', () => {
  const sock = () => {
    const s = dgram.createSocket('udp4');
    open.push({ close: () => closeSocket(s) });
    return s;
  };
  it.each([
    [{}, TypeError, "enable(socket, options): a dgram socket needs spp, proxyProtocol or uoa (which header its proxy sends), got {}"],
    [{ spp: 'yes' }, TypeError, "enable(socket, options): options.spp must be true, false or 'optional', got 'yes'"],
    [{ proxyProtocol: 'required' }, TypeError, "enable(socket, options): options.proxyProtocol must be true, false or 'optional', got 'required'"],
    [{ uoa: 'optional' }, TypeError, "enable(socket, options): options.uoa must be true, false or 'auto', got 'optional'"],
    [{ spp: true, ack: true }, TypeError, 'enable(socket, options): unknown option \'ack\' (known: trustProxy, spp, proxyProtocol, uoa, flows)'],
    [{ spp: true, flows: 5 }, TypeError, 'enable(socket, options): options.flows must be an object such as { capacity: 65536, maxAge: 300000 }, got 5'],
    [{ spp: true, flows: { size: 1 } }, TypeError, "enable(socket, options): unknown option 'flows.size' (known: capacity, maxAge)"],
    [{ spp: true, flows: { capacity: 0 } }, RangeError, 'enable(socket, options): options.flows.capacity must be from 1 to 16777216, got 0'],
    [{ spp: true, flows: { maxAge: 1.5 } }, TypeError, 'enable(socket, options): options.flows.maxAge must be an integer, got 1.5'],
    [{ spp: true, trustProxy: 5 }, TypeError, 'trustProxy must be a boolean, a string, an array of strings or a function, got 5'],
  ])('%j: %p', (options, type, message) => {
    const s = sock();
    expect(() => enableDgram(s, options)).toThrow(type as ErrorConstructor);
    expect(() => enableDgram(s, options)).toThrow(message as string);
  });
});
