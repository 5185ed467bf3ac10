// The ACK tap on loopback: its bounded table (through the binding's testing.offer() and real
// accepted sockets, looked up with or without the sequence number a saved SYN gives), its BPF
// filter (real packets sent on lo through an AF_PACKET socket), what a loss of packets does, and
// enable(server, { ack }) end to end with a client whose own kernel writes TOA into the real
// handshake ACK (the sock_ops cgroup, test/helpers/sockops/index.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { constants } from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { Worker } from 'node:worker_threads';
import { binding } from '../../lib/addon/binding';
import { compileKinds } from '../../lib/core/kinds';
import type { NativeBinding, NativeTap, NativeTapStats } from '../../lib/addon/native';
import { enable, realRemoteAddress, stats } from '../../lib/index';
import { tapOf } from '../../lib/tap/registry';
import { compileSources } from '../../lib/tap/sources';
import { BPF_LINK } from '../helpers/process/taps';
import { close, closeAfterEach, connectOnce, connectPair, listen, type Accepted } from '../helpers/sockets/pair';
import {
  TCP,
  aliCdn,
  extOptions,
  ipv4,
  ipv6,
  linuxSyn,
  mss,
  nop,
  sackOk,
  tcp,
  tfoCookie,
  toaV4,
  toaV6,
  ts,
  ws,
  type Bytes,
} from '../helpers/vectors/packets';
import { ToaCgroup, describeSockops } from '../helpers/sockops';
import { cgroupRoot } from '../helpers/sockops/build';

const CI = process.env.CI === 'true';
const canTap = process.platform === 'linux' && binding !== null && binding.tapSupported && binding.probePacketSocket() === 0;
if (!canTap && !CI) console.warn('ack-table.test: skipped, packet sockets need Linux and CAP_NET_RAW');
const describeTap = canTap || CI ? describe : describe.skip;

const DEFAULT_TABLE = compileKinds(undefined);
const TABLE_WITH_28 = compileKinds([200, 253, 254, 28]);
const native = binding as NativeBinding;
const offer = (t: NativeTap, p: Uint8Array, table: Uint8Array): boolean => native.testing.offer(t, p, table);

function fdOf(socket: net.Socket | net.Server): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

// Sends IP packets on lo through an AF_PACKET socket: the kernel receives them as from a wire, and
// the taps see them. Their IPv4 header checksum and TCP checksum are zero, so IP (IPv4) or TCP
// (IPv6) drops them after the taps: nothing answers them, whatever their source says. One python3
// process for the whole file (a start costs much on a loaded machine), fed a line of packets at
// a time; it answers once they are sent, which on lo is mostly once they were received.
const INJECTOR = [
  'import socket, sys',
  's = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)',  // protocol 0: it receives nothing
  'for line in sys.stdin:',
  '    for h in line.split():',
  '        b = bytes.fromhex(h)',
  '        proto = 0x0800 if b[0] >> 4 == 4 else 0x86DD',
  "        s.sendto(b, ('lo', proto, 0, 0, bytes(6)))",
  "    print('sent', flush=True)",
].join('\n');
let injector: { child: ChildProcess; answers: Array<(line: string) => void> } | null = null;

async function inject(packets: Uint8Array[]): Promise<void> {
  if (injector === null) {
    const child = spawn('python3', ['-c', INJECTOR], { stdio: ['pipe', 'pipe', 'inherit'] });
    const answers: Array<(line: string) => void> = [];
    readline.createInterface({ input: child.stdout! }).on('line', (line) => answers.shift()?.(line));
    injector = { child, answers };
  }
  const { child, answers } = injector;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('inject: python3 did not answer in 10 s')), 10_000);
    answers.push((line) => {
      clearTimeout(timer);
      if (line === 'sent') resolve();
      else reject(new Error(`inject: ${line}`));
    });
    child.stdin!.write(`${packets.map((p) => Buffer.from(p).toString('hex')).join(' ')}\n`);
  });
}

afterAll(() => {
  injector?.child.stdin!.end();
  injector = null;
});

interface Tuple {
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

function tupleOf(p: Accepted): Tuple {
  return {
    src: p.client.localAddress!.replace(/^::ffff:/, ''),
    sport: p.client.localPort!,
    dst: p.server.localAddress!.replace(/^::ffff:/, ''),
    dport: p.server.localPort!,
  };
}

const ISN = 1000;

/**
 * A packet of `t` (an ACK unless flags say otherwise) with these TCP options. Its sequence number
 * is the ISN for a SYN, else the ISN + 1: what the handshake ACK and the first data byte carry.
 */
function packet(t: Tuple, options: Bytes, flags: number = TCP.ACK, payload: Bytes = [], seq?: number): Uint8Array {
  const s = seq ?? ((flags & TCP.SYN) !== 0 ? ISN : ISN + 1);
  const segment = tcp({ sport: t.sport, dport: t.dport, flags, options, seq: s, ack: 1, payload });
  return t.src.includes(':') ? ipv6({ src: t.src, dst: t.dst, payload: segment }) : ipv4({ src: t.src, dst: t.dst, payload: segment });
}

/** An option of a kind no TCP stack sends on its own, holding no TOA (MPTCP's kind 30). */
const UNCOMMON = [30, 4, 0, 0];
/** A Linux SYN: only common options, so neither the filter nor the table takes it. */
const plainSyn = (t: Tuple, seq = ISN): Uint8Array => packet(t, linuxSyn(), TCP.SYN, [], seq);
/** A SYN that reaches the table: one with an uncommon option (by default not a TOA). */
const taggedSyn = (t: Tuple, seq = ISN, options: Bytes = UNCOMMON, payload: Bytes = []): Uint8Array =>
  packet(t, [...mss(), ...options], TCP.SYN, payload, seq);

/** What a proxy sends: a Linux SYN, then the handshake ACK with these options. */
function handshake(t: Tuple, options: Bytes, isn = ISN): Uint8Array[] {
  return [plainSyn(t, isn), packet(t, options, TCP.ACK, [], isn + 1)];
}

const tsOnly = (): number[] => [...nop(), ...nop(), ...ts()];
/** A SACK option with these block edges. */
const sack = (...edges: number[]): number[] => [5, 2 + 4 * edges.length, ...edges.flatMap((e) => [e >>> 24, (e >>> 16) & 0xff, (e >>> 8) & 0xff, e & 0xff])];

async function settle(ms = 30): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Reads what `tap` has queued until `n` packets came (bounded); returns how many. */
async function readAll(tap: NativeTap, n: number, timeoutMs = 5000): Promise<number> {
  let total = tap.drain(DEFAULT_TABLE);
  for (const deadline = Date.now() + timeoutMs; total < n && Date.now() < deadline; ) {
    await settle(10);
    total += tap.drain(DEFAULT_TABLE);
  }
  return total;
}

/** Polls `read` (bounded) until it gives the same positive number twice. */
async function stable(read: () => number, timeoutMs = 5000): Promise<number> {
  let last = -1;
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    await settle(100);
    const now = read();
    if (now === last && now > 0) return now;
    last = now;
  }
  return last;
}

