// The ACK tap on loopback: its bounded table (through the binding's testing.offer() and real
// accepted sockets), its BPF filter (real packets sent on lo through an AF_PACKET socket), and
// enable(server, { ack }) end to end with a TOA injected into a real connection's 4-tuple.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { binding } from '../lib/addon/binding';
import { compileKinds } from '../lib/core/kinds';
import type { NativeBinding, NativeTap } from '../lib/addon/native';
import { enable, realRemoteAddress, stats } from '../lib/index';
import { close, connectPair, listen, type Accepted } from './helpers/loopback';
import { TCP, aliCdn, ipv4, ipv6, extOptions, nop, tcp, toaV4, toaV6, ts, type Bytes } from './helpers/packets';

const CI = process.env.CI === 'true';
const canTap = process.platform === 'linux' && binding !== null && binding.tapSupported && binding.probePacketSocket() === 0;
if (!canTap && !CI) console.warn('ack-table.test: skipped, packet sockets need Linux and CAP_NET_RAW');
const describeTap = canTap || CI ? describe : describe.skip;

const DEFAULT_TABLE = compileKinds(undefined);
const TABLE_WITH_28 = compileKinds([200, 253, 254, 28]);
const native = binding as NativeBinding;
const offer = (t: NativeTap, p: Uint8Array, table: Uint8Array): boolean => native.testing.offer(t, p, table);

function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

