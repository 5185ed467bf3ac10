// Tests of the e2e harness itself (toa_proxy.py, netns-agent.js, toa-net.ts).
// Independent of node-toa: the server here is a plain Node server, and what
// the proxy puts on the wire is checked through the proxy's packet ring.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as http from 'http';
import * as http2 from 'http2';
import * as net from 'net';
import { execFileSync } from 'child_process';
import { ADDR, ToaNet, describeE2E, testCert, PacketInfo } from '../helpers/netns/toa-net';

type Seen = { remoteAddress: string; remotePort: number; localAddress: string; localPort: number; url: string };

const hex16 = (n: number) => n.toString(16).padStart(4, '0');
const hexIp4 = (a: string) => Buffer.from(a.split('.').map(Number)).toString('hex');
const hexIp6 = (a: string) => Buffer.from(expand6(a)).toString("hex");
function expand6(a: string): number[] {
  const [head, tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => {
    const v = parseInt(g, 16);
    return [v >> 8, v & 255];
  });
}
const v4mapped = (a: string) => `::ffff:${a}`;
const plain = (a: string) => a.replace(/^::ffff:/, '');

describeE2E('e2e harness: full-NAT TOA proxy on a TUN in a netns', () => {
  let tn: ToaNet;
  let server: http.Server;
  let port: number;
  let connections = 0;

  beforeAll(async () => {
    const t0 = Date.now();
    tn = await ToaNet.create();
    const createMs = Date.now() - t0;
    // eslint-disable-next-line no-console
    console.log(`ToaNet.create: ${createMs} ms (${tn.ns})`);
    expect(createMs).toBeLessThan(5000); // ~250 ms idle; generous for loaded CI machines
    server = http.createServer((req, res) => {
      const s = req.socket;
      const body = JSON.stringify({
        remoteAddress: s.remoteAddress,
        remotePort: s.remotePort,
        localAddress: s.localAddress,
        localPort: s.localPort,
        url: req.url,
      });
      res.setHeader('content-type', 'application/json');
      res.end(body);
    });
    server.on('connection', () => connections++);
    port = await tn.serve(server);
  });

  afterAll(async () => {
    await tn?.close();
  });

  beforeEach(async () => {
    await tn.clearRules();
  });

  async function ask(vip: string, localAddress: string, count = 1) {
    const r = await tn.request({ protocol: 'http', vip, port, localAddress, path: '/x', count });
    const seen = r.responses.map((x) => JSON.parse(x.body) as Seen);
    return { r, seen };
  }

  // The c2s packets the proxy forwarded for the connection the server saw.
  async function forwarded(seen: Seen): Promise<PacketInfo[]> {
    const pk = await tn.packets({ dir: 'c2s' });
    return pk.filter((p) => p.sport === seen.remotePort && p.dport === port && p.src === plain(seen.remoteAddress));
  }

  test('the server listens inside the namespace but is owned by this process', async () => {
    const addr = server.address() as net.AddressInfo;
    expect(addr.port).toBe(port);
    expect(addr.address).toBe('::');
    // Nothing listens on that port in the root namespace.
    const ss = execFileSync('ss', ['-Hltn', `sport = :${port}`]).toString();
    expect(ss.trim()).toBe('');
    const inNs = (await tn.exec('ss', ['-Hltn', `sport = :${port}`])).stdout;
    expect(inNs).toContain(`:${port}`);
  });

  test('vip4: full NAT over IPv4 (server sees LIP4 and another port)', async () => {
    const { r, seen } = await ask(ADDR.vip4, ADDR.clients4[0]);
    expect(r.responses[0].status).toBe(200);
    expect(r.localAddress).toBe(ADDR.clients4[0]);
    expect(seen[0].remoteAddress).toBe(v4mapped(ADDR.lip4));
    expect(seen[0].localAddress).toBe(v4mapped(ADDR.rip4));
    expect(seen[0].remotePort).not.toBe(r.localPort);
    expect(seen[0].remotePort).toBeGreaterThanOrEqual(20000);
    expect(seen[0].remotePort).toBeLessThanOrEqual(60000);
    const conns = await tn.conns();
    expect(conns).toContainEqual(
      expect.objectContaining({ client: ADDR.clients4[0], cport: r.localPort, lport: seen[0].remotePort, lip: ADDR.lip4, rip: ADDR.rip4 }),
    );
  });

  test('vip4to6: IPv4 client, proxy reaches the backend over IPv6', async () => {
    const { r, seen } = await ask(ADDR.vip4to6, ADDR.clients4[1]);
    expect(r.localAddress).toBe(ADDR.clients4[1]);
    expect(seen[0].remoteAddress).toBe(ADDR.lip6);
    expect(seen[0].localAddress).toBe(ADDR.rip6);
  });

  test('vip6 and vip6to4 (NAT64)', async () => {
    const a = await ask(ADDR.vip6, ADDR.clients6[0]);
    expect(a.r.localAddress).toBe(ADDR.clients6[0]);
    expect(a.seen[0].remoteAddress).toBe(ADDR.lip6);
    expect(a.seen[0].localAddress).toBe(ADDR.rip6);
    const b = await ask(ADDR.vip6to4, ADDR.clients6[1]);
    expect(b.r.localAddress).toBe(ADDR.clients6[1]);
    expect(b.seen[0].remoteAddress).toBe(v4mapped(ADDR.lip4));
    expect(b.seen[0].localAddress).toBe(v4mapped(ADDR.rip4));
  });

  test('3 keep-alive requests travel on one connection', async () => {
    const before = connections;
    const { r, seen } = await ask(ADDR.vip4, ADDR.clients4[2], 3);
    expect(r.responses).toHaveLength(3);
    expect(connections - before).toBe(1);
    expect(new Set(seen.map((s) => s.remotePort)).size).toBe(1);
    expect(new Set(r.responses.map((x) => x.localPort)).size).toBe(1);
    expect(r.responses[0].localPort).toBe(r.localPort);
  });

  test("where 'syn': the forwarded SYN carries kind 200 with the client's port and address", async () => {
    const c = ADDR.clients4[3];
    await tn.rule(c, { where: 'syn' });
    const s0 = await tn.stats();
    const { r, seen } = await ask(ADDR.vip4, c);
    const s1 = await tn.stats();
    expect(s1.toaInserted - s0.toaInserted).toBe(1);
    const toa = `c808${hex16(r.localPort)}${hexIp4(c)}`;
    const pk = await forwarded(seen[0]);
    const syn = pk.find((p) => p.flags === 'S');
    expect(syn).toBeDefined();
    expect(syn!.optionsHex!.endsWith(toa)).toBe(true);
    expect(syn!.options).toContainEqual({ kind: 200, len: 8, hex: toa });
    // The other packets of the connection carry none.
    for (const p of pk.filter((x) => x.flags !== 'S')) expect(p.optionsHex).not.toContain('c808');
    for (const p of pk) expect(p.tcpChecksumOk).toBe(true);
  });

  test("where 'ack': not in the SYN, in the pure handshake ACK only", async () => {
    const c = ADDR.clients4[4];
    await tn.rule(c, { where: 'ack' });
    const s0 = await tn.stats();
    const { r, seen } = await ask(ADDR.vip4, c);
    const s1 = await tn.stats();
    expect(s1.toaInserted - s0.toaInserted).toBe(1);
    const toa = `c808${hex16(r.localPort)}${hexIp4(c)}`;
    const pk = await forwarded(seen[0]);
    expect(pk[0].flags).toBe('S');
    expect(pk[0].optionsHex).not.toContain(toa);
    expect(pk[1].flags).toBe('A');
    expect(pk[1].payloadLen).toBe(0);
    expect(pk[1].options).toContainEqual({ kind: 200, len: 8, hex: toa });
    const data = pk.find((p) => (p.payloadLen ?? 0) > 0)!;
    expect(data.optionsHex).not.toContain(toa);
  });

  test("where 'data': only the first data packet, the handshake ACK carries none", async () => {
    const c = ADDR.clients4[5];
    await tn.rule(c, { where: 'data' });
    const s0 = await tn.stats();
    const { r, seen } = await ask(ADDR.vip4, c, 2);
    const s1 = await tn.stats();
    expect(s1.toaInserted - s0.toaInserted).toBe(1);
    const toa = `c808${hex16(r.localPort)}${hexIp4(c)}`;
    const pk = await forwarded(seen[0]);
    const withToa = pk.filter((p) => p.optionsHex!.includes(toa));
    expect(withToa).toHaveLength(1);
    expect(withToa[0].payloadLen).toBeGreaterThan(0);
    expect(pk.indexOf(withToa[0])).toBe(pk.findIndex((p) => (p.payloadLen ?? 0) > 0));
    const hsAck = pk[1];
    expect(hsAck.flags).toBe('A');
    expect(hsAck.payloadLen).toBe(0);
    expect(hsAck.optionsHex).not.toContain('c808');
  });

  test("where 'syn+ack' and 'all'", async () => {
    await tn.rule(ADDR.clients4[6], { where: 'syn+ack' });
    const a = await ask(ADDR.vip4, ADDR.clients4[6]);
    const pa = await forwarded(a.seen[0]);
    const toaA = `c808${hex16(a.r.localPort)}${hexIp4(ADDR.clients4[6])}`;
    expect(pa.filter((p) => p.optionsHex!.includes(toaA)).map((p) => p.flags)).toEqual(['S', 'A']);

    await tn.rule(ADDR.clients4[7], { where: 'all' });
    const b = await ask(ADDR.vip4, ADDR.clients4[7]);
    const pb = await forwarded(b.seen[0]);
    const toaB = `c808${hex16(b.r.localPort)}${hexIp4(ADDR.clients4[7])}`;
    expect(pb.length).toBeGreaterThanOrEqual(3);
    for (const p of pb) expect(p.optionsHex).toContain(toaB);
  });

  test('IPv6 client default: kind 254 len 20; NAT64 keeps the IPv6 option on an IPv4 packet', async () => {
    const c = ADDR.clients6[2];
    await tn.rule(c, { where: 'syn' });
    const { r, seen } = await ask(ADDR.vip6to4, c);
    const toa = `fe14${hex16(r.localPort)}${hexIp6(c)}`;
    const syn = (await forwarded(seen[0])).find((p) => p.flags === 'S')!;
    expect(syn.family).toBe(4);
    expect(syn.options).toContainEqual({ kind: 254, len: 20, hex: toa });
    expect(syn.tcpChecksumOk).toBe(true);
  });

  test('explicit kind/format/address/port, ali and vtoa layouts', async () => {
    await tn.rule(ADDR.clients4[8], { where: 'syn', kind: 254, format: 'v4', address: '203.0.113.77', port: 4242 });
    let q = await ask(ADDR.vip4, ADDR.clients4[8]);
    let syn = (await forwarded(q.seen[0])).find((p) => p.flags === 'S')!;
    expect(syn.options).toContainEqual({ kind: 254, len: 8, hex: `fe08${hex16(4242)}${hexIp4('203.0.113.77')}` });

    await tn.rule(ADDR.clients4[8], { where: 'syn', format: 'ali' });
    q = await ask(ADDR.vip4, ADDR.clients4[8]);
    syn = (await forwarded(q.seen[0])).find((p) => p.flags === 'S')!;
    expect(syn.options).toContainEqual({ kind: 28, len: 7, hex: `1c0701${hexIp4(ADDR.clients4[8])}` });

    await tn.rule(ADDR.clients4[8], { where: 'syn', format: 'vtoa', vid: 7 });
    q = await ask(ADDR.vip4, ADDR.clients4[8]);
    syn = (await forwarded(q.seen[0])).find((p) => p.flags === 'S')!;
    const vt = `fc14${hex16(q.r.localPort)}${hexIp4(ADDR.clients4[8])}00000007${hexIp4(ADDR.vip4)}${hex16(port)}0000`;
    expect(syn.options).toContainEqual({ kind: 252, len: 20, hex: vt });

    // Mistakes in a rule are refused, not ignored.
    await expect(tn.rule(ADDR.clients4[8], { adress: '192.0.2.1' } as never)).rejects.toThrow(/unknown rule field/);
    await expect(tn.rule(ADDR.clients4[8], { where: 'synack' })).rejects.toThrow(/bad where/);
    await expect(tn.rule(ADDR.clients4[8], { format: 'v4', address: ADDR.client6 })).rejects.toThrow(/IPv4/);
  });

  test('option space: timestamps are dropped to make room, too big means no TOA', async () => {
    const c = ADDR.clients4[0];
    // 28 bytes: kind 253 (experimental, ignored by the kernel), len 28.
    const raw28 = `fd1c${'ab'.repeat(26)}`;
    await tn.rule(c, { where: 'syn', raw: raw28 });
    let s0 = await tn.stats();
    let q = await ask(ADDR.vip4, c);
    let s1 = await tn.stats();
    expect(s1.tsDropped - (s0.tsDropped ?? 0)).toBe(1);
    let syn = (await forwarded(q.seen[0])).find((p) => p.flags === 'S')!;
    expect(syn.options!.map((o) => o.kind)).not.toContain(8);
    expect(syn.optionsHex!.endsWith(raw28)).toBe(true);
    expect(syn.optionsHex!.length).toBe(80);

    const raw40 = `fd28${'cd'.repeat(38)}`;
    await tn.rule(c, { where: 'syn', raw: raw40, alone: false });
    s0 = await tn.stats();
    q = await ask(ADDR.vip4, c);
    s1 = await tn.stats();
    expect(s1.toaTooBig - s0.toaTooBig).toBe(1);
    syn = (await forwarded(q.seen[0])).find((p) => p.flags === 'S')!;
    expect(syn.optionsHex).not.toContain('fd28');

    // A 40-byte option leaves room for nothing else: by default it replaces the SYN's options.
    await tn.rule(c, { where: 'syn', raw: raw40 });
    s0 = await tn.stats();
    q = await ask(ADDR.vip4, c);
    s1 = await tn.stats();
    expect((s1.optionsReplaced ?? 0) - (s0.optionsReplaced ?? 0)).toBe(1);
    expect(s1.toaTooBig - s0.toaTooBig).toBe(0);
    syn = (await forwarded(q.seen[0])).find((p) => p.flags === 'S')!;
    expect(syn.optionsHex).toBe(raw40);

    // raw bytes are the last options; NOPs in front pad to a multiple of 4
    await tn.rule(c, { where: 'syn', raw: '0000fe' });
    q = await ask(ADDR.vip4, c);
    syn = (await forwarded(q.seen[0])).find((p) => p.flags === 'S')!;
    expect(syn.optionsHex!.endsWith('010000fe')).toBe(true);
  });

  test('lip override: an "untrusted" proxy source address', async () => {
    await tn.rule(ADDR.clients4[1], { where: 'syn', lip: ADDR.untrusted4 });
    await tn.rule(ADDR.clients6[3], { where: 'syn', lip: ADDR.untrusted6 });
    const a = await ask(ADDR.vip4, ADDR.clients4[1]);
    expect(a.seen[0].remoteAddress).toBe(v4mapped(ADDR.untrusted4));
    const b = await ask(ADDR.vip6, ADDR.clients6[3]);
    expect(b.seen[0].remoteAddress).toBe(ADDR.untrusted6);
  });

  test('the SYN-ACK MSS is clamped so option growth never exceeds the MTU; large bodies pass', async () => {
    await tn.rule(ADDR.clients4[2], { where: 'all' });
    const big = 'y'.repeat(200000);
    const echo = http.createServer((req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => res.end(`${n}:${'z'.repeat(100000)}`));
    });
    const p = await tn.serve(echo);
    const r = await tn.request({ protocol: 'http', vip: ADDR.vip4to6, port: p, localAddress: ADDR.clients4[2], body: big });
    expect(r.responses[0].body.split(':')[0]).toBe('200000');
    expect(r.responses[0].body.length).toBe(7 + 100000);
    const pk = await tn.packets({ dir: 's2c' });
    const synack = pk.filter((x) => x.flags === 'SA' && x.sport === p).pop()!;
    const mss = synack.options!.find((o) => o.kind === 2)!;
    expect(parseInt(mss.hex.slice(4), 16)).toBeLessThanOrEqual(1400);
    const c2s = await tn.packets({ dir: 'c2s' });
    for (const x of c2s) expect(x.hex.length / 2).toBeLessThanOrEqual(1500);
    await new Promise((res) => echo.close(res));
  });

  test('other clients: tcp, https, h2, h2c; listenHandle gives a listening net.Server', async () => {
    const plainSrv = await tn.listenHandle();
    plainSrv.on('connection', (s) => {
      s.once('data', (d) => s.end(`${s.remoteAddress} ${d}`));
    });
    const tcpPort = (plainSrv.address() as net.AddressInfo).port;
    const t = await tn.request({ protocol: 'tcp', vip: ADDR.vip4, port: tcpPort, body: 'hello\n' });
    expect(t.responses[0].body).toBe(`${v4mapped(ADDR.lip4)} hello\n`);
    await new Promise((res) => plainSrv.close(res));

    const { key, cert } = testCert();
    const h2 = http2.createSecureServer({ key, cert, allowHTTP1: true }, (req, res) => {
      res.end(`${req.httpVersion} ${req.socket.remoteAddress}`);
    });
    const h2Port = await tn.serve(h2);
    const a = await tn.request({ protocol: 'h2', vip: ADDR.vip6, port: h2Port, count: 2, ca: cert });
    expect(a.responses.map((x) => x.body)).toEqual([`2.0 ${ADDR.lip6}`, `2.0 ${ADDR.lip6}`]);
    const b = await tn.request({ protocol: 'https', vip: ADDR.vip4, port: h2Port, ca: cert });
    expect(b.responses[0].body).toBe(`1.1 ${v4mapped(ADDR.lip4)}`);
    await new Promise((res) => h2.close(res));

    const h2c = http2.createServer((req, res) => res.end('h2c ok'));
    const h2cPort = await tn.serve(h2c);
    const c = await tn.request({ protocol: 'h2c', vip: ADDR.vip4to6, port: h2cPort });
    expect(c.responses[0]).toMatchObject({ status: 200, body: 'h2c ok' });
    await new Promise((res) => h2c.close(res));
  });

  test('request errors are reported and bounded', async () => {
    // Nobody listens on this port: the RIP answers RST, the proxy forwards it.
    await expect(tn.request({ protocol: 'http', vip: ADDR.vip4, port: 9, timeoutMs: 2000 })).rejects.toThrow(/ECONNREFUSED/);
    // A server that never answers: the request ends at timeoutMs.
    const mute = net.createServer((s) => s.resume()); // reads, never answers
    const p = await tn.serve(mute);
    const t0 = Date.now();
    await expect(tn.request({ protocol: 'http', vip: ADDR.vip4, port: p, timeoutMs: 500 })).rejects.toThrow(/timeout/);
    expect(Date.now() - t0).toBeLessThan(2500);
    await new Promise((res) => mute.close(res));
  });

  test('flood, craft and raw inject packets that reach the server stack', async () => {
    const s0 = await tn.stats();
    const f = await tn.flood({ count: 300, port, where: 'ack', rule: { kind: 254 } });
    expect(f.sent).toBe(300);
    const inj = await tn.packets({ dir: 'inj', limit: 300 });
    expect(inj).toHaveLength(300);
    for (const p of inj) {
      expect(p.flags).toBe('A');
      expect(p.dst).toBe(ADDR.rip4);
      expect(p.dport).toBe(port);
      expect(p.options![0]).toMatchObject({ kind: 254, len: 8 });
      expect(p.tcpChecksumOk).toBe(true);
    }
    // The kernel answers each stray ACK with a RST, which the proxy cannot match.
    await new Promise((res) => setTimeout(res, 200));
    const s1 = await tn.stats();
    expect(s1.unmatched - (s0.unmatched ?? 0)).toBeGreaterThanOrEqual(250);

    const hex = await tn.craft({ src: ADDR.lip4, dst: ADDR.rip4, sport: 33333, dport: port, flags: 'S', optionsHex: 'c808aaaac0000201' });
    expect(hex.slice(0, 2)).toBe('45');
    await tn.raw(hex);
    await new Promise((res) => setTimeout(res, 100));
    // The server answered the crafted SYN with a SYN-ACK to the LIP (unmatched, dropped by the proxy).
    const s2 = await tn.stats();
    expect(s2.unmatched - s1.unmatched).toBeGreaterThanOrEqual(2);
    // Still serving normally.
    const { r } = await ask(ADDR.vip4, ADDR.clients4[0]);
    expect(r.responses[0].status).toBe(200);
  });

  test('200 sequential connections complete quickly', async () => {
    const before = connections;
    const t0 = Date.now();
    const r = await tn.request({ protocol: 'http', vip: ADDR.vip4, port, connections: 200, keepAlive: false, timeoutMs: 20000 });
    const ms = Date.now() - t0;
    // eslint-disable-next-line no-console
    console.log(`200 sequential connections through the proxy: ${ms} ms`);
    expect(r.connections).toHaveLength(200);
    expect(connections - before).toBe(200);
    const ports = new Set(r.connections!.map((c) => JSON.parse(c.responses[0].body).remotePort));
    expect(ports.size).toBe(200);
    expect(ms).toBeLessThan(10000);
  });

  test('IPv4 headers with options (IHL > 5) from the kernel are handled and rebuilt', async () => {
    const echo = net.createServer((s) => {
      s.once('data', (d) => s.end(`${s.remoteAddress} ${d}`));
    });
    const p = await tn.serve(echo);
    await tn.rule(ADDR.clients4[8], { where: 'syn' });
    await tn.clearPackets();
    // A Python client in the namespace sets IP_OPTIONS (NOP NOP NOP EOL): its packets have IHL 6.
    const code = [
      'import socket, sys',
      's = socket.socket()',
      's.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, bytes([1, 1, 1, 0]))',
      `s.bind(('${ADDR.clients4[8]}', 0))`,
      's.settimeout(5)',
      `s.connect(('${ADDR.vip4}', ${p}))`,
      "s.sendall(b'opt\\n')",
      "buf = b''",
      'while True:',
      '    d = s.recv(100)',
      '    if not d: break',
      '    buf += d',
      'sys.stdout.write(buf.decode())',
    ].join('\n');
    const py = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const out = await tn.exec(py, ['-c', code]);
    expect(out.stdout).toBe(`${v4mapped(ADDR.lip4)} opt\n`);
    const inbound = (await tn.packets({ dir: 'in' })).filter((x) => x.dport === p && x.src === ADDR.clients4[8]);
    expect(inbound.length).toBeGreaterThanOrEqual(3);
    for (const x of inbound) expect(x.ihl).toBe(24);
    const fwd = (await tn.packets({ dir: 'c2s' })).filter((x) => x.dport === p);
    expect(fwd.length).toBe(inbound.length);
    for (const x of fwd) {
      expect(x.ihl).toBe(20);
      expect(x.tcpChecksumOk).toBe(true);
    }
    expect(fwd[0].options!.some((o) => o.kind === 200 && o.len === 8)).toBe(true);
    await new Promise((res) => echo.close(res));
  });

  test('listenWith: a plain-JS listen helper runs in the namespace, its socket is handed over', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'toa-lw-'));
    const file = path.join(dir, 'listen-helper.js');
    fs.writeFileSync(
      file,
      "const net = require('net');\n" +
        'exports.listen = (opts) => new Promise((resolve, reject) => {\n' +
        '  const s = net.createServer();\n' +
        "  s.on('error', reject);\n" +
        '  s.listen(opts, () => resolve(s));\n' +
        '});\n',
    );
    try {
      const srv = await tn.listenWith(file, 'listen', [{ host: '::', port: 0 }]);
      expect(srv.listening).toBe(true);
      srv.on('connection', (s) => {
        s.resume();
        s.end(`lw ${s.remoteAddress}\n`);
      });
      const p = (srv.address() as net.AddressInfo).port;
      const r = await tn.request({ protocol: 'tcp', vip: ADDR.vip6, port: p });
      expect(r.responses[0].body).toBe(`lw ${ADDR.lip6}\n`);
      await expect(tn.listenWith(file, 'nope', [])).rejects.toThrow(/not a function/);
      await new Promise((res) => srv.close(res));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('sysctl and exec run inside the namespace', async () => {
    await tn.sysctl('net.ipv4.tcp_syncookies', 2);
    const out = await tn.exec('sysctl', ['-n', 'net.ipv4.tcp_syncookies']);
    expect(out.stdout.trim()).toBe('2');
    await tn.sysctl('net.ipv4.tcp_syncookies', 1);
  });
});

