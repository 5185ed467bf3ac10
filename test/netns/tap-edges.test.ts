// Issue 18, point 2: the edges of the ACK tap, end to end. A reused 4-tuple, syncookies, a
// connection whose SYN was never saved, and a tap that dropped packets must each answer right or
// fall back to the peer (the proxy), never to ANOTHER connection's client. Real clients connect
// through the full-NAT proxy of the namespace harness (helpers/netns/toa-net.ts), which puts the
// client's own address and port (or a given one) into the packets a rule names; the servers
// listen in that namespace and run in this process with enable(server, { ack }).
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { ADDR, ToaNet, describeE2E, type ToaRule } from '../helpers/netns/toa-net';
import { spawnInNs, stopAllInNs, tcpExt } from '../helpers/netns/flood-net';
import type { EnableOptions, RealAddress } from '../../lib/index';
import * as toa from '../../lib/index';
import { closeAfterEach } from '../helpers/sockets/pair';

const trustProxy = [ADDR.lip4, ADDR.lip6];
const options = { trustProxy };
const DELAYED_CLIENT = path.join(__dirname, '..', 'helpers', 'children', 'delayed-http-client.js');

/** What a raw TCP server saw of one connection, and the answer it gave (if it was asked). */
interface Seen {
  remoteAddress: string;
  remotePort: number;
  answer?: RealAddress;
}

