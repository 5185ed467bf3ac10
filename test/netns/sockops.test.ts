// The sock_ops TOA injector itself, with real packets on loopback: a client in a ToaCgroup gets
// its TOA into exactly the packets asked for and no others. Witnesses: the saved SYN (toa.listen
// without ack) and the package's ACK tap, whose counters count every non-SYN packet to the port
// that has more options than a timestamp. The server speaks first, so until it has written,
// the only packet after the SYN is the handshake ACK.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import * as toa from '../../lib/index';
import type { RealAddress } from '../../lib/index';
import { ToaCgroup, describeSockops } from '../helpers/sockops';

const GREET_CLIENT = path.join(__dirname, '..', 'helpers', 'children', 'greet-client.js');
const GREET_SERVER = path.join(__dirname, '..', 'helpers', 'children', 'greet-server.js');
// The tap reads its socket when asked; this is far longer than a loopback packet takes to reach
// it, so a count read after it is final, and a lookup after it cannot lose the race the load test
// is about.
const SETTLE_MS = 100;
const CLIENT_TIMEOUT_MS = 15_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Non-SYN packets to `port` with options beyond a timestamp, as the port's tap counted them. */
function extraPackets(port: number): number {
  const tap = toa.stats().taps.find((t) => t.port === port);
  if (tap === undefined) throw new Error(`no tap on port ${port}`);
  return tap.packets - tap.syns;
}

type Client = (port: number) => Promise<number>;

function parseClient(stdout: string, stderr: string): number {
  const line = stdout.trim().split('\n').pop() ?? '';
  if (!line.startsWith('{')) throw new Error(`greet-client said nothing useful: ${stdout} ${stderr}`);
  return (JSON.parse(line) as { localPort: number }).localPort;
}

/** greet-client.js inside the cgroup; resolves to its source port. */
const inside =
  (group: ToaCgroup, cpus?: string): Client =>
  async (port) => {
    const r = await group.run(process.execPath, [GREET_CLIENT, String(port)], { cpus, timeoutMs: CLIENT_TIMEOUT_MS });
    if (r.code !== 0) throw new Error(`greet-client in the cgroup failed (${r.code ?? r.signal}): ${r.stderr}`);
    return parseClient(r.stdout, r.stderr);
  };

/** greet-client.js in this process's cgroup (no program attached there). */
const outside: Client = (port) =>
  new Promise((resolve, reject) => {
    execFile(process.execPath, [GREET_CLIENT, String(port)], { timeout: CLIENT_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`greet-client failed: ${err.message} ${stderr}`));
      else resolve(parseClient(stdout, stderr));
    });
  });

interface Probe {
  answer: RealAddress;
  clientPort: number;
  /** extraPackets after the handshake, after the client's data, after the close (-1: no tap) */
  extra: { handshake: number; data: number; end: number };
}