/** Sends IP packets on lo through an AF_PACKET socket: the kernel receives them as from a wire. */
function inject(packets: Uint8Array[]): void {
  const script = [
    'import socket, sys',
    'for h in sys.argv[1:]:',
    '    b = bytes.fromhex(h)',
    '    proto = 0x0800 if b[0] >> 4 == 4 else 0x86DD',
    '    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(proto))',
    "    s.sendto(b, ('lo', proto, 0, 0, bytes(6)))",
    '    s.close()',
  ].join('\n');
  const hex = packets.map((p) => Buffer.from(p).toString('hex'));
  const r = spawnSync('python3', ['-c', script, ...hex], { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0) throw new Error(`inject failed: ${r.stderr}`);
}

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

const synOf = (t: Tuple, seq = ISN): Uint8Array => packet(t, [2, 4, 5, 180], TCP.SYN, [], seq);

/** A SYN, then an ACK with these options: a handshake as the tap sees it. */
function handshake(t: Tuple, options: Bytes, isn = ISN): Uint8Array[] {
  return [synOf(t, isn), packet(t, options, TCP.ACK, [], isn + 1)];
}

const tsOnly = (): number[] => [...nop(), ...nop(), ...ts()];

async function settle(ms = 30): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
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

  it('finds the TOA of a connection and consumes it', async () => {
    const [p] = await connections(1);
    const t = tap();
    for (const pkt of handshake(tupleOf(p), toaV4(254, 4321, '203.0.113.7'))) expect(offer(t, pkt, DEFAULT_TABLE)).toBe(true);
    expect(t.stats()).toMatchObject({ packets: 2, syns: 1, toaFound: 1, inserted: 1, tableSize: 1 });
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE)).toEqual({
      peer: { family: 'IPv4', address: '127.0.0.1', port: p.client.localPort },
      options: [{ family: 'IPv4', address: '203.0.113.7', port: 4321, kind: 254, length: 8, layout: 1, status: 0 }],
      packet: 'ack',
    });
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE)).toBeNull();
    expect(t.stats()).toMatchObject({ tableSize: 0, lookups: 2, hits: 1 });
    t.close();
  });

  it('keeps at most `capacity` entries and evicts the oldest first', async () => {
    const ps = await connections(6);
    const t = tap(4);
    ps.forEach((p, i) => handshake(tupleOf(p), toaV4(200, 1000 + i, '192.0.2.1')).forEach((x) => offer(t, x, DEFAULT_TABLE)));
    expect(t.stats()).toMatchObject({ inserted: 6, tableSize: 4, capacity: 4, evictions: 2 });
    const found = ps.map((p) => t.lookup(fdOf(p.server), DEFAULT_TABLE));
    expect(found.map((f) => (f === null || typeof f === 'number' ? null : f.options[0].port))).toEqual([
      null,
      null,
      1002,
      1003,
      1004,
      1005,
    ]);
    t.close();
  });

  it('refuses 100,000 forged ACKs without a SYN, stays at its bound under 100,000 SYNs', async () => {
    const [p] = await connections(1);
    const t = tap(1000);
    const forged = (i: number): Tuple => ({ src: `198.51.100.${i % 250}`, sport: 1024 + (i % 60000), dst: '203.0.113.10', dport: 80 });
    for (let i = 0; i < 100000; i++) offer(t, packet(forged(i), toaV4(254, i & 0xffff, '192.0.2.66')), DEFAULT_TABLE);
    expect(t.stats()).toMatchObject({ unmatched: 100000, inserted: 0, tableSize: 0, toaFound: 0 });
    for (let i = 0; i < 100000; i++) offer(t, synOf(forged(i)), DEFAULT_TABLE);
    expect(t.stats()).toMatchObject({ syns: 100000, inserted: 100000, tableSize: 1000, evictions: 99000 });
    for (const pkt of handshake(tupleOf(p), toaV4(254, 4321, '203.0.113.7'))) offer(t, pkt, DEFAULT_TABLE);
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE)).toMatchObject({ options: [{ address: '203.0.113.7', port: 4321 }] });
    expect(t.stats().tableSize).toBe(1000 - 1);
    t.close();
  });

  it('takes only the packet carrying the SYN’s sequence number + 1 (an off-path forger cannot know it)', async () => {
    const [p, q] = await connections(2);
    const t = tap();
    offer(t, synOf(tupleOf(p)), DEFAULT_TABLE);
    offer(t, packet(tupleOf(p), toaV4(254, 6666, '192.0.2.66'), TCP.ACK, [], ISN + 2), DEFAULT_TABLE);
    offer(t, packet(tupleOf(p), toaV4(254, 6667, '192.0.2.67'), TCP.ACK, [], ISN), DEFAULT_TABLE);
    offer(t, packet(tupleOf(p), toaV4(254, 3333, '192.0.2.3')), DEFAULT_TABLE);
    // TCP Fast Open: data in the SYN moves the first sequence number after it.
    const data = [1, 2, 3, 4, 5];
    offer(t, packet(tupleOf(q), [2, 4, 5, 180], TCP.SYN, data, ISN), DEFAULT_TABLE);
    offer(t, packet(tupleOf(q), toaV4(254, 7777, '192.0.2.77'), TCP.ACK, [], ISN + 1), DEFAULT_TABLE);
    offer(t, packet(tupleOf(q), toaV4(254, 4444, '192.0.2.4'), TCP.ACK, [], ISN + 1 + data.length), DEFAULT_TABLE);
    expect(t.stats()).toMatchObject({ badSeq: 3, toaFound: 2 });
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE)).toMatchObject({ options: [{ port: 3333 }] });
    expect(t.lookup(fdOf(q.server), DEFAULT_TABLE)).toMatchObject({ options: [{ port: 4444 }] });
    t.close();
  });

  it('forgets a tuple when a SYN starts a new connection on it', async () => {
    const [p] = await connections(1);
    const t = tap();
    const tuple = tupleOf(p);
    handshake(tuple, toaV4(254, 1111, '192.0.2.1')).forEach((x) => offer(t, x, DEFAULT_TABLE));
    offer(t, synOf(tuple, 5000), DEFAULT_TABLE);
    expect(t.stats()).toMatchObject({ syns: 2, tableSize: 1 });
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE)).toBeNull();
    handshake(tuple, toaV4(254, 2222, '192.0.2.2'), 7000).forEach((x) => offer(t, x, DEFAULT_TABLE));
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE)).toMatchObject({ options: [{ port: 2222, address: '192.0.2.2' }] });
    t.close();
  });

  it('keeps the first TOA of a connection; a TOA replaces an entry that had none', async () => {
    const [a, b] = await connections(2);
    const t = tap();
    handshake(tupleOf(a), toaV4(254, 1111, '192.0.2.1')).forEach((x) => offer(t, x, DEFAULT_TABLE));
    offer(t, packet(tupleOf(a), toaV4(254, 2222, '192.0.2.2'), TCP.ACK | 0x08, [0x47]), DEFAULT_TABLE);
    // An option nobody configured yet is kept, then the real TOA replaces it.
    handshake(tupleOf(b), [99, 8, 1, 2, 3, 4, 5, 6]).forEach((x) => offer(t, x, DEFAULT_TABLE));
    offer(t, packet(tupleOf(b), toaV4(200, 3333, '192.0.2.3')), DEFAULT_TABLE);
    expect(t.stats()).toMatchObject({ inserted: 2, toaFound: 3 });
    expect(t.lookup(fdOf(a.server), DEFAULT_TABLE)).toMatchObject({ options: [{ port: 1111 }] });
    expect(t.lookup(fdOf(b.server), DEFAULT_TABLE)).toMatchObject({ options: [{ port: 3333, kind: 200 }] });
    t.close();
  });

  it('keeps options raw, so a kind configured after the packet arrived is still read', async () => {
    const [p] = await connections(1);
    const t = tap();
    handshake(tupleOf(p), aliCdn('192.0.2.28')).forEach((x) => offer(t, x, DEFAULT_TABLE));
    expect(t.stats()).toMatchObject({ toaFound: 0, inserted: 1 });
    expect(t.lookup(fdOf(p.server), TABLE_WITH_28)).toMatchObject({
      options: [{ address: '192.0.2.28', port: 0, kind: 28, length: 7 }],
    });
    t.close();
  });

  it('refuses a packet whose ends differ in family (an IPv4-mapped source to a plain IPv6 address)', () => {
    // Read as IPv4 192.0.2.1 -> 1.2.3.4 it would key like a real IPv4 tuple.
    const mixed = { src: '::ffff:192.0.2.1', sport: 40000, dst: '102:304::', dport: 80 };
    const t = tap();
    expect(offer(t, synOf(mixed), DEFAULT_TABLE)).toBe(false);
    expect(offer(t, packet(mixed, toaV4(254, 1, '203.0.113.1')), DEFAULT_TABLE)).toBe(false);
    expect(t.stats()).toMatchObject({ malformed: 2, inserted: 0, packets: 0 });
    t.close();
  });

  it('ignores timestamp-only ACKs, RSTs and packets that are not TCP', async () => {
    const [p] = await connections(1);
    const t = tap();
    const tuple = tupleOf(p);
    offer(t, synOf(tuple), DEFAULT_TABLE);
    offer(t, packet(tuple, tsOnly()), DEFAULT_TABLE);
    offer(t, packet(tuple, toaV4(254, 1, '192.0.2.1'), TCP.RST | TCP.ACK), DEFAULT_TABLE);
    expect(offer(t, ipv4({ protocol: 17, payload: new Uint8Array(40) }), DEFAULT_TABLE)).toBe(false);
    expect(offer(t, new Uint8Array([0x45, 0, 0]), DEFAULT_TABLE)).toBe(false);
    expect(t.stats()).toMatchObject({ packets: 3, malformed: 2, inserted: 1, toaFound: 0, tableSize: 1 });
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE)).toBeNull();
    t.close();
  });

  it('drops entries older than maxAge', async () => {
    const [p] = await connections(1);
    const t = tap(1000, 100);
    handshake(tupleOf(p), toaV4(254, 4321, '203.0.113.7')).forEach((x) => offer(t, x, DEFAULT_TABLE));
    await settle(200);
    expect(t.lookup(fdOf(p.server), DEFAULT_TABLE)).toBeNull();
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
    expect(t.lookup(fdOf(mapped.server), DEFAULT_TABLE)).toMatchObject({
      peer: { family: 'IPv4', address: '127.0.0.1' },
      options: [{ address: '192.0.2.44', port: 4444 }],
    });
    expect(t.lookup(fdOf(v6.server), DEFAULT_TABLE)).toMatchObject({
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
  beforeEach(async () => {
    server = net.createServer((s) => s.destroy());
    port = await listen(server, '127.0.0.1');
    t = new native.Tap(1000, 30000, 1 << 20, ringFrames);
    const opened = t.open((server as unknown as { _handle: { fd: number } })._handle.fd);
    expect(opened).toMatchObject({ errno: 0, ring: ringFrames > 0 });
    expect(t.setFilter([port])).toBe(0);
  });
  afterEach(async () => {
    t.close();
    await close(server);
  });

  const at = (sport: number, dport: number, src = '127.0.0.1'): Tuple => ({
    src,
    sport,
    dst: src.includes(':') ? '::1' : '127.0.0.1',
    dport,
  });

  it('passes SYNs and packets with options beyond a lone timestamp, to the port, nothing else', async () => {
    const toa = toaV4(254, 4321, '203.0.113.7');
    const passed = [
      packet(at(50001, port), toa), // TOA alone (doff 7)
      packet(at(50002, port), [...tsOnly(), ...toa]), // timestamp then TOA (doff 10)
      packet(at(50003, port), [...toa, ...nop(), ...nop(), ...nop(), ...nop()]), // doff 8, not a timestamp
      packet(at(50004, port), [2, 4, 5, 180], TCP.SYN), // a SYN
      packet(at(50005, port, '::1'), toaV6(254, 6000, '2001:db8:c::1')), // IPv6, no extension header
    ];
    const blocked = [
      packet(at(50010, port), tsOnly()), // the timestamp-only case
      packet(at(50011, port), []), // no options
      packet(at(50012, port + 1 > 65535 ? port - 1 : port + 1), toa), // another port
      packet(at(50013, port), [2, 4, 5, 180], TCP.SYN | TCP.ACK), // a SYN-ACK
      ipv6({ src: '::1', dst: '::1', extHeaders: [extOptions(60)], payload: tcp({ sport: 50014, dport: port, flags: TCP.ACK, options: toa }) }),
      ipv4({ src: '127.0.0.1', dst: '127.0.0.1', fragmentOffset: 3, payload: tcp({ sport: 50015, dport: port, flags: TCP.ACK, options: toa }) }),
      ipv4({ src: '127.0.0.1', dst: '127.0.0.1', protocol: 17, payload: tcp({ sport: 50016, dport: port, options: toa }) }),
    ];
    inject([...passed, ...blocked]);
    await settle();
    expect(t.drain(DEFAULT_TABLE)).toBe(passed.length);
    // The TOA packets have no SYN on their tuples: read, then refused as unmatched.
    expect(t.stats()).toMatchObject({ packets: passed.length, syns: 1, inserted: 1, unmatched: 4, drops: 0, malformed: 0 });
  });

  it('reads in arrival order: 200 SYNs then their 200 ACKs, read in one go', async () => {
    const tuples = Array.from({ length: 200 }, (_, i): Tuple => ({ src: '127.0.0.1', sport: 20000 + i, dst: '127.0.0.1', dport: port }));
    inject([...tuples.map((x) => synOf(x)), ...tuples.map((x) => packet(x, toaV4(254, 1, '192.0.2.1')))]);
    await settle(100);
    expect(t.drain(DEFAULT_TABLE)).toBe(400);
    expect(t.stats()).toMatchObject({ packets: 400, syns: 200, toaFound: 200, unmatched: 0, drops: 0, tableSize: 200 });
  });

  it('counts what the kernel drops when nobody reads', async () => {
    // The smallest ring (16 frames) or receive buffer (64 KiB), and nothing read while 400 arrive.
    const small = new native.Tap(1000, 30000, 65536, ringFrames > 0 ? 16 : 0);
    small.open((server as unknown as { _handle: { fd: number } })._handle.fd);
    small.setFilter([port]);
    const tuples = Array.from({ length: 400 }, (_, i): Tuple => ({ src: '127.0.0.1', sport: 30000 + i, dst: '127.0.0.1', dport: port }));
    inject(tuples.map((x) => synOf(x)));
    // The kernel delivers them from its backlog, in a softirq that a loaded machine may defer to
    // ksoftirqd: wait until the drop count stops moving (bounded), not a fixed time.
    let drops = -1;
    for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
      await settle(100);
      const now = small.stats().drops;
      if (now === drops && now > 0) break;
      drops = now;
    }
    small.drain(DEFAULT_TABLE);
    const s = small.stats();
    small.close();
    expect(s.drops).toBeGreaterThan(0);
    expect(s.packets + s.drops).toBe(400);
    if (ringFrames > 0) expect(s.packets).toBe(16);
  });

  it('sees a real connection: its SYN passes, its timestamp-only handshake ACK does not', async () => {
    const client = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    client.write('x');
    await settle();
    client.destroy();
    t.drain(DEFAULT_TABLE);
    expect(t.stats()).toMatchObject({ packets: 1, syns: 1, inserted: 1, unmatched: 0 });
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

describeTap('enable(server, { ack })', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      (s as http.Server).closeAllConnections?.();
      await close(s);
    }
  });

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

  /** Connects, injects `options` into a packet of the connection's own 4-tuple, then asks. */
  async function ask(port: number, options: Bytes | null, localPort?: number): Promise<Record<string, unknown>> {
    const client = net.connect({ port, host: '127.0.0.1', localPort });
    await new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject));
    // A SYN (the kernel answers it with a challenge ACK, the connection lives on) and an ACK
    // with the next sequence number, as a proxy's handshake ACK would have.
    if (options !== null) inject(handshake(at(client.localPort!, port), options));
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const body = await new Promise<string>((resolve, reject) => {
      let data = '';
      client.on('data', (d) => (data += d.toString()));
      client.on('end', () => resolve(data.slice(data.indexOf('\r\n\r\n') + 4)));
      client.on('error', reject);
    });
    return JSON.parse(body) as Record<string, unknown>;
  }
  const at = (sport: number, dport: number): Tuple => ({ src: '127.0.0.1', sport, dst: '127.0.0.1', dport });
  const tapOf = (port: number) => stats().taps.find((x) => x.port === port);

  it('answers with the peer on 127.0.0.1 when no packet holds a TOA', async () => {
    const { port } = await serve({ ack: true });
    const before = stats();
    expect(await ask(port, null)).toMatchObject({ source: 'peer', address: '127.0.0.1' });
    const after = stats();
    expect(after.lookups - before.lookups).toBe(1);
    expect(after.hits - before.hits).toBe(0);
    expect(after.taps.find((x) => x.port === port)).toMatchObject({ port, syns: 1, lookups: 1, hits: 0 });
  });

  it('reads a TOA from a packet after the SYN; without { ack } the same packet is not seen', async () => {
    const tapped = await serve({ ack: true });
    const toa = toaV4(254, 4321, '203.0.113.7');
    expect(await ask(tapped.port, toa)).toMatchObject({
      source: 'toa',
      address: '203.0.113.7',
      port: 4321,
      kind: 254,
      proxy: { address: '127.0.0.1' },
    });
    const plain = await serve(undefined);
    expect(await ask(plain.port, toa)).toMatchObject({ source: 'peer', address: '127.0.0.1' });
  });

  it('ignores the TOA of an untrusted peer', async () => {
    const { port } = await serve({ ack: true }, { trustProxy: '192.0.2.0/24' });
    expect(await ask(port, toaV4(254, 4321, '203.0.113.7'))).toMatchObject({ source: 'peer', address: '127.0.0.1' });
    // The tap did find it: the policy refused it.
    expect(tapOf(port)).toMatchObject({ lookups: 1, hits: 1 });
  });

  it("never gives a reused 4-tuple the previous connection's client", async () => {
    const { port } = await serve({ ack: true });
    // The first connection's TOA is never asked for; the client resets (no TIME_WAIT) and
    // connects again from the same port.
    const first = net.connect({ port, host: '127.0.0.1' });
    await new Promise((resolve) => first.once('connect', resolve));
    const localPort = first.localPort!;
    inject(handshake(at(localPort, port), toaV4(254, 1111, '192.0.2.11')));
    await settle(150);
    expect(tapOf(port)).toMatchObject({ toaFound: 1, tableSize: 1 });
    first.resetAndDestroy();
    await settle();
    expect(await ask(port, null, localPort)).toMatchObject({ source: 'peer', address: '127.0.0.1', port: localPort });
    expect(tapOf(port)).toMatchObject({ syns: 3, tableSize: 0, lookups: 1, hits: 0 });
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
    expect(() => enable(s, { ack: { size: 1 } } as never)).toThrow(
      new TypeError(`${where}: unknown option 'ack.size' (known: capacity, maxAge)`),
    );
    expect(() => enable(s, { ack: { capacity: 1.5 } })).toThrow(
      new TypeError(`${where}: options.ack.capacity must be an integer, got 1.5`),
    );
    expect(() => enable(s, { ack: { capacity: 0 } })).toThrow(
      new RangeError(`${where}: options.ack.capacity must be from 1 to 16777216, got 0`),
    );
    expect(() => enable(s, { ack: { maxAge: 10 } })).toThrow(
      new RangeError(`${where}: options.ack.maxAge must be from 100 to 3600000, got 10`),
    );
    expect(s.listenerCount('listening')).toBe(0);
  });

  it('works in a worker thread beside the main thread, each with its own tap', async () => {
    const dist = path.join(__dirname, '..', 'dist', 'index.js');
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
    const client = net.connect(port!, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    inject(handshake(at(client.localPort!, port!), toaV4(200, 2000, '198.51.100.200')));
    const answered = next();
    client.write('hello');
    const message = await answered;
    client.destroy();
    await worker.terminate();
    expect(message.answer).toMatchObject({ source: 'toa', address: '198.51.100.200', port: 2000 });
    expect(message.taps).toBe(1);
    expect(await ask(mainPort, toaV4(200, 3000, '198.51.100.201'))).toMatchObject({ source: 'toa', port: 3000 });
  });
});

