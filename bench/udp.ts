// UDP: what enable(dgramSocket) costs per datagram, in server CPU, next to a plain dgram server.
// One server process holds one echo socket per variant; this process is every variant's client
// (and proxy), sending windows of datagrams and waiting for the echoes, variant after variant in
// an order rotated each round, so whatever else the machine does hits them alike. The server
// reports its CPU time (user+system) around each batch: server CPU per datagram, and per round
// the difference to the plain socket of the same round (its median is the row's cost).
//   plain, plain again   no node-toa (the second is the A/A control: its distance from 0 is the noise)
//   untrusted            enable({ spp: true }) with a sender not trusted: what unproxied traffic pays
//   spp                  SPP on every datagram, every reply with the header (Spectrum, EdgeOne)
//   pp-first             PROXY v2 on the flow's first datagram only, then the flow table (Spectrum, DPVS)
//   pp-every             PROXY v2 on every datagram (caddy-l4, go-proxyproto)
import { fork } from 'node:child_process';
import * as dgram from 'node:dgram';
import { QUICK, emit, envInt, loadToa, log, median, pinToCpu } from './common';

type Variant = 'plain' | 'plain-b' | 'untrusted' | 'spp' | 'pp-first' | 'pp-every';
const VARIANTS: readonly Variant[] = ['plain', 'plain-b', 'untrusted', 'spp', 'pp-first', 'pp-every'];
const LABELS: Record<Variant, string> = {
  plain: 'plain dgram socket',
  'plain-b': 'control: plain again (A/A)',
  untrusted: 'enable({ spp: true }), sender not trusted',
  spp: 'SPP on every datagram, replies with the header',
  'pp-first': 'PROXY v2 on the first datagram, then the flow',
  'pp-every': 'PROXY v2 on every datagram',
};
const OPTIONS: Record<Variant, Record<string, unknown> | null> = {
  plain: null,
  'plain-b': null,
  untrusted: { trustProxy: '127.0.0.1', spp: true },
  spp: { trustProxy: '127.0.0.1', spp: true },
  'pp-first': { trustProxy: '127.0.0.1', proxyProtocol: true },
  'pp-every': { trustProxy: '127.0.0.1', proxyProtocol: true },
};

const BATCH = envInt('BENCH_UDP_BATCH', QUICK ? 2000 : 20000, 100, 1_000_000);
const ROUNDS = envInt('BENCH_UDP_ROUNDS', QUICK ? 3 : 9, 1, 50);
// Datagrams in flight: small enough that the server's receive buffer never overflows.
const WINDOW = 32;
const PAYLOAD = Buffer.from('a game tick of 32 bytes, say....');

// ---- server (child process) ----

async function server(): Promise<void> {
  const toa = loadToa();
  const ports: Partial<Record<Variant, number>> = {};
  for (const v of VARIANTS) {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const options = OPTIONS[v];
    if (options !== null) (toa.enable as unknown as (s: dgram.Socket, o: unknown) => void)(socket, options);
    socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
    ports[v] = socket.address().port;
  }
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'cpu') {
      const u = process.cpuUsage();
      process.send!({ cpu: u.user + u.system });
    } else if (m.cmd === 'exit') process.exit(0);
  });
  process.send!({ ports });
}

// ---- client (this process) ----

function spp(client: { address: string; port: number }, proxyPort: number): Buffer {
  const b = Buffer.alloc(38);
  b.writeUInt16BE(0x56ec, 0);
  b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...client.address.split('.').map(Number)], 2);
  b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1], 18);
  b.writeUInt16BE(client.port, 34);
  b.writeUInt16BE(proxyPort, 36);
  return b;
}

function ppv2(client: { address: string; port: number }, port: number): Buffer {
  const b = Buffer.alloc(28);
  Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x12, 0, 12]).copy(b);
  b.set(client.address.split('.').map(Number), 16);
  b.set([127, 0, 0, 1], 20);
  b.writeUInt16BE(client.port, 24);
  b.writeUInt16BE(port, 26);
  return b;
}