describeTap('the tap table (testing.offer(), real accepted sockets)', () => {
  const servers: net.Server[] = [];
  const pairs: Accepted[] = [];
  afterEach(async () => {
    pairs.splice(0).forEach((p) => {
      p.client.destroy();
      p.server.destroy();
    });
    await Promise.all(servers.splice(0).map(close));
  });

  async function connections(n: number, host = '127.0.0.1', listenHost = host): Promise<Accepted[]> {
    const server = net.createServer();
    servers.push(server);
    const port = await listen(server, listenHost);
    const out: Accepted[] = [];
    for (let i = 0; i < n; i++) out.push(await connectPair(server, host, port));
    pairs.push(...out);
    return out;
  }

  function tap(capacity = 1000, maxAgeMs = 30000): NativeTap {
    return new native.Tap(capacity, maxAgeMs, 1 << 20);
  }

  it('keeps the packet after a SYN it never saw, answers the lookup that names its sequence number, once', async () => {
    const [p] = await connections(1);
    const t = tap();
    for (const pkt of handshake(tupleOf(p), toaV4(254, 4321, '203.0.113.7'))) expect(offer(t, pkt, DEFAULT_TABLE)).toBe(true);
    // The Linux SYN is read but not kept; the ACK makes the entry, without its SYN.
    expect(t.stats()).toMatchObject({ packets: 2, syns: 1, toaFound: 1, unmatched: 1, inserted: 1, tableSize: 1 });
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE, ISN + 1)).toEqual({
      peer: { family: 'IPv4', address: '127.0.0.1', port: p.client.localPort },
      options: [{ family: 'IPv4', address: '203.0.113.7', port: 4321, kind: 254, length: 8, layout: 1, status: 0 }],
      packet: 'ack',
    });
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE, ISN + 1)).toBeNull();
    expect(t.stats()).toMatchObject({ tableSize: 0, lookups: 2, hits: 1, stale: 0 });
    t.close();
  });

  it('answers with exactly the packet whose sequence number the saved SYN names, among those kept', async () => {
    const [p, q] = await connections(2);
    const t = tap();
    for (const c of [p, q]) {
      const tuple = tupleOf(c);
      // An earlier connection's ACK on this 4-tuple, this one's, and a later segment of this one.
      offer(t, packet(tuple, toaV4(254, 1111, '192.0.2.1'), TCP.ACK, [], ISN + 1 + 5000), DEFAULT_TABLE);
      offer(t, packet(tuple, toaV4(254, 2222, '192.0.2.2'), TCP.ACK, [], ISN + 1), DEFAULT_TABLE);
      offer(t, packet(tuple, toaV4(254, 3333, '192.0.2.3'), TCP.ACK, [], ISN + 2), DEFAULT_TABLE);
    }
    expect(t.stats()).toMatchObject({ inserted: 2, unmatched: 6, toaFound: 6, tableSize: 2 });
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE, ISN + 1)).toMatchObject({ options: [{ port: 2222, address: '192.0.2.2' }] });
    // No kept packet has q's number: nothing, and the entry is gone.
    expect(t.lookup(fdOf(q.server), DEFAULT_TABLE, ISN + 3)).toBeNull();
    expect(t.stats()).toMatchObject({ tableSize: 0, lookups: 2, hits: 1, stale: 0 });
    t.close();
  });

  it('keeps 3 packets per connection: the first TOA per sequence number wins, the last place takes the newest', async () => {
    const [a, b, c, d, e] = await connections(5);
    const t = tap();
    const S = ISN + 1;
    // The first data packet (same sequence number as the tagged ACK) never overrides it.
    offer(t, packet(tupleOf(a), toaV4(254, 1111, '192.0.2.1')), DEFAULT_TABLE);
    offer(t, packet(tupleOf(a), toaV4(254, 2222, '192.0.2.2'), TCP.ACK | TCP.PSH, [0x47]), DEFAULT_TABLE);
    // An option nobody configured, then the TOA in the first data packet with that number.
    offer(t, packet(tupleOf(b), [99, 8, 1, 2, 3, 4, 5, 6]), DEFAULT_TABLE);
    offer(t, packet(tupleOf(b), [...tsOnly(), ...toaV4(200, 3333, '192.0.2.3')], TCP.ACK | TCP.PSH, [0x47]), DEFAULT_TABLE);
    // Four numbers on each of c, d, e: the fourth takes the third's place.
    for (const x of [c, d, e]) {
      [0, 10, 20, 30].forEach((n) => offer(t, packet(tupleOf(x), toaV4(254, 5000 + n, '192.0.2.5'), TCP.ACK, [], S + n), DEFAULT_TABLE));
    }
    expect(t.stats()).toMatchObject({ inserted: 5, tableSize: 5 });
    expect(t.lookup(fdOf(a.server), DEFAULT_TABLE, S)).toMatchObject({ options: [{ port: 1111 }], packet: 'ack' });
    expect(t.lookup(fdOf(b.server), DEFAULT_TABLE, S)).toMatchObject({ options: [{ port: 3333, kind: 200 }], packet: 'data' });
    expect(t.lookup(fdOf(c.server), DEFAULT_TABLE, S)).toMatchObject({ options: [{ port: 5000 }] });
    expect(t.lookup(fdOf(d.server), DEFAULT_TABLE, S + 20)).toBeNull();
    expect(t.lookup(fdOf(e.server), DEFAULT_TABLE, S + 30)).toMatchObject({ options: [{ port: 5030 }] });
    t.close();
  });

  it('keeps at most `capacity` entries and evicts the oldest first', async () => {
    const ps = await connections(6);
    const t = tap(4);
    ps.forEach((p, i) => handshake(tupleOf(p), toaV4(200, 1000 + i, '192.0.2.1')).forEach((x) => offer(t, x, DEFAULT_TABLE)));
    expect(t.stats()).toMatchObject({ inserted: 6, tableSize: 4, capacity: 4, evictions: 2 });
    const found = ps.map((p) => t.lookup(fdOf(p.server), DEFAULT_TABLE, ISN + 1));
    expect(found.map((f) => (f === null || typeof f === 'number' ? null : f.options[0].port))).toEqual([null, null, 1002, 1003, 1004, 1005]);
    t.close();
  });

  it('stays at its bound under 100,000 forged ACKs and 100,000 forged SYNs, and still answers', async () => {
    const [p] = await connections(1);
    const t = tap(1000);
    // 100,000 distinct 4-tuples.
    const forged = (i: number): Tuple => ({ src: `198.51.100.${i % 250}`, sport: 1024 + Math.floor(i / 250), dst: '203.0.113.10', dport: 80 });
    for (let i = 0; i < 100000; i++) offer(t, packet(forged(i), toaV4(254, i & 0xffff, '192.0.2.66')), DEFAULT_TABLE);
    // Each is kept (its SYN may have come before the tap, or had only common options), within the bound.
    expect(t.stats()).toMatchObject({ unmatched: 100000, toaFound: 100000, inserted: 100000, tableSize: 1000, evictions: 99000 });
    for (let i = 0; i < 100000; i++) offer(t, taggedSyn(forged(i)), DEFAULT_TABLE);
    expect(t.stats()).toMatchObject({ syns: 100000, inserted: 200000, tableSize: 1000, evictions: 199000 });
    for (const pkt of handshake(tupleOf(p), toaV4(254, 4321, '203.0.113.7'))) offer(t, pkt, DEFAULT_TABLE);
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE, ISN + 1)).toMatchObject({ options: [{ address: '203.0.113.7', port: 4321 }] });
    expect(t.stats().tableSize).toBe(1000 - 1);
    t.close();
  });

  it('a SYN it holds fixes the sequence number of what follows (badSeq), and one of another connection is stale', async () => {
    const [p, q, r] = await connections(3);
    const t = tap();
    offer(t, taggedSyn(tupleOf(p)), DEFAULT_TABLE);
    offer(t, packet(tupleOf(p), toaV4(254, 6666, '192.0.2.66'), TCP.ACK, [], ISN + 2), DEFAULT_TABLE);
    offer(t, packet(tupleOf(p), toaV4(254, 6667, '192.0.2.67'), TCP.ACK, [], ISN), DEFAULT_TABLE);
    offer(t, packet(tupleOf(p), toaV4(254, 3333, '192.0.2.3')), DEFAULT_TABLE);
    // TCP Fast Open: data in the SYN moves the first sequence number after it.
    const data = [1, 2, 3, 4, 5];
    offer(t, taggedSyn(tupleOf(q), ISN, UNCOMMON, data), DEFAULT_TABLE);
    offer(t, packet(tupleOf(q), toaV4(254, 7777, '192.0.2.77'), TCP.ACK, [], ISN + 1), DEFAULT_TABLE);
    offer(t, packet(tupleOf(q), toaV4(254, 4444, '192.0.2.4'), TCP.ACK, [], ISN + 1 + data.length), DEFAULT_TABLE);
    // The SYN of a connection that used r's 4-tuple before (ISN 5000), and its ACK.
    offer(t, taggedSyn(tupleOf(r), 5000), DEFAULT_TABLE);
    offer(t, packet(tupleOf(r), toaV4(254, 5555, '192.0.2.5'), TCP.ACK, [], 5001), DEFAULT_TABLE);
    expect(t.stats()).toMatchObject({ syns: 3, inserted: 3, badSeq: 3, toaFound: 3, unmatched: 0 });
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE, ISN + 1)).toMatchObject({ options: [{ port: 3333 }] });
    expect(t.lookup(fdOf(q.server), DEFAULT_TABLE, ISN + 1 + data.length)).toMatchObject({ options: [{ port: 4444 }] });
    expect(t.lookup(fdOf(r.server), DEFAULT_TABLE, ISN + 1)).toBeNull();
    expect(t.stats()).toMatchObject({ lookups: 3, hits: 2, stale: 1, tableSize: 0 });
    t.close();
  });

  it('starts a fresh entry when a SYN with an uncommon option starts a new connection on a tuple', async () => {
    const [p] = await connections(1);
    const t = tap();
    const tuple = tupleOf(p);
    offer(t, packet(tuple, toaV4(254, 1111, '192.0.2.1')), DEFAULT_TABLE);
    offer(t, taggedSyn(tuple, 5000), DEFAULT_TABLE);
    expect(t.stats()).toMatchObject({ syns: 1, inserted: 2, tableSize: 1 });
    // What was kept before the SYN is gone: the lookup finds the new connection's SYN, not its own.
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE, ISN + 1)).toBeNull();
    expect(t.stats()).toMatchObject({ stale: 1 });
    offer(t, taggedSyn(tuple, 7000), DEFAULT_TABLE);
    offer(t, packet(tuple, toaV4(254, 2222, '192.0.2.2'), TCP.ACK, [], 7001), DEFAULT_TABLE);
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE, 7001)).toMatchObject({ options: [{ port: 2222, address: '192.0.2.2' }] });
    t.close();
  });

  it('without a saved SYN, lets a SYN it holds stand in: its options come back, its sequence number chose the packet', async () => {
    const [p, q] = await connections(2);
    const t = tap();
    // p: TOA in the SYN (a syncookie kept the kernel from saving it) and in the ACK.
    offer(t, taggedSyn(tupleOf(p), ISN, toaV4(254, 1111, '192.0.2.1')), DEFAULT_TABLE);
    offer(t, packet(tupleOf(p), toaV4(254, 2222, '192.0.2.2'), TCP.ACK, [], ISN + 7), DEFAULT_TABLE);
    offer(t, packet(tupleOf(p), toaV4(254, 2222, '192.0.2.2')), DEFAULT_TABLE);
    // q: TCP Fast Open's cookie in the SYN, read as a SYN's (status 1), and a TOA only in the ACK.
    offer(t, taggedSyn(tupleOf(q), ISN, tfoCookie([1, 2, 3, 4])), DEFAULT_TABLE);
    offer(t, packet(tupleOf(q), toaV4(254, 3333, '192.0.2.3')), DEFAULT_TABLE);
    expect(t.stats()).toMatchObject({ syns: 2, badSeq: 1 });
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE)).toMatchObject({
      peer: { address: '127.0.0.1', port: p.client.localPort },
      options: [{ address: '192.0.2.2', port: 2222 }],
      packet: 'ack',
      synOptions: [{ address: '192.0.2.1', port: 1111, kind: 254, status: 0 }],
    });
    expect(t.lookup(fdOf(q.server), DEFAULT_TABLE)).toMatchObject({
      options: [{ address: '192.0.2.3', port: 3333 }],
      synOptions: [{ kind: 254, length: 8, status: 1 }],
    });
    // With a saved SYN, the table's SYN is not read back.
    offer(t, taggedSyn(tupleOf(p), ISN, toaV4(254, 1111, '192.0.2.1')), DEFAULT_TABLE);
    offer(t, packet(tupleOf(p), toaV4(254, 2222, '192.0.2.2')), DEFAULT_TABLE);
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE, ISN + 1)).not.toHaveProperty('synOptions');
    expect(t.stats()).toMatchObject({ hits: 3, stale: 0 });
    t.close();
  });

  it('without a saved SYN or a held one, answers only when every kept TOA names the same client', async () => {
    const [p, q] = await connections(2);
    const t = tap();
    // p: the ACK and a later data packet (other timestamps) with the same TOA, and a packet with
    // only an uncommon option between them.
    offer(t, packet(tupleOf(p), [...nop(), ...nop(), ...ts(100), ...toaV4(254, 1111, '192.0.2.1')]), DEFAULT_TABLE);
    offer(t, packet(tupleOf(p), [...tsOnly(), ...UNCOMMON], TCP.ACK, [], ISN + 50), DEFAULT_TABLE);
    offer(t, packet(tupleOf(p), [...nop(), ...nop(), ...ts(200), ...toaV4(254, 1111, '192.0.2.1')], TCP.ACK | TCP.PSH, [1], ISN + 100), DEFAULT_TABLE);
    // q: two packets naming different clients (an earlier connection on the tuple, and this one).
    offer(t, packet(tupleOf(q), toaV4(254, 1111, '192.0.2.1')), DEFAULT_TABLE);
    offer(t, packet(tupleOf(q), toaV4(254, 2222, '192.0.2.2'), TCP.ACK, [], ISN + 100), DEFAULT_TABLE);
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE)).toEqual({
      peer: { family: 'IPv4', address: '127.0.0.1', port: p.client.localPort },
      options: [{ family: 'IPv4', address: '192.0.2.1', port: 1111, kind: 254, length: 8, layout: 1, status: 0 }],
      packet: 'ack',
    });
    expect(t.lookup(fdOf(q.server), DEFAULT_TABLE)).toBeNull();
    expect(t.stats()).toMatchObject({ lookups: 2, hits: 1, stale: 1, tableSize: 0 });
    t.close();
  });

  it('keeps options raw, so a kind configured after the packet arrived is still read', async () => {
    const [p] = await connections(1);
    const t = tap();
    handshake(tupleOf(p), aliCdn('192.0.2.28')).forEach((x) => offer(t, x, DEFAULT_TABLE));
    expect(t.stats()).toMatchObject({ toaFound: 0, inserted: 1 });
    expect(t.lookup(fdOf(p.server), TABLE_WITH_28, ISN + 1)).toMatchObject({
      options: [{ address: '192.0.2.28', port: 0, kind: 28, length: 7 }],
    });
    t.close();
  });

  it('refuses a packet whose ends differ in family (an IPv4-mapped source to a plain IPv6 address)', () => {
    // Read as IPv4 192.0.2.1 -> 1.2.3.4 it would key like a real IPv4 tuple.
    const mixed = { src: '::ffff:192.0.2.1', sport: 40000, dst: '102:304::', dport: 80 };
    const t = tap();
    expect(offer(t, taggedSyn(mixed), DEFAULT_TABLE)).toBe(false);
    expect(offer(t, packet(mixed, toaV4(254, 1, '203.0.113.1')), DEFAULT_TABLE)).toBe(false);
    expect(t.stats()).toMatchObject({ malformed: 2, inserted: 0, packets: 0 });
    t.close();
  });

  it('ignores packets with only common options, SYN-ACKs, RSTs and packets that are not TCP', async () => {
    const [p] = await connections(1);
    const t = tap();
    const tuple = tupleOf(p);
    offer(t, plainSyn(tuple), DEFAULT_TABLE);
    offer(t, packet(tuple, tsOnly()), DEFAULT_TABLE);
    offer(t, packet(tuple, [...tsOnly(), ...nop(), ...nop(), ...sack(5000, 6000)]), DEFAULT_TABLE);
    offer(t, packet(tuple, toaV4(254, 1, '192.0.2.1'), TCP.RST | TCP.ACK), DEFAULT_TABLE);
    offer(t, packet(tuple, toaV4(254, 2, '192.0.2.2'), TCP.SYN | TCP.ACK), DEFAULT_TABLE);
    expect(offer(t, ipv4({ protocol: 17, payload: new Uint8Array(40) }), DEFAULT_TABLE)).toBe(false);
    expect(offer(t, new Uint8Array([0x45, 0, 0]), DEFAULT_TABLE)).toBe(false);
    expect(t.stats()).toMatchObject({ packets: 5, syns: 2, malformed: 2, inserted: 0, toaFound: 0, tableSize: 0 });
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE, ISN + 1)).toBeNull();
    t.close();
  });

  it('drops entries older than maxAge', async () => {
    const [p] = await connections(1);
    const t = tap(1000, 100);
    handshake(tupleOf(p), toaV4(254, 4321, '203.0.113.7')).forEach((x) => offer(t, x, DEFAULT_TABLE));
    await settle(200);
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE, ISN + 1)).toBeNull();
    expect(t.stats()).toMatchObject({ expired: 1, tableSize: 0 });
    t.close();
  });

  it('finds IPv4 packets of a dual-stack socket (::ffff:127.0.0.1) and IPv6 ones on ::1', async () => {
    const [mapped] = await connections(1, '127.0.0.1', '::');
    expect(mapped.server.remoteAddress).toBe('::ffff:127.0.0.1');
    const [v6] = await connections(1, '::1');
    const t = tap();
    handshake(tupleOf(mapped), toaV4(254, 4444, '192.0.2.44')).forEach((x) => offer(t, x, DEFAULT_TABLE));
    handshake(tupleOf(v6), toaV6(253, 6666, '2001:db8:c::1')).forEach((x) => offer(t, x, DEFAULT_TABLE));
    expect(t.lookup(fdOf(mapped.server), DEFAULT_TABLE, ISN + 1)).toMatchObject({
      peer: { family: 'IPv4', address: '127.0.0.1' },
      options: [{ address: '192.0.2.44', port: 4444 }],
    });
    expect(t.lookup(fdOf(v6.server), DEFAULT_TABLE, ISN + 1)).toMatchObject({
      peer: { family: 'IPv6', address: '::1' },
      options: [{ family: 'IPv6', address: '2001:db8:c::1', port: 6666, kind: 253 }],
    });
    t.close();
  });

  it('rejects bad arguments with TypeError/RangeError', () => {
    expect(() => new native.Tap(0, 1000, 1 << 20)).toThrow(new RangeError('capacity is out of range'));
    expect(() => new native.Tap('1' as never, 1000, 1 << 20)).toThrow(new TypeError('capacity must be a number'));
    const t = tap();
    expect(() => t.lookup(-1, DEFAULT_TABLE)).toThrow(new RangeError('fd must be >= 0'));
    expect(() => t.lookup(0, new Uint8Array(3))).toThrow(new RangeError('kind table must hold 256 bytes'));
    expect(() => offer(t, 'x' as never, DEFAULT_TABLE)).toThrow('packet must be a Uint8Array or Buffer');
    expect(() => t.setFilter([0])).toThrow(new RangeError('ports must be 1-65535'));
    expect(() => t.setFilter(new Array(201).fill(80))).toThrow(new RangeError('too many ports for one tap'));
    expect(() => t.setFilter([80], '10.0.0.0/8' as never)).toThrow(new TypeError('sources must be a Uint8Array or null'));
    const sizes = 'sources must hold at most 64 records of 18 bytes';
    expect(() => t.setFilter([80], new Uint8Array(17))).toThrow(new RangeError(sizes));
    expect(() => t.setFilter([80], new Uint8Array(18 * 65))).toThrow(new RangeError(sizes));
    const range = 'a source range must be family 4 (prefix 0-32) or 6 (prefix 0-128)';
    expect(() => t.setFilter([80], Uint8Array.from([5, 8, ...new Array(16).fill(0)]))).toThrow(new RangeError(range));
    expect(() => t.setFilter([80], Uint8Array.from([4, 33, ...new Array(16).fill(0)]))).toThrow(new RangeError(range));
    expect(() => t.setFilter([80], Uint8Array.from([6, 129, ...new Array(16).fill(0)]))).toThrow(new RangeError(range));
    t.close();
    expect(() => t.stats()).toThrow('the tap is closed');
  });
});

