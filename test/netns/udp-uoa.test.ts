// DPVS UOA on loopback: IPv4 packets carrying the UOA option (0x1F) written by a raw socket, as
// DPVS's IP-option mode sends them (the option on a flow's first 3 datagrams, or alone in an empty
// datagram just before one), reach a plain UDP socket; node-toa's packet tap reads the option.
// Needs root (the raw socket, the tap's CAP_NET_RAW): runs in CI.
import * as dgram from 'node:dgram';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { enable, metrics } from '../../lib/index';
import { binding } from '../../lib/addon/binding';
import { dgramFd, uoaModuleLoaded } from '../../lib/udp/uoa';
import type { UdpRemoteInfo } from '../../lib/udp/receive';
import { itNeeds } from '../helpers/jest/requirements';
import { rawSend, rawSendMissing } from '../helpers/producers/raw-send';
import { uoaOption, uoaPacket } from '../helpers/vectors/udp-vectors';

const missing = rawSendMissing();
const ROOT = path.join(__dirname, '..', '..');

interface Seen {
  msg: string;
  rinfo: UdpRemoteInfo;
}

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c()));
});

function closing(socket: dgram.Socket): () => Promise<void> {
  return () => new Promise((resolve) => socket.close(() => resolve()));
}

async function bound(type: 'udp4' | 'udp6', host: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket(type);
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  open.push(closing(socket));
  return socket;
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

/** A UOA server (echo to rinfo) and the proxy's end: a socket whose port the raw packets come from. */
async function setUp(options: Record<string, unknown>, type: 'udp4' | 'udp6' = 'udp4', host = '127.0.0.1') {
  const server = await bound(type, host);
  (enable as unknown as (s: dgram.Socket, o: unknown) => void)(server, options);
  const seen: Seen[] = [];
  server.on('message', (msg, rinfo) => {
    seen.push({ msg: msg.toString(), rinfo: { ...(rinfo as UdpRemoteInfo) } });
    server.send(`reply to ${rinfo.address}:${rinfo.port} ${msg}`, rinfo.port, rinfo.address);
  });
  const proxy = await bound('udp4', '127.0.0.1');
  const replies: string[] = [];
  proxy.on('message', (m) => replies.push(m.toString()));
  const port = server.address().port;
  const sport = proxy.address().port;
  const packet = (payload: string, client?: { address: string; port: number }, src = '127.0.0.1') =>
    uoaPacket({ src, dst: '127.0.0.1', sport, dport: port, options: client ? uoaOption(client) : [], payload: Buffer.from(payload) });
  return { server, seen, proxy, replies, port, sport, packet };
}

describe('DPVS UOA in IP-option mode (raw packets on lo)', () => {
  itNeeds(missing, 'the option on the first 3 datagrams: every datagram of the flow is the client\'s, and replies go to the proxy', async () => {
    const { seen, replies, sport, packet } = await setUp({ trustProxy: '127.0.0.1', uoa: true });
    const client = { address: '203.0.113.50', port: 7000 };
    rawSend([packet('1', client), packet('2', client), packet('3', client), packet('4'), packet('5')]);
    await until(() => seen.length === 5 && replies.length === 5);
    expect(seen.map((s) => s.msg)).toEqual(['1', '2', '3', '4', '5']);
    for (const { rinfo } of seen) {
      expect(rinfo).toMatchObject({ address: '203.0.113.50', port: 7000, family: 'IPv4', source: 'uoa', size: 1, proxy: { address: '127.0.0.1', port: sport, family: 'IPv4' } });
    }
    expect(replies.sort()).toEqual(['1', '2', '3', '4', '5'].map((m) => `reply to 203.0.113.50:7000 ${m}`));
  });

  itNeeds(missing, 'an IPv6 client in a 20-byte option (NAT64)', async () => {
    const { seen, replies, packet } = await setUp({ trustProxy: '127.0.0.1', uoa: true });
    const client = { address: '2001:db8::50', port: 7001 };
    rawSend([packet('a', client), packet('b')]);
    await until(() => seen.length === 2 && replies.length === 2);
    expect(seen.map((s) => [s.msg, s.rinfo.address, s.rinfo.port, s.rinfo.family, s.rinfo.source])).toEqual([
      ['a', '2001:db8::50', 7001, 'IPv6', 'uoa'],
      ['b', '2001:db8::50', 7001, 'IPv6', 'uoa'],
    ]);
    expect(replies).toEqual(['reply to 2001:db8::50:7001 a', 'reply to 2001:db8::50:7001 b']);
  });

  itNeeds(missing, 'the empty-payload form is consumed, not delivered, and the next datagram is the client\'s', async () => {
    const { seen, packet, port } = await setUp({ trustProxy: '127.0.0.1', uoa: true });
    const before = metrics().udp.consumed;
    // Per port too (a delta: the kernel may give this port to a socket of an earlier test again).
    const portBefore = metrics().ports[String(port)]?.udp.flows.uoa ?? 0;
    rawSend([packet('', { address: '198.51.100.60', port: 8000 }), packet('after')]);
    await until(() => seen.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((s) => [s.msg, s.rinfo.address, s.rinfo.port, s.rinfo.source])).toEqual([['after', '198.51.100.60', 8000, 'uoa']]);
    expect(metrics().udp.consumed).toBe(before + 1);
    expect(metrics().ports[String(port)].udp.flows.uoa).toBe(portBefore + 1);
  });

  itNeeds(missing, 'a later UOA on the same proxy end names a new client (DPVS reused the port)', async () => {
    const { seen, packet } = await setUp({ trustProxy: '127.0.0.1', uoa: true });
    rawSend([packet('x', { address: '198.51.100.61', port: 1 }), packet('y')]);
    await until(() => seen.length === 2);
    rawSend([packet('z', { address: '198.51.100.62', port: 2 }), packet('w')]);
    await until(() => seen.length === 4);
    expect(seen.map((s) => `${s.msg} ${s.rinfo.address}`)).toEqual(['x 198.51.100.61', 'y 198.51.100.61', 'z 198.51.100.62', 'w 198.51.100.62']);
  });

  itNeeds(missing, 'from a sender not trusted the option is ignored: the datagram is the sender\'s', async () => {
    const { seen, packet, sport } = await setUp({ trustProxy: '127.0.0.1', uoa: true });
    rawSend([packet('forged', { address: '198.51.100.66', port: 6 }, '127.0.0.2')]);
    await until(() => seen.length === 1);
    expect(seen[0].rinfo).toEqual({ address: '127.0.0.2', port: sport, family: 'IPv4', size: 6, source: 'peer' });
  });

  itNeeds(missing, 'uoa: true drops a trusted datagram without one on an unknown flow; auto delivers it as the proxy\'s', async () => {
    const strict = await setUp({ trustProxy: '127.0.0.1', uoa: true });
    const auto = await setUp({ trustProxy: '127.0.0.1', uoa: 'auto' });
    const before = metrics().udp.dropped.missing;
    rawSend([strict.packet('none'), auto.packet('none')]);
    await until(() => auto.seen.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(strict.seen).toEqual([]);
    expect(metrics().udp.dropped.missing).toBe(before + 1);
    expect(auto.seen[0].rinfo).toMatchObject({ address: '127.0.0.1', source: 'peer' });
  });

  itNeeds(missing, 'a dual-stack udp6 socket on :: reads the UOA of IPv4 datagrams (peer ::ffff:127.0.0.1)', async () => {
    const { seen, packet } = await setUp({ trustProxy: '127.0.0.1', uoa: true }, 'udp6', '::');
    rawSend([packet('v', { address: '203.0.113.51', port: 7100 })]);
    await until(() => seen.length === 1);
    expect(seen[0].rinfo).toMatchObject({ address: '203.0.113.51', port: 7100, source: 'uoa', proxy: { address: '::ffff:127.0.0.1' } });
  });

  itNeeds(missing, 'enable() before bind opens the tap at bind', async () => {
    const server = dgram.createSocket('udp4');
    (enable as unknown as (s: dgram.Socket, o: unknown) => void)(server, { trustProxy: '127.0.0.1', uoa: true });
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
    open.push(closing(server));
    const seen: UdpRemoteInfo[] = [];
    server.on('message', (_m, rinfo) => seen.push(rinfo as UdpRemoteInfo));
    rawSend([uoaPacket({ src: '127.0.0.1', dst: '127.0.0.1', sport: 40123, dport: server.address().port, options: uoaOption({ address: '203.0.113.52', port: 1 }), payload: [1] })]);
    await until(() => seen.length === 1);
    expect(seen[0]).toMatchObject({ address: '203.0.113.52', source: 'uoa' });
  });
});

describe('uoa.ko', () => {
  it('is detected from /proc/modules', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uoa-'));
    try {
      fs.writeFileSync(path.join(dir, 'with'), 'nf_tables 1 0 - Live 0x0\nuoa 24576 0 - Live 0x0000000000000000 (OE)\n');
      fs.writeFileSync(path.join(dir, 'without'), 'nf_tables 1 0 - Live 0x0\nuoa_other 1 0 - Live 0x0\n');
      expect(uoaModuleLoaded(path.join(dir, 'with'))).toBe(true);
      expect(uoaModuleLoaded(path.join(dir, 'without'))).toBe(false);
      expect(uoaModuleLoaded(path.join(dir, 'missing'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  const noModule = process.platform !== 'linux' ? 'Linux only' : uoaModuleLoaded() ? 'uoa.ko is loaded here' : null;
  itNeeds(noModule, "its getsockopt without the module answers ENOPROTOOPT, not a client", async () => {
    const socket = await bound('udp4', '127.0.0.1');
    const fd = dgramFd(socket);
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(binding!.uoaModuleLookup!(fd, '127.0.0.1', 5000, socket.address().port)).toBe(-92);
  });
});

describe('uoa without CAP_NET_RAW', () => {
  const canDrop = process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
  const drop = ['setpriv', '--bounding-set', '-net_raw', '--inh-caps', '-net_raw', process.execPath];
  itNeeds(canDrop ? null : 'setpriv as root', 'uoa: true throws ERR_TOA_NO_CAP_NET_RAW; NODE_TOA_UDP=uoa:on stops the preload with one line', () => {
    const code = `const d=require('dgram');const t=require('node-toa');try{t.enable(d.createSocket('udp4'),{uoa:true,trustProxy:'127.0.0.1'});console.log('enabled')}catch(e){console.log(e.code, e.message)}`;
    const r = spawnSync(drop[0], [...drop.slice(1), '-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout).toMatch(/^ERR_TOA_NO_CAP_NET_RAW node-toa: uoa: true needs a packet tap, and this process lacks CAP_NET_RAW; grant CAP_NET_RAW, or use uoa: 'auto' to read only DPVS's uoa.ko\n$/);
    const p = spawnSync(drop[0], [...drop.slice(1), '-r', 'node-toa/preload', '-e', "console.log('app ran')"], {
      cwd: ROOT,
      env: { ...process.env, NODE_TOA_TRUST_PROXY: '127.0.0.1', NODE_TOA_ACK: 'off', NODE_TOA_UDP: 'uoa:on' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(p.status).toBe(1);
    expect(p.stdout).toBe('');
    expect(p.stderr).toMatch(/^node-toa\/preload: NODE_TOA_UDP asks for uoa:on, which needs CAP_NET_RAW for its packet tap \(uoa: true needs a packet tap, and this process lacks CAP_NET_RAW;.*\)\n$/);
  });
});
