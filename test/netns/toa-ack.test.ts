// End to end: a full-NAT proxy in a network namespace puts TOA into the handshake ACK or the first
// data packet (not the SYN), real clients connect through it, and a Node server in this process
// (listening on a socket that lives in the namespace) reads it with enable(server, { ack }).
import * as http from 'node:http';
import * as net from 'node:net';
import { ADDR, ToaNet, describeE2E, useToaNet, type ToaRule } from '../helpers/netns/toa-net';
import type { AckStats, EnableOptions, RealAddress } from '../../lib/index';
import * as toa from '../../lib/index';
import { closeAfterEach } from '../helpers/sockets/pair';

const trustProxy = [ADDR.lip4, ADDR.lip6];

function hex(bytes: number[]): string {
  return Buffer.from(bytes).toString('hex');
}

/** kind 254, len 8: port, IPv4 (the LVS/DPVS layout). */
function toaV4(port: number, address: string): number[] {
  return [254, 8, port >> 8, port & 0xff, ...address.split('.').map(Number)];
}

describeE2E('TOA in the handshake ACK or first data packet, end to end', () => {
  let netns: ToaNet;
  const servers = closeAfterEach();
  useToaNet((created) => (netns = created));

  type Handler = (req: http.IncomingMessage) => Promise<unknown> | unknown;

  /** An HTTP server in the namespace answering realRemoteAddress(req.socket) as JSON. */
  async function serve(enableOptions: EnableOptions | undefined, handler?: Handler) {
    const answer: Handler = handler ?? ((req) => toa.realRemoteAddress(req.socket, { trustProxy }));
    const server = http.createServer((req, res) => {
      Promise.resolve(answer(req)).then(
        (body) => res.end(JSON.stringify(body)),
        (error: Error) => {
          res.statusCode = 500;
          res.end(error.message);
        },
      );
    });
    servers.push(server);
    toa.enable(server, enableOptions);
    const port = await netns.serve(server);
    return { server, port };
  }

  async function ask(port: number, vip: string, localAddress: string) {
    const result = await netns.request({ protocol: 'http', vip, port, localAddress, path: '/' });
    expect(result.responses[0].status).toBe(200);
    return { ...result, answer: JSON.parse(result.responses[0].body) as RealAddress };
  }

  /**
   * Puts a pure ACK with a TOA (203.0.113.44:4444) into `s`'s connection after its handshake, with
   * the sequence number TCP would give it (the SYN's + 1), and gives it 20 ms to arrive.
   */
  async function injectAck(s: net.Socket) {
    const syn = (await netns.packets({ dir: 'c2s' })).find((p) => p.flags === 'S' && p.sport === s.remotePort && p.dport === s.localPort);
    await netns.craft({
      src: s.remoteAddress!.replace(/^::ffff:/, ''),
      dst: s.localAddress!.replace(/^::ffff:/, ''),
      sport: s.remotePort!,
      dport: s.localPort!,
      flags: 'A',
      seq: (syn!.seq! + 1) >>> 0,
      optionsHex: hex(toaV4(4444, '203.0.113.44')),
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  function tapOf(port: number): AckStats['taps'][number] {
    const found = toa.stats().taps.find((t) => t.port === port);
    if (found === undefined) throw new Error(`no tap for port ${port}`);
    return found;
  }

  it('opens the tap in the namespace of the listening socket, not in this process’s', async () => {
    const { port } = await serve({ ack: true });
    const own = toa.stats().taps.length;
    expect(own).toBeGreaterThan(0);
    const { stdout } = await netns.exec('stat', ['-L', '-c', '%i', '/proc/self/ns/net']);
    expect(tapOf(port).netns).toBe(Number(stdout.trim()));
  });

  it('TOA only in the handshake ACK (IPv4 proxy, IPv4 client): the client', async () => {
    await netns.rule(ADDR.clients4[1], { where: 'ack' });
    const { port } = await serve({ ack: true });
    const { answer, localPort } = await ask(port, ADDR.vip4, ADDR.clients4[1]);
    expect(answer).toEqual({
      address: ADDR.clients4[1],
      port: localPort,
      family: 'IPv4',
      source: 'toa',
      kind: 200,
      packet: 'ack',
      proxy: { address: ADDR.lip4, port: expect.any(Number), family: 'IPv4' },
    });
    // Read through the sock_ops program (the default where it loads): no packet was copied.
    expect(tapOf(port)).toMatchObject({ source: 'sockops', packets: 0, lookups: 1, hits: 1, toaFound: 1, tableSize: 0, unseen: 0 });
    // The packet really was an ACK after the SYN: the SYN the server got had no option.
    const c2s = (await netns.packets({ dir: 'c2s' })).filter((p) => p.dport === port && p.sport === answer.proxy!.port);
    expect(c2s.find((p) => p.flags === 'S')!.options!.some((o) => o.kind === 200)).toBe(false);
    expect(c2s.find((p) => p.flags === 'A' && p.payloadLen === 0)!.options!.some((o) => o.kind === 200)).toBe(true);
  });

  it('without { ack } the same ACK-only TOA is not seen: the proxy', async () => {
    await netns.rule(ADDR.clients4[1], { where: 'ack' });
    const { port } = await serve(undefined);
    const { answer } = await ask(port, ADDR.vip4, ADDR.clients4[1]);
    expect(answer).toEqual({ address: ADDR.lip4, port: expect.any(Number), family: 'IPv4', source: 'peer' });
  });

  it('TOA only in the first data packet (the pure ACK has none): the client', async () => {
    await netns.rule(ADDR.clients4[2], { where: 'data' });
    const { port } = await serve({ ack: true });
    const { answer, localPort } = await ask(port, ADDR.vip4, ADDR.clients4[2]);
    expect(answer).toMatchObject({ address: ADDR.clients4[2], port: localPort, source: 'toa', packet: 'data', proxy: { address: ADDR.lip4 } });
    const c2s = (await netns.packets({ dir: 'c2s' })).filter((p) => p.dport === port && p.sport === answer.proxy!.port);
    const withToa = c2s.filter((p) => p.options!.some((o) => o.kind === 200));
    expect(withToa).toHaveLength(1);
    expect(withToa[0].payloadLen).toBeGreaterThan(0);
  });

  it('an IPv6 proxy carrying an IPv4 client, TOA in the ACK', async () => {
    await netns.rule(ADDR.clients4[3], { where: 'ack' });
    const { port } = await serve({ ack: true });
    const { answer, localPort } = await ask(port, ADDR.vip4to6, ADDR.clients4[3]);
    expect(answer).toMatchObject({
      address: ADDR.clients4[3],
      port: localPort,
      family: 'IPv4',
      source: 'toa',
      proxy: { address: ADDR.lip6, family: 'IPv6' },
    });
  });

  it('an IPv6 client (kind 254, len 20) behind an IPv6 proxy, TOA in the ACK', async () => {
    await netns.rule(ADDR.clients6[1], { where: 'ack' });
    const { port } = await serve({ ack: true });
    const { answer, localPort } = await ask(port, ADDR.vip6, ADDR.clients6[1]);
    expect(answer).toMatchObject({
      address: ADDR.clients6[1],
      port: localPort,
      family: 'IPv6',
      source: 'toa',
      kind: 254,
      proxy: { address: ADDR.lip6, family: 'IPv6' },
    });
  });

  it('NAT64: an IPv6 client (kind 253, len 20) on an IPv4 connection, TOA in the ACK and data', async () => {
    await netns.rule(ADDR.clients6[2], { where: 'ack+data', kind: 253, format: 'v6' });
    const { port } = await serve({ ack: true });
    const { answer, localPort } = await ask(port, ADDR.vip6to4, ADDR.clients6[2]);
    expect(answer).toMatchObject({
      address: ADDR.clients6[2],
      port: localPort,
      family: 'IPv6',
      source: 'toa',
      kind: 253,
      proxy: { address: ADDR.lip4, family: 'IPv4' },
    });
  });

  it('an untrusted peer’s ACK TOA is ignored: the peer', async () => {
    await netns.rule(ADDR.clients4[4], { where: 'ack', lip: ADDR.untrusted4 });
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const { port } = await serve({ ack: true });
      const { answer } = await ask(port, ADDR.vip4, ADDR.clients4[4]);
      expect(answer).toEqual({ address: ADDR.untrusted4, port: expect.any(Number), family: 'IPv4', source: 'peer' });
      // The tap found the option; the trust check refused it.
      expect(tapOf(port)).toMatchObject({ hits: 1 });
    } finally {
      emitWarning.mockRestore();
    }
  });

  it('TOA in both SYN and ACK with different values: the SYN wins', async () => {
    // The proxy tags the SYN with the client's address; the server then has a second TOA put into
    // a packet of the same connection after the SYN, with another address, before it asks.
    await netns.rule(ADDR.clients4[5], { where: 'syn' });
    const injectThenAnswer = (expectTap: boolean) => async (req: http.IncomingMessage) => {
      const s = req.socket;
      await injectAck(s);
      const answer = toa.realRemoteAddress(s, { trustProxy });
      return { answer, tap: expectTap ? tapOf(s.localPort!) : null };
    };
    // A pure ACK injected after the handshake: packet sockets take it by its sequence number; the
    // sock_ops program keeps only the ACK that completed the handshake (proven below).
    const both = await serve({ ack: { source: 'packet' } }, injectThenAnswer(true));
    const result = await netns.request({ protocol: 'http', vip: ADDR.vip4, port: both.port, localAddress: ADDR.clients4[5] });
    const body = JSON.parse(result.responses[0].body) as { answer: RealAddress; tap: AckStats['taps'][number] };
    expect(body.answer).toMatchObject({ address: ADDR.clients4[5], port: result.localPort, source: 'toa' });
    // The ACK's TOA was read by the tap, and lost to the SYN's.
    expect(body.tap).toMatchObject({ toaFound: 1 });

    // The same injected packet alone (no SYN TOA) is what the server answers with.
    await netns.rule(ADDR.clients4[6], { where: 'none' });
    const alone = await serve({ ack: { source: 'packet' } }, injectThenAnswer(false));
    const second = await netns.request({ protocol: 'http', vip: ADDR.vip4, port: alone.port, localAddress: ADDR.clients4[6] });
    expect((JSON.parse(second.responses[0].body) as { answer: RealAddress }).answer).toMatchObject({
      address: '203.0.113.44',
      port: 4444,
      source: 'toa',
      kind: 254,
    });
  });

  it('TOA in SYN and ACK (same value, syn+ack), packet sockets: answered from the SYN, the tap is not asked', async () => {
    await netns.rule(ADDR.clients4[7], { where: 'syn+ack' });
    const { port } = await serve({ ack: { source: 'packet' } });
    const { answer, localPort } = await ask(port, ADDR.vip4, ADDR.clients4[7]);
    expect(answer).toMatchObject({ address: ADDR.clients4[7], port: localPort, source: 'toa', packet: 'syn' });
    // A saved SYN with one option naming a client settles it: the reader leaves the tap alone.
    expect(tapOf(port)).toMatchObject({ lookups: 0, toaFound: 1 });
  });

  it('TOA in SYN and ACK (same value, syn+ack), sock_ops: answered from the SYN, the program’s copy not read', async () => {
    await netns.rule(ADDR.clients4[7], { where: 'syn+ack' });
    const { port } = await serve({ ack: { source: 'sockops' } });
    const { answer, localPort } = await ask(port, ADDR.vip4, ADDR.clients4[7]);
    expect(answer).toMatchObject({ address: ADDR.clients4[7], port: localPort, source: 'toa', packet: 'syn' });
    expect(tapOf(port)).toMatchObject({ source: 'sockops', lookups: 0 });
  });

  it('sock_ops: a forged pure ACK after the handshake is not the handshake ACK', async () => {
    const { port } = await serve({ ack: { source: 'sockops' } }, async (req) => {
      await injectAck(req.socket);
      return toa.realRemoteAddress(req.socket, { trustProxy });
    });
    await netns.rule(ADDR.clients4[6], { where: 'none' });
    const { answer } = await ask(port, ADDR.vip4, ADDR.clients4[6]);
    expect(answer).toMatchObject({ address: ADDR.lip4, source: 'peer' });
  });

  it('1,000 sequential connections with distinct TOA values, all answered right', async () => {
    // Each connection gets its own TOA port from the rule, so a mix-up between connections shows.
    const { port } = await serve({ ack: true });
    const started = Date.now();
    const wrong: Array<{ i: number; answer: RealAddress }> = [];
    for (let i = 0; i < 1000 && Date.now() - started < 100000; i++) {
      await netns.rule(ADDR.clients4[8], { where: 'ack', address: '203.0.113.77', port: 10000 + i });
      const { answer } = await ask(port, ADDR.vip4, ADDR.clients4[8]);
      if (answer.source !== 'toa' || answer.address !== '203.0.113.77' || answer.port !== 10000 + i) wrong.push({ i, answer });
    }
    expect(wrong).toEqual([]);
    expect(tapOf(port)).toMatchObject({ lookups: 1000, hits: 1000, drops: 0 });
  }, 120000);

  it('forged TOA floods: from an untrusted sender nothing reaches user space; from a trusted one the table stays at its bound', async () => {
    await netns.rule(ADDR.clients4[8], { where: 'ack' });
    const capacity = 1000;
    const { port } = await serve({ ack: { capacity, source: 'packet' }, trustProxy });
    // In bursts of 500: the TUN device's receive backlog (net.core.netdev_max_backlog, 1000)
    // drops what comes faster, before any tap could see it.
    const untrusted: ToaRule = { format: 'v4', kind: 254, address: '192.0.2.250', lip: ADDR.untrusted4 };
    for (let i = 0; i < 5; i++) await netns.flood({ count: 500, port, where: 'ack', rule: untrusted });
    for (let i = 0; i < 5; i++) await netns.flood({ count: 500, port, where: 'syn', rule: untrusted });
    // The filter carries the trust list: the kernel copied none of them.
    expect(tapOf(port)).toMatchObject({ packets: 0, tableSize: 0, inserted: 0 });

    // The trusted proxy's own address (a broken proxy, or a forger on its path): packets after a
    // SYN the tap did not see are kept, each tuple once, within the bound.
    const forged: ToaRule = { format: 'v4', kind: 254, address: '192.0.2.250' };
    for (let i = 0; i < 10; i++) await netns.flood({ count: 500, port, where: 'ack', rule: forged });
    const acked = tapOf(port);
    expect(acked.inserted).toBeGreaterThan(3 * capacity);
    expect(acked.tableSize).toBeLessThanOrEqual(capacity);
    expect(acked.evictions).toBeGreaterThan(acked.inserted - capacity - 200);

    // Still right afterwards.
    const { answer, localPort } = await ask(port, ADDR.vip4, ADDR.clients4[8]);
    expect(answer).toMatchObject({ address: ADDR.clients4[8], port: localPort, source: 'toa' });
    expect(tapOf(port).tableSize).toBeLessThanOrEqual(capacity);
  }, 60000);
});