interface Sender {
  socket: dgram.Socket;
  message(first: boolean): Buffer;
  sent: number;
}

async function senderFor(v: Variant, port: number): Promise<Sender> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, v === 'untrusted' ? '127.0.0.2' : '127.0.0.1', resolve));
  const claimed = { address: '203.0.113.9', port: 40000 };
  const withSpp = Buffer.concat([spp(claimed, port), PAYLOAD]);
  const withPp = Buffer.concat([ppv2(claimed, port), PAYLOAD]);
  const message = (first: boolean): Buffer => {
    if (v === 'spp') return withSpp;
    if (v === 'pp-every' || (v === 'pp-first' && first)) return withPp;
    return PAYLOAD;
  };
  return { socket, message, sent: 0 };
}

/** Sends `count` datagrams to `port`, at most WINDOW unanswered; resolves with how many were lost. */
function batch(s: Sender, port: number, count: number): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0;
    let answered = 0;
    let lost = 0;
    let timer: NodeJS.Timeout | undefined;
    const pump = () => {
      while (sent < count && sent - answered - lost < WINDOW) {
        s.socket.send(s.message(s.sent === 0), port, '127.0.0.1');
        s.sent++;
        sent++;
      }
      if (answered + lost >= count) {
        s.socket.off('message', onMessage);
        clearTimeout(timer);
        resolve(lost);
        return;
      }
      clearTimeout(timer);
      // Whatever has not come back within 200 ms is lost: count it and go on.
      timer = setTimeout(() => {
        lost = sent - answered;
        pump();
      }, 200);
    };
    const onMessage = () => {
      answered++;
      pump();
    };
    s.socket.on('message', onMessage);
    pump();
  });
}

async function client(): Promise<void> {
  const child = fork(__filename, ['server'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const pinned = pinToCpu(child.pid!, 1) && pinToCpu(process.pid, 0);
  const next = <T>() => new Promise<T>((resolve) => child.once('message', (m) => resolve(m as T)));
  const { ports } = await next<{ ports: Record<Variant, number> }>();
  const cpu = async () => {
    const reply = next<{ cpu: number }>();
    child.send({ cmd: 'cpu' });
    return (await reply).cpu;
  };
  const senders = {} as Record<Variant, Sender>;
  for (const v of VARIANTS) senders[v] = await senderFor(v, ports[v]);
  // Warm-up: every path compiled, every flow known.
  for (const v of VARIANTS) await batch(senders[v], ports[v], Math.min(BATCH, 2000));
  const perDatagram: Record<Variant, number[]> = Object.fromEntries(VARIANTS.map((v) => [v, []])) as unknown as Record<Variant, number[]>;
  const diffs: Record<Variant, number[]> = Object.fromEntries(VARIANTS.map((v) => [v, []])) as unknown as Record<Variant, number[]>;
  let lost = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
    const ns = {} as Record<Variant, number>;
    for (const v of order) {
      const before = await cpu();
      lost += await batch(senders[v], ports[v], BATCH);
      const after = await cpu();
      ns[v] = ((after - before) * 1000) / BATCH;
      perDatagram[v].push(ns[v]);
    }
    for (const v of VARIANTS) diffs[v].push(ns[v] - ns.plain);
    log(`udp: round ${round + 1}/${ROUNDS}: ${VARIANTS.map((v) => `${v} ${ns[v].toFixed(0)} ns`).join(', ')}`);
  }
  child.send({ cmd: 'exit' });
  for (const v of VARIANTS) senders[v].socket.close();
  emit({
    batch: BATCH,
    rounds: ROUNDS,
    window: WINDOW,
    pinned,
    lost,
    rows: VARIANTS.map((v) => ({ variant: v, label: LABELS[v], ns: median(perDatagram[v]), vsPlain: median(diffs[v]) })),
  });
}

if (process.argv[2] === 'server') void server();
else void client();