describeE2E('e2e harness: lifecycle', () => {
  test('close() leaves no namespace, process or TUN behind and is idempotent', async () => {
    const a = await ToaNet.create();
    const b = await ToaNet.create();
    expect(a.ns).not.toBe(b.ns);
    const { proxy, agent } = a.pids;
    expect(proxy).toBeGreaterThan(0);
    expect(agent).toBeGreaterThan(0);
    const srv = http.createServer((_req, res) => res.end('ok'));
    const p = await a.serve(srv);
    await a.request({ vip: ADDR.vip4, port: p });
    await Promise.all([a.close(), a.close()]);
    await a.close();
    expect(fs.existsSync(`/run/netns/${a.ns}`)).toBe(false);
    expect(srv.listening).toBe(false);
    for (const pid of [proxy!, agent!]) expect(() => process.kill(pid, 0)).toThrow();
    await expect(a.stats()).rejects.toThrow(/closed/);
    expect(fs.existsSync(`/run/netns/${b.ns}`)).toBe(true);
    await b.close();
    expect(fs.existsSync(`/run/netns/${b.ns}`)).toBe(false);
  });

  test('a namespace left open by a test is removed when the describeE2E block ends', async () => {
    const c = await ToaNet.create();
    expect(fs.existsSync(`/run/netns/${c.ns}`)).toBe(true);
    leftOpen = c.ns;
  });

  test('(previous test) namespace still present until block end', () => {
    expect(fs.existsSync(`/run/netns/${leftOpen}`)).toBe(true);
  });
});

let leftOpen = '';

describeE2E('e2e harness: after the lifecycle block', () => {
  test('the block-end cleanup removed the namespace left open', () => {
    expect(leftOpen).not.toBe('');
    expect(fs.existsSync(`/run/netns/${leftOpen}`)).toBe(false);
  });
});