// Read through the mmap'd ring (the default) and through recvmmsg (the fallback when a ring
// cannot be set up): the same packets either way.
describeTap.each([
  ['mmap ring', 4096],
  ['recvmmsg', 0],
])('the tap filter, on lo, read through %s', (_how, ringFrames) => {
  let server: net.Server;
  let port: number;
  let t: NativeTap;
  // A second tap that watches another port only, where a marker packet goes after the packets of
  // a test: once it read the marker, the kernel has handed every packet before it to `t` too.
  let witness: NativeTap;
  let markPort: number;
  let marks = 0;
  beforeEach(async () => {
    server = net.createServer((s) => s.destroy());
    port = await listen(server, '127.0.0.1');
    t = new native.Tap(1000, 30000, 1 << 20, ringFrames);
    const opened = t.open(fdOf(server));
    expect(opened).toMatchObject({ errno: 0, ring: ringFrames > 0 });
    expect(t.setFilter([port])).toBe(0);
    markPort = port > 60000 ? port - 2 : port + 2;
    witness = new native.Tap(1000, 30000, 1 << 20, ringFrames);
    expect(witness.open(fdOf(server)).errno).toBe(0);
    expect(witness.setFilter([markPort])).toBe(0);
  });
  afterEach(async () => {
    t.close();
    witness.close();
    await close(server);
  });

  /** Injects `packets`, then the marker; resolves once the witness read the marker (bounded). */
  async function deliver(packets: Uint8Array[]): Promise<void> {
    await inject([...packets, packet(at(40000 + (marks++ % 1000), markPort), toaV4(254, 1, '192.0.2.1'))]);
    for (const deadline = Date.now() + 5000; witness.drain(DEFAULT_TABLE) === 0; ) {
      if (Date.now() > deadline) throw new Error('the marker packet never reached the witness tap');
      await settle(10);
    }
  }

  const at = (sport: number, dport: number, src = '127.0.0.1'): Tuple => ({
    src,
    sport,
    dst: src.includes(':') ? '::1' : '127.0.0.1',
    dport,
  });
  const toa = toaV4(254, 4321, '203.0.113.7');

  it('walks the TCP options as the table does: passes a packet after the SYN only with an uncommon option, every SYN', async () => {
    // [what, options, flags, payload, passes] ('copied': the filter passes it, the table keeps nothing)
    const vectors: Array<[string, number[], number, number[], boolean | 'copied']> = [
      ['a TOA alone', toa, TCP.ACK, [], true],
      ['timestamps, then a TOA', [...tsOnly(), ...toa], TCP.ACK, [], true],
      ['a TOA, then NOPs', [...toa, ...nop(), ...nop(), ...nop(), ...nop()], TCP.ACK, [], true],
      ['NOP, MSS, SACK-permitted, NOPs and SACK before the only uncommon option', [...nop(), ...mss(), ...sackOk(), ...nop(), ...nop(), ...sack(1, 2, 3, 4), ...toa], TCP.ACK, [], true],
      ['window scale, then kind 6 (obsolete echo)', [...ws(), 6, 6, 0, 0, 0, 0], TCP.ACK, [], true],
      ['kind 7 (obsolete echo reply)', [7, 6, 0, 0, 0, 0], TCP.ACK, [], true],
      ['a lone uncommon kind byte at the end', [...nop(), ...nop(), ...nop(), 253], TCP.ACK, [], true],
      ['39 NOPs, then an uncommon kind byte: the walk reaches the 40th byte', [...new Array<number>(39).fill(1), 200], TCP.ACK, [], true],
      ['32 NOPs, then a TOA', [...new Array<number>(32).fill(1), ...toa], TCP.ACK, [], true],
      ['a TOA in a data packet with FIN', toa, TCP.ACK | TCP.PSH | TCP.FIN, [0x47, 0x45], true],
      ['a SYN with MPTCP', [...linuxSyn(), ...UNCOMMON], TCP.SYN, [], true],
      ['a SYN with a TOA', [...linuxSyn(), ...toa], TCP.SYN, [], true],
      ['no options', [], TCP.ACK, [], false],
      ['timestamps only', tsOnly(), TCP.ACK, [], false],
      ['timestamps and SACK', [...tsOnly(), ...nop(), ...nop(), ...sack(5000, 6000)], TCP.ACK, [], false],
      ['SACK without timestamps', [...nop(), ...nop(), ...sack(5000, 6000, 7000, 8000)], TCP.ACK, [], false],
      ['40 NOPs', new Array<number>(40).fill(1), TCP.ACK, [], false],
      ['EOL before a TOA', [0, 0, 0, 0, ...toa], TCP.ACK, [], false],
      ['a common option of length 1 before a TOA', [2, 1, 0, 0, ...toa], TCP.ACK, [], false],
      ['a common option of length 0 before a TOA', [3, 0, 0, 0, ...toa], TCP.ACK, [], false],
      ['a timestamp option whose length covers a TOA', [8, 12, ...toa, 0, 0], TCP.ACK, [], false],
      ['a common option longer than the options, over a TOA', [8, 30, ...toa, 0, 0], TCP.ACK, [], false],
      ['a lone common kind byte at the end, data after it', [...nop(), ...nop(), ...nop(), 8], TCP.ACK, [0xfe, 8, 0, 0], false],
      ['a lone common kind byte at the end, nothing after it', [...nop(), ...nop(), ...nop(), 8], TCP.ACK, [], false],
      // Every SYN passes: it makes its 4-tuple forget an earlier connection's packets.
      ['a Linux SYN', linuxSyn(), TCP.SYN, [], 'copied'],
      ['a SYN-ACK with a TOA', toa, TCP.SYN | TCP.ACK, [], false],
      ['a RST with a TOA', toa, TCP.RST | TCP.ACK, [], false],
      ['a SYN with RST and a TOA', toa, TCP.SYN | TCP.RST, [], false],
    ];
    const ref = new native.Tap(1000, 30000, 1 << 20);
    const verdicts: Array<[string, { filter: number; table: number }]> = [];
    const expected: Array<[string, { filter: number; table: number }]> = [];
    for (const [i, [what, options, flags, payload, passes]] of vectors.entries()) {
      const p = packet(at(51000 + i, port), options, flags, payload);
      await deliver([p]);
      const inserted = ref.stats().inserted;
      offer(ref, p, DEFAULT_TABLE);
      verdicts.push([what, { filter: t.drain(DEFAULT_TABLE), table: ref.stats().inserted - inserted }]);
      expected.push([what, { filter: passes === false ? 0 : 1, table: passes === true ? 1 : 0 }]);
    }
    ref.close();
    expect(verdicts).toEqual(expected);
    expect(t.stats()).toMatchObject({ drops: 0, malformed: 0 });
  });

  it('passes only the server’s ports, IPv4 without fragments and IPv6 without extension headers', async () => {
    const passed = [
      packet(at(50001, port), toa),
      packet(at(50002, port, '::1'), toaV6(254, 6000, '2001:db8:c::1')),
    ];
    const blocked = [
      packet(at(50010, port + 1 > 65535 ? port - 1 : port + 1), toa), // another port
      ipv6({ src: '::1', dst: '::1', extHeaders: [extOptions(60)], payload: tcp({ sport: 50011, dport: port, flags: TCP.ACK, options: toa }) }),
      ipv4({ src: '127.0.0.1', dst: '127.0.0.1', fragmentOffset: 3, payload: tcp({ sport: 50012, dport: port, flags: TCP.ACK, options: toa }) }),
      ipv4({ src: '127.0.0.1', dst: '127.0.0.1', protocol: 17, payload: tcp({ sport: 50013, dport: port, options: toa }) }),
    ];
    await deliver([...passed, ...blocked]);
    expect(t.drain(DEFAULT_TABLE)).toBe(passed.length);
    expect(t.stats()).toMatchObject({ packets: passed.length, unmatched: 2, inserted: 2, drops: 0, malformed: 0 });
  });

  it('passes only sources in the trusted ranges it was given (trustProxy, compiled)', async () => {
    expect(t.setFilter([port], compileSources(['192.0.2.128/25', '2001:db8:0:10::/60', '127.0.0.1', '::ffff:198.51.100.0/120']))).toBe(0);
    const from = (src: string, sport: number): Uint8Array => packet(at(sport, port, src), toa);
    const passed = [
      from('192.0.2.128', 50001),
      from('192.0.2.255', 50002),
      from('127.0.0.1', 50003),
      from('198.51.100.9', 50004), // the IPv4 range of an IPv4-mapped IPv6 one
      from('2001:db8:0:10::', 50005),
      from('2001:db8:0:1f:ffff::1', 50006),
    ];
    const blocked = [
      from('192.0.2.127', 50010),
      from('203.0.113.7', 50011),
      from('127.0.0.2', 50012),
      from('198.51.101.9', 50013),
      from('2001:db8:0:f::1', 50014),
      from('2001:db8:0:20::1', 50015),
      from('::1', 50016),
    ];
    await deliver([...blocked, ...passed]);
    expect(t.drain(DEFAULT_TABLE)).toBe(passed.length);
    expect(t.stats()).toMatchObject({ packets: passed.length, drops: 0 });
  });

  it('passes every source of a family with a /0 range, none of the other family without one; null passes all', async () => {
    const v4 = [packet(at(50001, port, '198.51.100.7'), toa), packet(at(50002, port), toa)];
    const v6 = [packet(at(50003, port, '2001:db8::7'), toaV6(254, 1, '2001:db8:c::1')), packet(at(50004, port, '::1'), toaV6(254, 1, '2001:db8:c::1'))];
    expect(t.setFilter([port], compileSources('0.0.0.0/0'))).toBe(0);
    await deliver([...v4, ...v6]);
    expect(t.drain(DEFAULT_TABLE)).toBe(2);
    expect(t.setFilter([port], compileSources(['0.0.0.0/0', '::/0']))).toBe(0);
    await deliver([...v4, ...v6]);
    expect(t.drain(DEFAULT_TABLE)).toBe(4);
    // trustProxy false: no one is trusted, nothing passes.
    expect(t.setFilter([port], compileSources(false))).toBe(0);
    await deliver([...v4, ...v6]);
    expect(t.drain(DEFAULT_TABLE)).toBe(0);
    expect(t.setFilter([port], null)).toBe(0);
    await deliver([...v4, ...v6]);
    expect(t.drain(DEFAULT_TABLE)).toBe(4);
  });

  it('reads in arrival order: 200 SYNs then their 200 ACKs, read in one go', async () => {
    const tuples = Array.from({ length: 200 }, (_, i): Tuple => ({ src: '127.0.0.1', sport: 20000 + i, dst: '127.0.0.1', dport: port }));
    await deliver([...tuples.map((x) => taggedSyn(x)), ...tuples.map((x) => packet(x, toaV4(254, 1, '192.0.2.1')))]);
    expect(t.drain(DEFAULT_TABLE)).toBe(400);
    expect(t.stats()).toMatchObject({ packets: 400, syns: 200, toaFound: 200, unmatched: 0, badSeq: 0, drops: 0, tableSize: 200 });
  });

  it('counts what the kernel drops when nobody reads', async () => {
    // The smallest ring (16 frames) or receive buffer (64 KiB), and nothing read while 400 arrive.
    const small = new native.Tap(1000, 30000, 65536, ringFrames > 0 ? 16 : 0);
    small.open(fdOf(server));
    small.setFilter([port]);
    const tuples = Array.from({ length: 400 }, (_, i): Tuple => ({ src: '127.0.0.1', sport: 30000 + i, dst: '127.0.0.1', dport: port }));
    await inject(tuples.map((x) => taggedSyn(x)));
    // The kernel delivers them from its backlog, in a softirq that a loaded machine may defer to
    // ksoftirqd: wait until the drop count stops moving (bounded), not a fixed time.
    await stable(() => small.stats().drops);
    small.drain(DEFAULT_TABLE);
    const s = small.stats();
    small.close();
    expect(s.drops).toBeGreaterThan(0);
    expect(s.packets + s.drops).toBe(400);
    if (ringFrames > 0) expect(s.packets).toBe(16);
  });

  it('copies only the SYN of a real Linux connection: its handshake ACK and data have only common options', async () => {
    const client = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    client.write('x');
    await settle();
    client.destroy();
    await settle();
    await deliver([]);
    expect(t.drain(DEFAULT_TABLE)).toBe(1);
    expect(t.stats()).toMatchObject({ packets: 1, syns: 1, inserted: 0 });
  });

  it('opens in its own namespace when given no listener (a node:cluster worker)', () => {
    const own = new native.Tap(16, 1000, 1 << 20);
    const opened = own.open(-1);
    expect(opened.errno).toBe(0);
    expect(opened.netns).toBeGreaterThan(0);
    own.close();
  });

  it('binds ETH_P_ALL, never ETH_P_IP/ETH_P_IPV6 (walked after TCP since Linux 6.15), skipping outgoing', () => {
    // Which sockets are the tap's: the socket inodes among this process's fds before and after.
    const socketInodes = (): Set<string> => {
      const found = new Set<string>();
      for (const fd of fs.readdirSync('/proc/self/fd')) {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
          if (m !== null) found.add(m[1]);
        } catch {
          // closed meanwhile
        }
      }
      return found;
    };
    const before = socketInodes();
    const probe = new native.Tap(16, 1000, 1 << 20);
    expect(probe.open(-1).errno).toBe(0);
    const mine = [...socketInodes()].filter((i) => !before.has(i));
    // /proc/net/packet: sk RefCnt Type Proto Iface R Rmem User Inode, Proto in hex.
    const rows = fs.readFileSync('/proc/net/packet', 'utf8').trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    const protocols = rows.filter((r) => mine.includes(r[8])).map((r) => r[3]);
    probe.close();
    expect(protocols).toEqual(['0003', '0003']);
  });
});