describeTap('without CAP_NET_RAW', () => {
  it('throws ERR_TOA_NO_CAP_NET_RAW, saying what is missing and that the SYN path works', () => {
    const dist = path.join(__dirname, '..', 'dist', 'index.js');
    const script = `
      const toa = require(${JSON.stringify(dist)});
      const server = require('node:net').createServer();
      let out;
      try { toa.enable(server, { ack: true }); out = { thrown: false }; }
      catch (e) { out = { thrown: true, name: e.name, code: e.code, message: e.message, syscall: e.syscall }; }
      toa.enable(server);
      server.listen(0, '127.0.0.1', () => { out.saveSyn = toa.isEnabled(server); console.log(JSON.stringify(out)); server.close(); });
    `;
    const r = spawnSync(
      'setpriv',
      ['--inh-caps=-net_raw', '--bounding-set=-net_raw', '--', process.execPath, '-e', script],
      { encoding: 'utf8', timeout: 10000 },
    );
    expect(r.error).toBeUndefined(); // setpriv is in util-linux, part of every Debian
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ thrown: true, name: 'Error', code: 'ERR_TOA_NO_CAP_NET_RAW', syscall: 'socket(AF_PACKET)', saveSyn: true });
    expect(out.message).toContain('needs the CAP_NET_RAW capability');
    expect(out.message).toContain('TOA in SYNs still works');
  });
});