/** One server-first connection from `client` to a fresh toa.listen server, with or without its tap. */
async function probe(client: Client, ack: boolean, kinds: number[] = [254]): Promise<Probe> {
  const options = { trustProxy: 'loopback', kinds };
  let served!: (v: { answer: RealAddress; handshake: number; data: number }) => void;
  const serverSide = new Promise<{ answer: RealAddress; handshake: number; data: number }>((r) => (served = r));
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    void (async () => {
      await sleep(SETTLE_MS);
      const handshake = ack ? extraPackets(port) : -1;
      socket.write('hello from the server\n');
      await once(socket, 'data');
      await sleep(SETTLE_MS);
      const data = ack ? extraPackets(port) : -1;
      const answer = toa.realRemoteAddress(socket, options);
      // A FIN alone: data and FIN as two segments arm a tail loss probe of a few ms, which can
      // resend the FIN before the client's delayed ACK, and the client's D-SACK for it is a
      // packet with options that the tap would count.
      socket.end();
      served({ answer, handshake, data });
    })();
  });
  // Packet sockets: they count every packet after the SYN that carried an option, which is what
  // these tests measure the injector by.
  await toa.listen(server, { port: 0, host: '127.0.0.1', ack: ack ? { source: 'packet' } : false });
  const port = (server.address() as net.AddressInfo).port;
  try {
    const [clientPort, side] = await Promise.all([client(port), serverSide]);
    await sleep(SETTLE_MS);
    const end = ack ? extraPackets(port) : -1;
    return { answer: side.answer, clientPort, extra: { handshake: side.handshake, data: side.data, end } };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

function toaFrom(expected: { address: string; port: number }, kind = 254) {
  return { ...expected, family: 'IPv4', source: 'toa', kind, proxy: { address: '127.0.0.1', family: 'IPv4' } };
}

describeSockops('sock_ops TOA injector on loopback', () => {
  jest.setTimeout(30_000);

  it("'syn': the saved SYN has the TOA; the ACK and the data have no options", async () => {
    const group = await ToaCgroup.create({ packets: ['syn'] });
    const plain = await probe(inside(group), false);
    expect(plain.answer).toMatchObject(toaFrom(group.expected(plain.clientPort)));
    const tapped = await probe(inside(group), true);
    expect(tapped.answer).toMatchObject(toaFrom(group.expected(tapped.clientPort)));
    expect(tapped.extra).toEqual({ handshake: 0, data: 0, end: 0 });
    expect(await group.counters()).toMatchObject({ connects: 2, syn: 2, ack: 0, data: 0, reserveFail: 0, storeFail: 0 });
    await group.close();
  });

  it("'ack': only the handshake ACK has it (not the SYN, not the data)", async () => {
    const group = await ToaCgroup.create({ packets: ['ack'] });
    const plain = await probe(inside(group), false);
    expect(plain.answer).toMatchObject({ source: 'peer', address: '127.0.0.1', port: plain.clientPort });
    const tapped = await probe(inside(group), true);
    // Seen before the client sent a byte: the ACK. Nothing more after its data.
    expect(tapped.extra).toEqual({ handshake: 1, data: 1, end: 1 });
    expect(tapped.answer).toMatchObject(toaFrom(group.expected(tapped.clientPort)));
    expect(await group.counters()).toMatchObject({ connects: 2, syn: 0, ack: 2, data: 0, reserveFail: 0, storeFail: 0 });
    await group.close();
  });

  it("'data': only the first data packet has it (not the SYN, not the ACK)", async () => {
    const group = await ToaCgroup.create({ packets: ['data'] });
    const plain = await probe(inside(group), false);
    expect(plain.answer).toMatchObject({ source: 'peer', address: '127.0.0.1', port: plain.clientPort });
    const tapped = await probe(inside(group), true);
    expect(tapped.extra).toEqual({ handshake: 0, data: 1, end: 1 });
    expect(tapped.answer).toMatchObject(toaFrom(group.expected(tapped.clientPort)));
    expect(await group.counters()).toMatchObject({ connects: 2, syn: 0, ack: 0, data: 2, reserveFail: 0, storeFail: 0 });
    await group.close();
  });

  it('all three at once, client pinned to CPU 0', async () => {
    const group = await ToaCgroup.create({ packets: ['syn', 'ack', 'data'] });
    const tapped = await probe(inside(group, '0'), true);
    expect(tapped.extra).toEqual({ handshake: 1, data: 2, end: 2 });
    expect(tapped.answer).toMatchObject(toaFrom(group.expected(tapped.clientPort)));
    expect(await group.counters()).toMatchObject({ connects: 1, syn: 1, ack: 1, data: 1 });
    await group.close();
  });

  it('a client outside the cgroup gets no option', async () => {
    const group = await ToaCgroup.create({ packets: ['syn', 'ack', 'data'] });
    const plain = await probe(outside, false);
    expect(plain.answer).toMatchObject({ source: 'peer', port: plain.clientPort });
    const tapped = await probe(outside, true);
    expect(tapped.answer).toMatchObject({ source: 'peer', port: tapped.clientPort });
    expect(tapped.extra).toEqual({ handshake: 0, data: 0, end: 0 });
    expect((await group.counters()).connects).toBe(0);
    await group.close();
  });

  it('a server inside the cgroup adds no option to its packets', async () => {
    const group = await ToaCgroup.create({ packets: ['syn', 'ack', 'data'] });
    // A tap on port Q sees the server's packets to a client bound to 127.0.0.2:Q: it matches the
    // destination port only.
    const watch = net.createServer();
    await toa.listen(watch, { port: 0, host: '127.0.0.1', ack: true });
    const q = (watch.address() as net.AddressInfo).port;
    const server = group.spawn(process.execPath, [GREET_SERVER, '1', String(CLIENT_TIMEOUT_MS)]);
    const [line] = (await once(server.stdout!, 'data')) as [Buffer];
    const { port } = JSON.parse(String(line)) as { port: number };
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2', localPort: q });
    let received = '';
    socket.setEncoding('utf8').on('data', (d: string) => {
      if (!received) socket.write('hello from outside\n');
      received += d;
    });
    await once(socket, 'end');
    socket.end();
    await once(server, 'exit');
    await sleep(SETTLE_MS);
    expect(received).toBe('hello from the server\nbye\n');
    expect(toa.stats().taps.find((t) => t.port === q)).toMatchObject({ packets: 0 });
    expect((await group.counters()).connects).toBe(0);
    await new Promise((resolve) => watch.close(resolve));
    await group.close();
  });

  it('kind and base are configurable; a raw option is written as given', async () => {
    const kinded = await ToaCgroup.create({ packets: ['syn'], kind: 200, base: '203.0.113.0' });
    const a = await probe(inside(kinded), false, [200]);
    expect(kinded.expected(a.clientPort).address).toBe(`203.0.113.${a.clientPort & 0xff}`);
    expect(a.answer).toMatchObject(toaFrom(kinded.expected(a.clientPort), 200));
    await kinded.close();

    const raw = await ToaCgroup.create({ packets: ['syn'], raw: 'fe080050cb007107' });
    const b = await probe(inside(raw), false);
    expect(b.answer).toMatchObject(toaFrom({ address: '203.0.113.7', port: 80 }));
    expect(() => raw.expected(b.clientPort)).toThrow(/raw/);
    await raw.close();
  });

  it('curl in the cgroup, TOA in its first data packet', async () => {
    const group = await ToaCgroup.create({ packets: ['data'] });
    const server = http.createServer((req, res) => {
      setTimeout(() => {
        const answer = toa.realRemoteAddress(req.socket, { trustProxy: 'loopback', kinds: [254] });
        res.end(JSON.stringify({ answer, remotePort: req.socket.remotePort }));
      }, SETTLE_MS);
    });
    await toa.listen(server, { port: 0, host: '127.0.0.1', ack: true });
    const { port } = server.address() as net.AddressInfo;
    const r = await group.run('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${port}/`], { cpus: '0' });
    await new Promise((resolve) => server.close(resolve));
    expect(r.stderr).toBe('');
    const { answer, remotePort } = JSON.parse(r.stdout) as { answer: RealAddress; remotePort: number };
    expect(answer).toMatchObject(toaFrom(group.expected(remotePort)));
    await group.close();
  });

  it('close() removes the cgroup and kills what still runs in it', async () => {
    const group = await ToaCgroup.create({ packets: ['syn'] });
    const sleeper = group.spawn('sleep', ['30']);
    const exited = once(sleeper, 'exit');
    await sleep(50);
    await group.close();
    await exited;
    expect(require('node:fs').existsSync(group.path)).toBe(false);
    await group.close(); // twice is fine
  });
});