// Packets the tap never read may have been a connection's own, and what it kept then an earlier
// connection's on the same 4-tuple. Without a saved SYN's sequence number to tell them apart, what
// was kept before a loss no longer answers.
describeTap.each([
  ['mmap ring', 16],
  ['recvmmsg', 0],
])('a loss of packets, read through %s', (_how, ringFrames) => {
  let server: net.Server;
  const pairs: Accepted[] = [];
  afterEach(async () => {
    pairs.splice(0).forEach((p) => {
      p.client.destroy();
      p.server.destroy();
    });
    await close(server);
  });

  it('refuses what was kept before it without a saved SYN, answers a saved SYN’s number and what came after', async () => {
    server = net.createServer();
    const port = await listen(server, '127.0.0.1');
    for (let i = 0; i < 5; i++) pairs.push(await connectPair(server, '127.0.0.1', port));
    const [p, queued, q, r, s] = pairs;
    // Two taps see the same packets, in the smallest ring (16 frames) or receive buffer (64 KiB).
    // `quiet` is not asked for its counters until its lookups: no frame after the loss tells it
    // (the ring's TP_STATUS_LOSING). `polled` is, which reads and resets the kernel's drop count.
    const open = (): NativeTap => {
      const x = new native.Tap(1000, 30000, 65536, ringFrames);
      expect(x.open(fdOf(server))).toMatchObject({ errno: 0, ring: ringFrames > 0 });
      expect(x.setFilter([port])).toBe(0);
      return x;
    };
    const quiet = open();
    const polled = open();
    await inject([
      packet(tupleOf(p), toaV4(254, 1111, '192.0.2.11')), // kept without its SYN
      taggedSyn(tupleOf(q)), // a held SYN and its ACK
      packet(tupleOf(q), toaV4(254, 2222, '192.0.2.22')),
      packet(tupleOf(r), toaV4(254, 3333, '192.0.2.33')), // to be looked up with a saved SYN's number
    ]);
    expect(await readAll(quiet, 4)).toBe(4);
    expect(await readAll(polled, 4)).toBe(4);
    // One more packet queued, then 400 nobody reads: the ring or the buffer overflows after it.
    const flood = Array.from({ length: 400 }, (_, i) => taggedSyn({ src: '127.0.0.1', sport: 30000 + i, dst: '127.0.0.1', dport: port }));
    await inject([packet(tupleOf(queued), toaV4(254, 4444, '192.0.2.44')), ...flood]);
    expect(await stable(() => polled.stats().drops)).toBeGreaterThan(0);
    for (const [name, tap] of [['quiet', quiet], ['polled', polled]] as const) {
      const answers = {
        name,
        p: tap.lookup(fdOf(p.server), DEFAULT_TABLE),
        queued: tap.lookup(fdOf(queued.server), DEFAULT_TABLE),
        q: tap.lookup(fdOf(q.server), DEFAULT_TABLE),
        r: tap.lookup(fdOf(r.server), DEFAULT_TABLE, ISN + 1),
      };
      expect(answers).toMatchObject({ name, p: null, queued: null, q: null, r: { options: [{ port: 3333 }] } });
      expect(tap.stats()).toMatchObject({ stale: 3, hits: 1 });
    }
    expect(quiet.stats().drops).toBeGreaterThan(0);
    // Kept since the loss: answers again without a saved SYN.
    await inject([packet(tupleOf(s), toaV4(254, 5555, '192.0.2.55'))]);
    for (const tap of [quiet, polled]) {
      expect(await readAll(tap, 1)).toBe(1);
      expect(tap.lookup(fdOf(s.server), DEFAULT_TABLE)).toMatchObject({ options: [{ port: 5555 }] });
      tap.close();
    }
  });
});