describeE2E('ACK tap edges (issue 18): right or the peer, never another connection’s client', () => {
  let netns: ToaNet;
  const servers = closeAfterEach();

  beforeAll(async () => {
    netns = await ToaNet.create();
  }, 30_000);
  afterAll(async () => {
    await stopAllInNs();
    await netns?.close();
  });
  beforeEach(() => netns.clearRules());

  /**
   * A raw TCP server in the namespace. A connection's first line says what to do: `ask` (answer
   * realRemoteAddress as JSON and end), `skip` (end without ever resolving it), `hold` (keep it,
   * unresolved, in `held`: the test resolves it later).
   */
  async function rawServer(enableOptions: EnableOptions | null) {
    const seen: Seen[] = [];
    const held: Array<{ socket: net.Socket; seen: Seen }> = [];
    const server = net.createServer((socket) => {
      const entry: Seen = { remoteAddress: socket.remoteAddress!, remotePort: socket.remotePort! };
      seen.push(entry);
      socket.on('error', () => undefined);
      socket.once('data', (d) => {
        const command = d.toString('latin1').trim();
        if (command === 'ask') {
          entry.answer = toa.realRemoteAddress(socket, options);
          socket.end(JSON.stringify(entry.answer));
        } else if (command === 'skip') {
          // Ends after the client did (its FIN came first): the server side closes passively,
          // leaves no TIME_WAIT, and the 4-tuple is free for the next SYN at once.
          if (socket.readableEnded) socket.end();
          else socket.once('end', () => socket.end());
          socket.resume();
        } else if (command === 'hold') held.push({ socket, seen: entry });
        else socket.destroy();
      });
    });
    servers.push(server);
    if (enableOptions !== null) toa.enable(server, enableOptions);
    const port = await netns.serve(server, { host: '0.0.0.0' });
    return { server, port, seen, held };
  }

  function tcp(port: number, localAddress: string, body: string, timeoutMs = 5000) {
    return netns.request({ protocol: 'tcp', vip: ADDR.vip4, port, localAddress, body, halfClose: body !== 'hold\n', timeoutMs });
  }

  /** Asks over a fresh connection; the answer with the client's own address and port. */
  async function ask(port: number, localAddress: string) {
    const r = await tcp(port, localAddress, 'ask\n');
    return { answer: JSON.parse(r.responses[0].body) as RealAddress, localPort: r.localPort };
  }

  /** Waits until no socket of the namespace is on `port` from `lport` any more (bounded). */
  async function tupleFree(port: number, lport: number) {
    for (let i = 0; i < 50; i++) {
      const { stdout } = await netns.exec('ss', ['-Htan', `( sport = :${port} and dport = :${lport} )`]);
      if (stdout.trim() === '') return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the server still holds the tuple ${ADDR.lip4}:${lport} -> :${port}`);
  }

  describe.each(['sockops', 'packet'] as const)('a reused 4-tuple (%s tap)', (source) => {
    // Client A's connection carries A in its handshake ACK and is never resolved; the next
    // connection on the very same 4-tuple (the proxy's fixed source port) must not inherit A.
    const A = '192.0.2.201';
    const B = '192.0.2.202';

    async function firstThenSecond(second: ToaRule, secondByCookie = false) {
      const { port, seen } = await rawServer({ ack: { source } });
      expect(toa.stats().taps.find((t) => t.port === port)?.source).toBe(source);
      const lport = 61000 + Math.floor(Math.random() * 4000);
      await netns.rule(ADDR.clients4[1], { where: 'ack', address: A, port: 1111, lport });
      const found = () => toa.stats().taps.find((t) => t.port === port)?.toaFound ?? 0;
      await tcp(port, ADDR.clients4[1], 'skip\n');
      await tupleFree(port, lport);
      if (source === 'packet') {
        // A is in the tap's hands (drained every 50 ms), waiting for a lookup that never came.
        for (let i = 0; found() === 0 && i < 40; i++) await new Promise((r) => setTimeout(r, 25));
        expect(found()).toBe(1);
      }
      // (The sock_ops program kept A in A's own socket, gone with it.)
      await netns.rule(ADDR.clients4[1], { ...second, lport });
      let answered: { answer: RealAddress; localPort: number };
      if (secondByCookie) {
        // No saved SYN for the second connection, so no sequence number to tell the two apart by.
        await netns.sysctl('net.ipv4.tcp_syncookies', 2);
        try {
          const before = await tcpExt(netns);
          answered = await ask(port, ADDR.clients4[1]);
          expect((await tcpExt(netns)).SyncookiesRecv - before.SyncookiesRecv).toBe(1);
        } finally {
          await netns.sysctl('net.ipv4.tcp_syncookies', 1);
        }
      } else answered = await ask(port, ADDR.clients4[1]);
      const { answer, localPort } = answered;
      // The kernel did accept the second SYN on the same tuple: two connections, one 4-tuple.
      expect(seen.map((s) => [s.remoteAddress, s.remotePort])).toEqual([
        [ADDR.lip4, lport],
        [ADDR.lip4, lport],
      ]);
      // A's option really reached the server (the first connection's handshake ACK).
      const acks = (await netns.packets({ dir: 'c2s' })).filter((p) => p.dport === port && p.sport === lport && p.flags === 'A' && p.payloadLen === 0);
      expect(acks.some((p) => p.options!.some((o) => o.hex === Buffer.from([200, 8, 0x04, 0x57, 192, 0, 2, 201]).toString('hex')))).toBe(true);
      return { answer, localPort, lport };
    }

    it('the second connection carries TOA for client B: B, not A', async () => {
      const { answer, localPort, lport } = await firstThenSecond({ where: 'ack', address: B });
      expect(answer).toMatchObject({ address: B, port: localPort, source: 'toa', proxy: { address: ADDR.lip4, port: lport } });
    });

    it('the second connection carries no TOA: the peer, not A', async () => {
      const { answer, lport } = await firstThenSecond({ where: 'none' });
      expect(answer).toEqual({ address: ADDR.lip4, port: lport, family: 'IPv4', source: 'peer' });
    });

    it('the second connection, by syncookie (no saved SYN), carries TOA for client B: B, not A', async () => {
      const { answer, localPort, lport } = await firstThenSecond({ where: 'ack', address: B }, true);
      expect(answer).toMatchObject({ address: B, port: localPort, source: 'toa', proxy: { address: ADDR.lip4, port: lport } });
    });

    it('the second connection, by syncookie (no saved SYN), carries no TOA: the peer, not A', async () => {
      const { answer, lport } = await firstThenSecond({ where: 'none' }, true);
      expect(answer).toEqual({ address: ADDR.lip4, port: lport, family: 'IPv4', source: 'peer' });
    });
  });

  describe('syncookies always (net.ipv4.tcp_syncookies=2): no SYN is saved', () => {
    beforeAll(() => netns.sysctl('net.ipv4.tcp_syncookies', 2));
    afterAll(() => netns.sysctl('net.ipv4.tcp_syncookies', 1));

    /** One connection whose handshake went through a syncookie (checked in TcpExt). */
    async function viaCookie(enableOptions: EnableOptions | null, client: string, rule: ToaRule) {
      const { port } = await rawServer(enableOptions);
      await netns.rule(client, rule);
      const before = await tcpExt(netns);
      const result = await ask(port, client);
      const after = await tcpExt(netns);
      expect(after.SyncookiesRecv - before.SyncookiesRecv).toBe(1);
      return result;
    }

    it('TOA in the handshake ACK, tap open: the client', async () => {
      const { answer, localPort } = await viaCookie({ ack: true }, ADDR.clients4[2], { where: 'ack' });
      expect(answer).toMatchObject({ address: ADDR.clients4[2], port: localPort, source: 'toa', packet: 'ack' });
    });

    it('TOA in the SYN only, tap open (NODE_TOA_ACK=on): the client, from the tap’s copy of the SYN', async () => {
      const { answer, localPort } = await viaCookie({ ack: true }, ADDR.clients4[3], { where: 'syn' });
      expect(answer).toMatchObject({ address: ADDR.clients4[3], port: localPort, source: 'toa' });
    });

    it('TOA in the SYN only, tap off: the peer (nothing saved, nothing tapped), never wrong', async () => {
      const { answer } = await viaCookie({ ack: false }, ADDR.clients4[4], { where: 'syn' });
      expect(answer).toEqual({ address: ADDR.lip4, port: expect.any(Number), family: 'IPv4', source: 'peer' });
    });
  });

  it('a connection whose SYN was never saved (accepted before enable()), TOA in its ACK: its client or the peer, never another', async () => {
    // Listening with neither TCP_SAVE_SYN nor a tap when the first connection arrives.
    const { server, port, held, seen } = await rawServer(null);
    const X = ADDR.clients4[5];
    const Y = ADDR.clients4[6];
    await netns.rule(X, { where: 'ack', address: '192.0.2.211' });
    await netns.rule(Y, { where: 'ack', address: '192.0.2.212' });
    const pending = tcp(port, X, 'hold\n', 10_000);
    for (let i = 0; held.length === 0; i++) {
      if (i > 100) throw new Error('the held connection never arrived');
      await new Promise((r) => setTimeout(r, 20));
    }
    toa.enable(server, { ack: true });
    // Connections after enable() are read as usual, from the same proxy, with other clients.
    const others = [await ask(port, Y), await ask(port, Y)];
    for (const o of others) expect(o.answer).toMatchObject({ address: '192.0.2.212', port: o.localPort, source: 'toa' });
    const { socket, seen: first } = held[0];
    const answer = toa.realRemoteAddress(socket, options);
    socket.end(JSON.stringify(answer));
    const { localPort } = await pending;
    expect(seen).toHaveLength(3);
    const asClient = { address: '192.0.2.211', port: localPort };
    const asPeer = { address: first.remoteAddress, port: first.remotePort };
    const got = { address: answer.address, port: answer.port };
    // eslint-disable-next-line no-console
    console.log(`connection accepted before enable(): answered ${JSON.stringify(answer)}`);
    expect([asClient, asPeer]).toContainEqual(got);
    expect(answer.source).toBe(got.address === asPeer.address ? 'peer' : 'toa');
  });

  it.each(['packet', 'sockops'] as const)('a blocked event loop under an ACK flood (%s tap): right or the peer, never another connection’s client', async (source) => {
    const server = http.createServer((req, res) => res.end(JSON.stringify(toa.realRemoteAddress(req.socket, options))));
    servers.push(server);
    toa.enable(server, { ack: { source } });
    const port = await netns.serve(server, { host: '0.0.0.0' });
    const clients = ADDR.clients4;
    for (const c of clients) await netns.rule(c, { where: 'ack' });
    // While this process (the server, and the tap's only reader) is blocked for 4 s: 20,000 bare
    // ACKs with a TOA (192.0.2.250) from the trusted proxy, on tuples no connection uses (source
    // ports above the proxy's own range), against a ring of 4,096 frames; 18 real connections
    // from known clients at once, and 18 more after 2 s, when the ring is long full. The kernel
    // completes their handshakes; the server reads their requests once it runs again.
    const flood = netns.flood({ count: 20_000, port, where: 'ack', rule: { address: '192.0.2.250' }, sports: [61000, 65535] });
    const spec = (delayMs: number) => JSON.stringify({ host: ADDR.vip4, port, clients: [...clients, ...clients], delayMs, timeoutMs: 20_000 });
    const early = spawnInNs(netns, process.execPath, [DELAYED_CLIENT, spec(0)]);
    const late = spawnInNs(netns, process.execPath, [DELAYED_CLIENT, spec(2000)]);
    await new Promise((r) => setTimeout(r, 100)); // the commands are on their way, the clients started
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      // blocked: nothing drains the tap
    }
    const [sent, earlyLine, lateLine] = await Promise.all([flood, early.line(30_000), late.line(30_000)]);
    expect(sent.sent).toBe(20_000);
    const results = [...JSON.parse(earlyLine), ...JSON.parse(lateLine)] as Array<{ localAddress: string; localPort?: number; status?: number; body?: string; error?: string }>;
    const tap = toa.stats().taps.find((t) => t.port === port);
    let right = 0;
    let peer = 0;
    const wrong: unknown[] = [];
    for (const r of results) {
      expect(r).toMatchObject({ status: 200 });
      const answer = JSON.parse(r.body!) as RealAddress;
      if (answer.source === 'toa' && answer.address === r.localAddress && answer.port === r.localPort) right++;
      else if (answer.source === 'peer' && answer.address === ADDR.lip4) peer++;
      else wrong.push({ client: `${r.localAddress}:${r.localPort}`, answer });
    }
    // eslint-disable-next-line no-console
    console.log(`blocked event loop, ${source} tap: ${right} right, ${peer} peer, ${wrong.length} wrong of ${results.length}; tap drops ${tap?.drops}`);
    expect(tap).toMatchObject({ source });
    expect(wrong).toEqual([]);
    expect(right + peer).toBe(results.length);
    if (source === 'packet') {
      // The ring overran: what it lost may have been a real connection's ACK.
      expect(tap!.drops).toBeGreaterThan(0);
      expect(toa.stats().drops).toBeGreaterThan(0);
      expect(toa.metrics().tap.drops).toBeGreaterThan(0);
    } else {
      // Nothing queues for the reader: each connection's packets wait in its own socket, and
      // the forged ACKs of no connection never reach the program.
      expect(tap!.drops).toBe(0);
      expect(right).toBe(results.length);
    }
  }, 60_000);
});