// A real client whose kernel writes TOA (kind 254, 198.51.100.<port & 255>:<port>) into the pure
// ACK that completes the handshake: the saved SYN's sequence number + 1 names that packet.
describeSockops('enable(server, { ack })', () => {
  jest.setTimeout(30_000);
  let group: ToaCgroup;
  const servers = closeAfterEach();
  beforeAll(async () => {
    group = await ToaCgroup.create({ packets: ['ack'] });
  });
  afterAll(async () => {
    await group?.close();
  });

  // node -e CLIENT PORT MODE [LOCAL_PORT]: 'get' sends an HTTP request and prints
  // {"localPort","body"} once the server closes; 'reset' connects and resets at once.
  const CLIENT = `
    const net = require('node:net');
    const [port, mode, localPort] = process.argv.slice(1);
    const socket = net.connect({ port: Number(port), host: '127.0.0.1', localPort: localPort ? Number(localPort) : undefined });
    socket.setTimeout(10000, () => process.exit(2));
    socket.on('error', (e) => { process.stderr.write(e.message); process.exit(1); });
    let data = '';
    let local = 0;
    socket.on('connect', () => {
      local = socket.localPort;
      if (mode === 'reset') {
        process.stdout.write(JSON.stringify({ localPort: local }) + '\\n');
        setTimeout(() => socket.resetAndDestroy(), 50);
        return;
      }
      socket.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n');
    });
    socket.on('data', (d) => (data += d));
    socket.on('close', () => {
      if (mode === 'get') process.stdout.write(JSON.stringify({ localPort: local, body: data.slice(data.indexOf('\\r\\n\\r\\n') + 4) }) + '\\n');
    });
  `;

  async function runClient(port: number, mode: 'get' | 'reset', localPort?: number): Promise<{ localPort: number; body?: string }> {
    const args = ['-e', CLIENT, String(port), mode, ...(localPort !== undefined ? [String(localPort)] : [])];
    const r = await group.run(process.execPath, args, { timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`client in the cgroup failed (${r.code ?? r.signal}): ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { localPort: number; body?: string };
  }

  /** Asks from the sock_ops cgroup: the handshake ACK carries the client's TOA. */
  async function askTagged(port: number): Promise<{ localPort: number; answer: Record<string, unknown> }> {
    const { localPort, body } = await runClient(port, 'get');
    return { localPort, answer: JSON.parse(body!) as Record<string, unknown> };
  }

  /** An HTTP server answering with realRemoteAddress(req.socket, options) as JSON. */
  async function serve(enableOptions: Parameters<typeof enable>[1], toaOptions = { trustProxy: 'loopback' }) {
    const server = http.createServer((req, res) => {
      res.setHeader('connection', 'close');
      res.end(JSON.stringify(realRemoteAddress(req.socket, toaOptions)));
    });
    servers.push(server);
    enable(server, enableOptions);
    const port = await listen(server, '127.0.0.1');
    return { server, port };
  }

  /** Asks from this process (no TOA anywhere), optionally from a given local port. */
  async function ask(port: number, localPort?: number): Promise<Record<string, unknown>> {
    const client = net.connect({ port, host: '127.0.0.1', localPort });
    await new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject));
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const body = await new Promise<string>((resolve, reject) => {
      let data = '';
      client.on('data', (d) => (data += d.toString()));
      client.on('end', () => resolve(data.slice(data.indexOf('\r\n\r\n') + 4)));
      client.on('error', reject);
    });
    return JSON.parse(body) as Record<string, unknown>;
  }
  const tapOf = (port: number) => stats().taps.find((x) => x.port === port);

  /**
   * A port below the kernel's ephemeral range that nothing holds now: no connection of another
   * process on this machine takes it between two connections of a test that both bind it.
   */
  async function unusedPort(): Promise<number> {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const from = low > 12000 ? 10000 : 1024;
    for (let i = 0; i < 100; i++) {
      const port = from + Math.floor(Math.random() * (low - from));
      const probe = net.createServer();
      const free = await new Promise<boolean>((resolve) => {
        probe.once('error', () => resolve(false));
        probe.listen(port, '0.0.0.0', () => resolve(true));
      });
      if (free) {
        await close(probe);
        return port;
      }
    }
    throw new Error('no unused port below the ephemeral range');
  }
  const expectedToa = (localPort: number) => ({ ...group.expected(localPort), source: 'toa', kind: 254, packet: 'ack', proxy: { address: '127.0.0.1' } });

  describe.each(['sockops', 'packet'] as const)('%s tap', (source) => {
    const ack = { source };
    const packetSockets = source === 'packet';

    it('answers with the peer on 127.0.0.1 when no packet holds a TOA, and copies only its SYN', async () => {
      const { port } = await serve({ ack });
      expect(tapOf(port)).toMatchObject({ source });
      const before = stats();
      expect(await ask(port)).toMatchObject({ source: 'peer', address: '127.0.0.1' });
      const after = stats();
      expect(after.lookups - before.lookups).toBe(1);
      expect(after.hits - before.hits).toBe(0);
      // Packet sockets copied its SYN (every SYN is: it makes the 4-tuple forget an earlier
      // connection), nothing else; the sock_ops program copies nothing to user space.
      expect(tapOf(port)).toMatchObject({ port, packets: packetSockets ? 1 : 0, syns: packetSockets ? 1 : 0, inserted: 0, lookups: 1, hits: 0 });
    });

    it('reads a TOA from the handshake ACK; without { ack } the same packet is not seen', async () => {
      const written = (await group.counters()).ack;
      const tapped = await serve({ ack });
      const a = await askTagged(tapped.port);
      expect(a.answer).toMatchObject(expectedToa(a.localPort));
      expect(tapOf(tapped.port)).toMatchObject(
        packetSockets
          ? { packets: 2, syns: 1, toaFound: 1, unmatched: 1, lookups: 1, hits: 1, stale: 0 }
          : { packets: 0, syns: 0, toaFound: 1, unmatched: 0, lookups: 1, hits: 1, stale: 0 },
      );
      const plain = await serve(undefined);
      const b = await askTagged(plain.port);
      expect(b.answer).toMatchObject({ source: 'peer', address: '127.0.0.1', port: b.localPort });
      // The client's kernel did write the option into both handshakes.
      expect((await group.counters()).ack - written).toBe(2);
    });

    it('ignores the TOA of an untrusted peer', async () => {
      const { port } = await serve({ ack }, { trustProxy: '192.0.2.0/24' });
      const { localPort, answer } = await askTagged(port);
      expect(answer).toMatchObject({ source: 'peer', address: '127.0.0.1', port: localPort });
      // The tap did find it: the policy refused it.
      expect(tapOf(port)).toMatchObject({ lookups: 1, hits: 1 });
    });

    it('with trustProxy, keeps an untrusted sender’s packets in the kernel; without, copies them', async () => {
      const filtered = await serve({ ack, trustProxy: '192.0.2.0/24' });
      const a = await askTagged(filtered.port);
      expect(a.answer).toMatchObject({ source: 'peer', address: '127.0.0.1', port: a.localPort });
      expect(tapOf(filtered.port)).toMatchObject({ packets: 0, lookups: 1, hits: 0, toaFound: 0 });
      const open = await serve({ ack });
      const b = await askTagged(open.port);
      expect(b.answer).toMatchObject(expectedToa(b.localPort));
      expect(tapOf(open.port)).toMatchObject({ packets: packetSockets ? 2 : 0, lookups: 1, hits: 1, toaFound: 1 });
    });

    it("never gives a reused 4-tuple the previous connection's client", async () => {
      const { port } = await serve({ ack });
      // The first connection's TOA is kept but never asked for; its client resets (no TIME_WAIT),
      // and a client without TOA connects again from the same port.
      const localPort = await unusedPort();
      expect((await runClient(port, 'reset', localPort)).localPort).toBe(localPort);
      await settle(150);
      // Packet sockets hold it in their table; the sock_ops program held it in the first
      // connection's own socket, gone with it.
      if (packetSockets) expect(tapOf(port)).toMatchObject({ toaFound: 1, tableSize: 1, lookups: 0 });
      expect(await ask(port, localPort)).toMatchObject({ source: 'peer', address: '127.0.0.1', port: localPort });
      // The entry answered nothing: its packet had the first connection's sequence number.
      expect(tapOf(port)).toMatchObject({ tableSize: 0, lookups: 1, hits: 0 });
    });
  });

  it('closes the tap with the server', async () => {
    const { server, port } = await serve({ ack: { capacity: 64, maxAge: 1000 } });
    expect(stats().taps.find((x) => x.port === port)).toMatchObject({ capacity: 64 });
    servers.splice(servers.indexOf(server), 1);
    await close(server);
    expect(stats().taps.find((x) => x.port === port)).toBeUndefined();
  });

  it('opens the tap at once for a server that already listens', async () => {
    const later = net.createServer();
    servers.push(later);
    const port = await listen(later, '127.0.0.1');
    expect(stats().taps.some((x) => x.port === port)).toBe(false);
    enable(later, { ack: true });
    expect(stats().taps.some((x) => x.port === port)).toBe(true);
  });

  it('validates its options where they are passed', () => {
    const s = net.createServer();
    const where = 'enable(server, options)';
    expect(() => enable(s, { ack: 'yes' } as never)).toThrow(
      new TypeError(`${where}: options.ack must be a boolean or an object such as { capacity: 65536, maxAge: 30000 }, got 'yes'`),
    );
    expect(() => enable(s, { acks: true } as never)).toThrow(new TypeError(`${where}: unknown option 'acks' (known: ack, proxyProtocol, trustProxy)`));
    expect(() => enable(s, 'ack' as never)).toThrow(new TypeError(`${where}: options must be an object, got string`));
    expect(() => enable(s, { ack: { size: 1 } } as never)).toThrow(new TypeError(`${where}: unknown option 'ack.size' (known: capacity, maxAge, source)`));
    expect(() => enable(s, { ack: { capacity: 1.5 } })).toThrow(new TypeError(`${where}: options.ack.capacity must be an integer, got 1.5`));
    expect(() => enable(s, { ack: { capacity: 0 } })).toThrow(new RangeError(`${where}: options.ack.capacity must be from 1 to 16777216, got 0`));
    expect(() => enable(s, { ack: { maxAge: 10 } })).toThrow(new RangeError(`${where}: options.ack.maxAge must be from 100 to 3600000, got 10`));
    expect(s.listenerCount('listening')).toBe(0);
  });

  it('works in a worker thread beside the main thread, each with its own tap', async () => {
    const dist = path.join(__dirname, '..', '..', 'dist', 'index.js');
    const { port: mainPort } = await serve({ ack: true });
    const worker = new Worker(
      `
      const { parentPort } = require('node:worker_threads');
      const net = require('node:net');
      const toa = require(${JSON.stringify(dist)});
      const server = toa.enable(net.createServer((s) => {
        s.on('data', () => {
          const answer = toa.realRemoteAddress(s, { trustProxy: 'loopback' });
          parentPort.postMessage({ answer, taps: toa.stats().taps.length });
          s.destroy(); server.close();
        });
      }), { ack: true });
      server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
      `,
      { eval: true },
    );
    const messages: Array<{ port?: number; answer?: Record<string, unknown>; taps?: number }> = [];
    const next = () =>
      new Promise<(typeof messages)[number]>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    const { port } = await next();
    const answered = next();
    const [{ localPort }, message] = await Promise.all([runClient(port!, 'get'), answered]);
    await worker.terminate();
    expect(message.answer).toMatchObject(expectedToa(localPort));
    expect(message.taps).toBe(1);
    const main = await askTagged(mainPort);
    expect(main.answer).toMatchObject(expectedToa(main.localPort));
  });
});

describeTap('without CAP_NET_RAW', () => {
  const dist = path.join(__dirname, '..', '..', 'dist', 'index.js');
  /** enable(server, { ack }) in a child without `caps` (setpriv drops them from the bounding set). */
  function enableWithout(caps: string, ack: unknown): Record<string, unknown> {
    const script = `
      const toa = require(${JSON.stringify(dist)});
      const server = require('node:net').createServer();
      let out;
      try { toa.enable(server, { ack: ${JSON.stringify(ack)} }); out = { thrown: false }; }
      catch (e) { out = { thrown: true, name: e.name, code: e.code, message: e.message, syscall: e.syscall }; }
      toa.enable(server);
      server.listen(0, '127.0.0.1', () => { out.saveSyn = toa.isEnabled(server); out.taps = toa.stats().taps.map((t) => t.source); console.log(JSON.stringify(out)); server.close(); });
    `;
    const r = spawnSync('setpriv', [`--inh-caps=${caps}`, `--bounding-set=${caps}`, '--', process.execPath, '-e', script], {
      encoding: 'utf8',
      timeout: 10000,
    });
    expect(r.error).toBeUndefined(); // setpriv is in util-linux, part of every Debian
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  it('packet sockets: throws ERR_TOA_NO_CAP_NET_RAW, saying what is missing and that the SYN path works', () => {
    const out = enableWithout('-net_raw', { source: 'packet' });
    expect(out).toMatchObject({ thrown: true, name: 'Error', code: 'ERR_TOA_NO_CAP_NET_RAW', syscall: 'socket(AF_PACKET)', saveSyn: true });
    expect(out.message).toContain('needs the CAP_NET_RAW capability to open');
    expect(out.message).toContain('TOA in SYNs still works');
  });

  it('{ ack: true } reads through the sock_ops program instead', () => {
    expect(enableWithout('-net_raw', true)).toMatchObject({ thrown: false, saveSyn: true, taps: ['sockops'] });
  });

  it('with neither, { ack: true } names both capabilities', () => {
    const out = enableWithout('-net_raw,-bpf,-sys_admin,-net_admin', true);
    expect(out).toMatchObject({ thrown: true, code: 'ERR_TOA_NO_CAP_NET_RAW', saveSyn: true });
    expect(out.message).toContain('needs the CAP_NET_RAW capability (or CAP_BPF and CAP_NET_ADMIN, for the sock_ops program, which did not load either)');
  });
});

// The sock_ops program runs for the sockets of its process's cgroup. A listener made outside it
// (handed over by systemd, or by another process as here) is not among them: the tap says so once,
// counts the connections it never saw, and every answer is the peer, never a wrong client.
describeSockops('a listener made outside the process’s cgroup (sock_ops)', () => {
  // Its senders are trusted, so the reader, finding no storage, counts them unseen: the trust
  // list's key for each family (an IPv4 client of a dual-stack listener as ::ffff:127.0.0.1).
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::1', '::1'],
    ['::', '127.0.0.1'],
  ])('warns NODE_TOA_SOCKOPS_UNSEEN once, counts the unseen connections, answers with the peer (listening on %s, from %s)', async (host, from) => {
    const dist = path.join(__dirname, '..', '..', 'dist', 'index.js');
    const cgroup = path.join(cgroupRoot()!, `node-toa-unseen-${process.pid}`);
    fs.mkdirSync(cgroup, { recursive: true });
    const script = `
      const toa = require(${JSON.stringify(dist)});
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.code));
      process.once('message', (_m, server) => {
        toa.enable(server, { ack: { source: 'sockops' }, trustProxy: 'loopback' });
        const answers = [];
        server.on('connection', (s) => {
          answers.push(toa.realRemoteAddress(s, { trustProxy: 'loopback' }).source);
          s.destroy();
          if (answers.length === 3) {
            setTimeout(() => {
              process.send({ answers, warnings, taps: toa.stats().taps.map(({ source, lookups, unseen }) => ({ source, lookups, unseen })) });
              server.close();
              process.disconnect();
            }, 200);
          }
        });
        process.send({ ready: true });
      });
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      // Into the other cgroup before it loads anything; the listener stays this process's.
      fs.writeFileSync(path.join(cgroup, 'cgroup.procs'), String(child.pid));
      const server = net.createServer();
      const port = await listen(server, host);
      binding!.setSaveSyn((server as unknown as { _handle: { fd: number } })._handle.fd, true);
      const messages: Array<Record<string, unknown>> = [];
      const next = () => new Promise<Record<string, unknown>>((resolve) => child.once('message', (m) => resolve(m as Record<string, unknown>)));
      const ready = next();
      child.send('server', server);
      await ready;
      await close(server); // the child's copy listens on
      const done = next();
      for (let i = 0; i < 3; i++) {
        const c = net.connect(port, from);
        await new Promise((resolve, reject) => c.once('connect', resolve).once('error', reject));
        c.destroy();
      }
      messages.push(await done);
      expect(messages[0]).toEqual({
        answers: ['peer', 'peer', 'peer'],
        warnings: ['NODE_TOA_SOCKOPS_UNSEEN'],
        taps: [{ source: 'sockops', lookups: 3, unseen: 3 }],
      });
    } finally {
      child.kill();
      await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
      fs.rmdirSync(cgroup);
    }
  });
});

// An attached program runs for every connection of the cgroup, so it is attached only while the
// process watches a port, or is about to (enable() before listen(): the program must see that
// listen() to flag the listener for its cookie SYN-ACKs). Counted from the process's descriptors.
describeSockops('when the sock_ops program is attached', () => {
  it('not after the probe, from enable() before listen() to the tap’s close, not after', () => {
    const dist = path.join(__dirname, '..', '..', 'dist', 'index.js');
    const script = `
      const fs = require('fs');
      const net = require('net');
      const toa = require(${JSON.stringify(dist)});
      const { binding } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'addon', 'binding.js'))});
      const links = () => fs.readdirSync('/proc/self/fd').filter((fd) => { try { return new RegExp(${JSON.stringify(BPF_LINK.source)}).test(fs.readlinkSync('/proc/self/fd/' + fd)); } catch { return false; } }).length;
      const steps = {};
      steps.probed = [binding.probeSockops().errno, links()];
      const server = net.createServer();
      toa.enable(server, { ack: { source: 'sockops' }, trustProxy: 'loopback' });
      steps.enabledBeforeListen = links();
      server.listen(0, '127.0.0.1', () => {
        steps.listening = links();
        steps.taps = toa.stats().taps.map((t) => t.source);
        server.close(() => {
          steps.closed = links();
          const again = net.createServer();
          again.listen(0, '127.0.0.1', () => {
            toa.enable(again, { ack: { source: 'sockops' }, trustProxy: 'loopback' });
            steps.enabledListening = links();
            again.close(() => {
              steps.closedAgain = links();
              console.log(JSON.stringify(steps));
            });
          });
        });
      });
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      probed: [0, 0],
      enabledBeforeListen: 1,
      listening: 1,
      taps: ['sockops'],
      closed: 0,
      enabledListening: 1,
      closedAgain: 0,
    });
  });
});

// The reader finds what the program kept in its table by the saved SYN's ends, with no system
// call; for a sender outside the trust list the slot holds only the ACK's sequence number, which
// says that nothing was kept (it cost one bpf() lookup per connection before the slot said so).
describeSockops('the sock_ops table answers without a system call', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => close(s)));
  });

  it.each([
    ['a trusted sender (its ACK kept)', 'loopback'],
    ['a sender outside the trust list (nothing kept)', '10.0.0.0/8'],
  ])('%s: the lookups are answered from the table, not from the socket storage', async (_name, trustProxy) => {
    const answers: string[] = [];
    const server = net.createServer((s) => {
      answers.push(realRemoteAddress(s, { trustProxy }).source);
      s.destroy();
    });
    servers.push(server);
    enable(server, { ack: { source: 'sockops' }, trustProxy });
    const port = await listen(server, '127.0.0.1');
    // One after another: the server accepts each once the kernel has run the program for it.
    for (let i = 0; i < 20; i++) {
      await connectOnce(port, '127.0.0.1');
    }
    const tap = stats().taps.find((t) => t.port === port)!;
    expect(answers).toEqual(Array(20).fill('peer'));
    expect({ source: tap.source, lookups: tap.lookups, unseen: tap.unseen }).toEqual({ source: 'sockops', lookups: 20, unseen: 0 });
    // Before the table said so, each of the 20 asked the storage. The program and its table are
    // the cgroup's, shared with the other jest worker's servers: one of their connections may take
    // a slot between its ACK and the read, and that lookup then asks the storage (rightly).
    expect(tap.storageLookups).toBeLessThanOrEqual(1);
  });
});

// The program's cost is mostly the socket storage it makes (two allocations): a connection from a
// sender no watcher of the port trusts gets none, only its slot. When another connection has taken
// that slot, the reader asks the program's trust map, and counts the connection as seen.
describeSockops('the sock_ops program keeps socket storage for trusted senders only', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => close(s)));
  });

  // The trust list keys IPv4 senders as ::ffff:a.b.c.d, as the program and the reader both write
  // them: an IPv4 client of a dual-stack listener (::) is the same sender as on 127.0.0.1.
  it.each([
    ['a trusted sender', 'loopback', '127.0.0.1', '127.0.0.1', 0],
    ['a sender outside the trust list', '10.0.0.0/8', '127.0.0.1', '127.0.0.1', constants.errno.ENOENT],
    ['a trusted sender', 'loopback', '::1', '::1', 0],
    ['a sender outside the trust list', '10.0.0.0/8', '::1', '::1', constants.errno.ENOENT],
    ['a trusted sender', 'loopback', '::', '127.0.0.1', 0],
    ['a sender outside the trust list', '127.0.0.2', '::', '127.0.0.1', constants.errno.ENOENT],
  ])('%s (trustProxy %s, listening on %s, from %s): socket storage errno %i, and nothing unseen when its slot is gone', async (_name, trustProxy, host, from, storage) => {
    const seen: Array<{ storage: number; source: string; lost: unknown; lostNoSyn: unknown }> = [];
    const server = net.createServer((s) => {
      const fd = (s as unknown as { _handle: { fd: number } })._handle.fd;
      const tap = tapOf(s, server)!.tap;
      seen.push({
        storage: native.testing.sockopsStorage(fd),
        source: realRemoteAddress(s, { trustProxy }).source,
        // What the reader finds when the slot holds another connection: a stand-in saved SYN with
        // a sequence number the slot does not follow, and no saved SYN at all.
        lost: tap.lookup(fd, DEFAULT_TABLE, 12345),
        lostNoSyn: tap.lookup(fd, DEFAULT_TABLE),
      });
      s.destroy();
    });
    servers.push(server);
    enable(server, { ack: { source: 'sockops' }, trustProxy });
    const port = await listen(server, host);
    for (let i = 0; i < 5; i++) await connectOnce(port, from);
    expect(seen).toEqual(Array(5).fill({ storage, source: 'peer', lost: null, lostNoSyn: null }));
    const tap = stats().taps.find((t) => t.port === port)!;
    expect({ lookups: tap.lookups, unseen: tap.unseen }).toEqual({ lookups: 15, unseen: 0 });
  });
});

// A sock_ops tap has nothing to drain: the drain timer asks it only whether its program sees the
// server's connections, and stops once that is known, so an idle server is not woken for it.
describeSockops('the drain timer, with sock_ops taps only', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => close(s)));
  });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  /** A server with a sock_ops tap, and how many times the tap's counters were asked since. */
  async function counted(): Promise<{ port: number; asked: () => number }> {
    const server = net.createServer((s) => {
      realRemoteAddress(s, { trustProxy: 'loopback' });
      s.destroy();
    });
    servers.push(server);
    enable(server, { ack: { source: 'sockops' }, trustProxy: 'loopback' });
    const port = await listen(server, '127.0.0.1');
    const native = tapOf({}, server)!.tap;
    const own = native.stats.bind(native);
    let asked = 0;
    // The addon's method is read-only on its prototype: shadowed on the instance.
    Object.defineProperty(native, 'stats', {
      value: (): NativeTapStats => {
        asked++;
        return own();
      },
    });
    return { port, asked: () => asked };
  }

  /** Waits until `asked` holds still for 200 ms (four ticks), at most 3 s; throws if it never does. */
  async function quiet(asked: () => number): Promise<number> {
    let last = asked();
    for (let waited = 0; waited < 3000; waited += 200) {
      await sleep(200);
      if (asked() === last) return last;
      last = asked();
    }
    throw new Error(`the tap's counters were still being asked after 3 s (${last} times)`);
  }

  it('asks a tap until it has looked a connection up, then stops; a new tap starts it again', async () => {
    const first = await counted();
    await sleep(250);
    // No lookup yet: whether the program sees the connections is not known, the timer asks.
    expect(first.asked()).toBeGreaterThanOrEqual(2);
    await connectOnce(first.port, '127.0.0.1');
    const settled = await quiet(first.asked);
    await sleep(300);
    expect(first.asked()).toBe(settled);

    const second = await counted();
    await sleep(250);
    expect(second.asked()).toBeGreaterThanOrEqual(2);
    await connectOnce(second.port, '127.0.0.1');
    await quiet(second.asked);
    const both = [first.asked(), second.asked()];
    await sleep(300);
    expect([first.asked(), second.asked()]).toEqual(both);
    expect(stats().taps.filter((t) => t.source === 'sockops').map((t) => [t.lookups, t.unseen])).toEqual([
      [1, 0],
      [1, 0],
    ]);
  });
});
