// toa.listen() on loopback: TCP_SAVE_SYN is on before listen(2) (a client connecting the instant
// listen returns still has its SYN saved, where server.listen() + enable() loses it), options,
// errors that name host:port, SO_REUSEPORT, IPv6-only, and the fallback without the addon.
import { spawnSync } from 'node:child_process';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as path from 'node:path';
import { binding } from '../../lib/addon/binding';
import { compileKinds } from '../../lib/core/kinds';
import { enable, isEnabled, listen, realRemoteAddress, stats } from '../../lib/index';
import { close } from '../helpers/sockets/pair';
import { ADDR, ToaNet, describeE2E, useToaNet } from '../helpers/netns/toa-net';

const onLinux = process.platform === 'linux' ? describe : describe.skip;
const ROOT = path.join(__dirname, '..', '..');

function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

/** Connects from another process and returns when the kernel has completed the handshake. */
function connectFromChild(port: number, host = '127.0.0.1'): void {
  const script = `const s=require('net').connect(${port},'${host}',()=>{s.end();setTimeout(()=>process.exit(0),50)});s.on('error',e=>{console.error(e.message);process.exit(1)})`;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 5000, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`client failed: ${r.stderr}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Whether 127.0.0.1:port can be listened on (then it is closed again at once). */
function ipv4Free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** The first connection's socket and whether the kernel had saved its SYN. */
function firstConnection(server: net.Server): Promise<{ socket: net.Socket; syn: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connection within 5 s')), 5000);
    timer.unref();
    server.once('connection', (socket: net.Socket) => {
      clearTimeout(timer);
      resolve({ socket, syn: binding!.testing.lookup(fdOf(socket), compileKinds(undefined), false).syn });
    });
  });
}

/** Makes `server.listen` connect a client the moment Node's listen(2) has returned. */
function connectRightAfterListen(server: net.Server, port: number): void {
  const original = server.listen.bind(server) as (...args: unknown[]) => net.Server;
  (server as unknown as { listen: (...args: unknown[]) => net.Server }).listen = (...args: unknown[]) => {
    const result = original(...args);
    connectFromChild(port);
    return result;
  };
}

onLinux('toa.listen on loopback', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => (s.listening ? close(s) : Promise.resolve())));
  });
  const track = <T extends net.Server>(s: T): T => {
    servers.push(s);
    return s;
  };

  it('resolves with the server, listening, with TCP_SAVE_SYN on its socket', async () => {
    const server = track(http.createServer());
    const returned = await listen(server, { port: 0, host: '127.0.0.1' });
    expect(returned).toBe(server);
    expect(server.listening).toBe(true);
    expect(server.address()).toEqual({ address: '127.0.0.1', family: 'IPv4', port: expect.any(Number) });
    expect(isEnabled(server)).toBe(true);
  });

  it('ack: opens the ACK tap on the server\'s port once it listens', async () => {
    const server = track(http.createServer());
    await listen(server, { port: 0, host: '127.0.0.1', ack: { capacity: 128 } });
    const { port } = server.address() as net.AddressInfo;
    expect(stats().taps).toContainEqual(expect.objectContaining({ port, capacity: 128 }));
    await close(server);
    expect(stats().taps.some((t) => t.port === port)).toBe(false);
  });

  it('saves the SYN of a client that connects the instant listen returns', async () => {
    const port = await freePort();
    const server = track(net.createServer());
    connectRightAfterListen(server, port);
    const first = firstConnection(server);
    await listen(server, { port, host: '127.0.0.1' });
    const { socket, syn } = await first;
    expect(syn).toBe(true);
    socket.destroy();
  });

  it('(control) server.listen() + enable() misses that same client: enable() comes too late for it', async () => {
    const port = await freePort();
    const server = track(net.createServer());
    connectRightAfterListen(server, port);
    enable(server);
    const first = firstConnection(server);
    // No host: Node listens synchronously (a host would mean a DNS lookup first).
    await new Promise<void>((resolve) => server.listen(port, resolve));
    expect(isEnabled(server)).toBe(true);
    const { socket, syn } = await first;
    expect(syn).toBe(false);
    socket.destroy();
  });

  it('serves HTTP and realRemoteAddress() reads the saved SYN (the peer, on loopback)', async () => {
    const server = track(
      http.createServer((req, res) => {
        res.setHeader('connection', 'close');
        res.end(JSON.stringify(realRemoteAddress(req.socket)));
      }),
    );
    await listen(server, { port: 0, host: '127.0.0.1' });
    const { port } = server.address() as net.AddressInfo;
    const body = await new Promise<{ answer: string; localPort: number }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, agent: false }, (res) => {
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ answer: data, localPort: req.socket!.localPort! }));
      });
      req.on('error', reject);
    });
    expect(JSON.parse(body.answer)).toEqual({ address: '127.0.0.1', port: body.localPort, family: 'IPv4', source: 'peer' });
  });

  it('listens on every address, IPv6 and IPv4, when no host is given', async () => {
    const server = track(net.createServer((s) => s.end('ok')));
    await listen(server, { port: 0 });
    expect(server.address()).toMatchObject({ address: '::', family: 'IPv6' });
    const { port } = server.address() as net.AddressInfo;
    for (const host of ['127.0.0.1', '::1']) {
      const got = await new Promise<string>((resolve, reject) => {
        let data = '';
        net.connect(port, host).on('data', (d) => (data += d)).on('end', () => resolve(data)).on('error', reject);
      });
      expect(got).toBe('ok');
    }
  });

  it('resolves a host name', async () => {
    const server = track(net.createServer());
    await listen(server, { port: 0, host: 'localhost' });
    expect(['127.0.0.1', '::1']).toContain((server.address() as net.AddressInfo).address);
  });

  it('accepts the port as a string of digits, as process.env.PORT is', async () => {
    const port = await freePort();
    const server = track(net.createServer());
    await listen(server, { port: String(port), host: '127.0.0.1' });
    expect((server.address() as net.AddressInfo).port).toBe(port);
  });

  it('ipv6Only: an IPv4 client is refused', async () => {
    // Port 0 is free for IPv6 only: another process may hold the same number over IPv4, and then
    // the connect below would reach it. Take another port until the IPv4 one is free too.
    let port = 0;
    for (let attempt = 0; attempt < 10 && port === 0; attempt++) {
      const server = track(net.createServer());
      await listen(server, { port: 0, host: '::', ipv6Only: true });
      const candidate = (server.address() as net.AddressInfo).port;
      if (await ipv4Free(candidate)) port = candidate;
      else await close(server);
    }
    expect(port).not.toBe(0);
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => {
      net.connect(port, '127.0.0.1').on('error', resolve).on('connect', () => resolve(new Error('connected')));
    });
    expect(error.code).toBe('ECONNREFUSED');
  });

  it('EADDRINUSE rejects with an error naming host:port, shaped like Node\'s', async () => {
    const first = track(net.createServer());
    await listen(first, { port: 0, host: '127.0.0.1' });
    const { port } = first.address() as net.AddressInfo;
    const second = track(net.createServer());
    await expect(listen(second, { port, host: '127.0.0.1' })).rejects.toMatchObject({
      message: `node-toa listen: 127.0.0.1:${port} is already in use (to share a port between processes, pass reusePort: true in each) (EADDRINUSE)`,
      code: 'EADDRINUSE',
      syscall: 'listen',
      address: '127.0.0.1',
      port,
    });
    expect(second.listening).toBe(false);
  });

  it('EADDRNOTAVAIL names the address that is not this machine\'s', async () => {
    await expect(listen(net.createServer(), { port: 0, host: '192.0.2.1' })).rejects.toMatchObject({
      message: 'node-toa listen: cannot listen on 192.0.2.1:0: 192.0.2.1 is not an address of this machine (EADDRNOTAVAIL)',
      code: 'EADDRNOTAVAIL',
    });
    await expect(listen(net.createServer(), { port: 0, host: '2001:db8::1' })).rejects.toThrow(
      'cannot listen on [2001:db8::1]:0',
    );
  });

  it('reusePort: two servers share a port and both take connections', async () => {
    const a = track(net.createServer((s) => s.end('a')));
    await listen(a, { port: 0, host: '127.0.0.1', reusePort: true });
    const { port } = a.address() as net.AddressInfo;
    const b = track(net.createServer((s) => s.end('b')));
    await listen(b, { port, host: '127.0.0.1', reusePort: true });
    const seen = new Set<string>();
    // The kernel hashes the 4-tuple: many source ports reach both, bounded in count.
    for (let i = 0; i < 64 && seen.size < 2; i++) {
      seen.add(
        await new Promise<string>((resolve, reject) => {
          let data = '';
          net.connect(port, '127.0.0.1').on('data', (d) => (data += d)).on('end', () => resolve(data)).on('error', reject);
        }),
      );
    }
    expect([...seen].sort()).toEqual(['a', 'b']);
  });

  it('close() releases the port: it can be listened on again', async () => {
    const a = net.createServer();
    await listen(a, { port: 0, host: '127.0.0.1' });
    const { port } = a.address() as net.AddressInfo;
    await close(a);
    const b = track(net.createServer());
    await listen(b, { port, host: '127.0.0.1' });
    expect((b.address() as net.AddressInfo).port).toBe(port);
  });

  it('starts an HTTP/2 server too', async () => {
    const server = track(http2.createServer());
    await listen(server, { port: 0, host: '::1' });
    expect(isEnabled(server)).toBe(true);
  });

  it('rejects a server that already listens, and leaks no socket', async () => {
    const server = track(net.createServer());
    await listen(server, { port: 0, host: '127.0.0.1' });
    await expect(listen(server, { port: 0, host: '127.0.0.1' })).rejects.toMatchObject({
      code: 'ERR_SERVER_ALREADY_LISTEN',
    });
  });
});

describe('toa.listen options', () => {
  const server = net.createServer();
  it.each([
    [undefined, TypeError, 'listen(server, options): options must be an object such as { port: 3000 }, got undefined'],
    [null, TypeError, 'listen(server, options): options must be an object such as { port: 3000 }, got null'],
    [{}, TypeError, 'listen(server, options): options.port is required (0 for any free port)'],
    [{ port: 80, hots: 'x' }, TypeError, "listen(server, options): unknown option 'hots' (known: port, host, backlog, reusePort, ipv6Only, ack, proxyProtocol, trustProxy)"],
    [{ port: 1.5 }, TypeError, 'listen(server, options): options.port must be an integer from 0 to 65535, got 1.5'],
    [{ port: 'http' }, TypeError, "listen(server, options): options.port must be an integer from 0 to 65535, got 'http'"],
    [{ port: 65536 }, RangeError, 'listen(server, options): options.port must be from 0 to 65535, got 65536'],
    [{ port: -1 }, RangeError, 'listen(server, options): options.port must be from 0 to 65535, got -1'],
    [{ port: 0, host: '' }, TypeError, "listen(server, options): options.host must be a non-empty string, got ''"],
    [{ port: 0, host: 127 }, TypeError, 'listen(server, options): options.host must be a non-empty string, got 127'],
    [{ port: 0, backlog: '5' }, TypeError, "listen(server, options): options.backlog must be an integer, got '5'"],
    [{ port: 0, backlog: 0 }, RangeError, 'listen(server, options): options.backlog must be from 1 to 2147483647, got 0'],
    [{ port: 0, reusePort: 'yes' }, TypeError, "listen(server, options): options.reusePort must be a boolean, got 'yes'"],
    [{ port: 0, ipv6Only: 1 }, TypeError, 'listen(server, options): options.ipv6Only must be a boolean, got 1'],
    // listen's own name, not enable's: the tap option is checked where the user passed it.
    [
      { port: 0, ack: 'yes' },
      TypeError,
      "listen(server, options): options.ack must be a boolean or an object such as { capacity: 65536, maxAge: 30000 }, got 'yes'",
    ],
    [{ port: 0, ack: { size: 1 } }, TypeError, "listen(server, options): unknown option 'ack.size' (known: capacity, maxAge, source)"],
    [{ port: 0, ack: { maxAge: 5 } }, RangeError, 'listen(server, options): options.ack.maxAge must be from 100 to 3600000, got 5'],
  ])('%p throws %p, synchronously', (options, type, message) => {
    expect(() => listen(server, options as never)).toThrow(type);
    expect(() => listen(server, options as never)).toThrow(message);
    expect(server.listening).toBe(false);
  });

  it('throws a TypeError for something that is not a server', () => {
    expect(() => listen({} as net.Server, { port: 0 })).toThrow(
      new TypeError('listen(server, options): server must be a net.Server (or an http, https, http2 or tls server)'),
    );
  });
});

describe('toa.listen without the addon', () => {
  it('listens as server.listen() would and says once why TOA cannot be read', () => {
    // A process where the addon cannot load (NODE_TOA_ADDON points nowhere).
    const script = `
      const toa = require('node-toa');
      const net = require('net');
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.code));
      toa.listen(net.createServer(), { port: 0, host: '127.0.0.1' }).then((s) => {
        const out = { support: toa.support().addon, listening: s.listening, address: s.address().address, enabled: toa.isEnabled(s) };
        s.close(() => setImmediate(() => { console.log(JSON.stringify({ ...out, warnings })); }));
      }, (e) => { console.log(JSON.stringify({ error: e.message })); });`;
    const r = spawnSync(process.execPath, ['-e', script], {
      cwd: ROOT,
      env: { ...process.env, NODE_TOA_ADDON: path.join(ROOT, 'no-such-addon.node') },
      encoding: 'utf8',
      timeout: 10000,
    });
    expect(r.stderr).not.toMatch(/Error/);
    expect(JSON.parse(r.stdout)).toEqual({
      support: false,
      listening: true,
      address: '127.0.0.1',
      enabled: false,
      warnings: ['NODE_TOA_UNSUPPORTED'],
    });
  });
});

describeE2E('toa.listen end to end, TOA SYNs through the proxy', () => {
  let netns: ToaNet;
  useToaNet((created) => (netns = created));

  it('a socket made by toa.listen() inside the namespace: the very first connection reads the client, no enable() anywhere', async () => {
    // toa.listen() runs in the namespace (the agent process); its listening socket comes here.
    const listener = await netns.listenWith(path.join(__dirname, '..', 'helpers', 'netns', 'listen-in-ns.js'), 'toaListen', [{ port: 0, host: '::' }]);
    const server = http.createServer((req, res) => res.end(JSON.stringify(realRemoteAddress(req.socket, { trustProxy: [ADDR.lip4, ADDR.lip6] }))));
    listener.on('connection', (socket: net.Socket) => server.emit('connection', socket));
    expect(isEnabled(listener)).toBe(true);
    const { port } = listener.address() as net.AddressInfo;
    for (const [vip, client] of [[ADDR.vip4, ADDR.clients4[0]], [ADDR.vip6, ADDR.clients6[0]]]) {
      const r = await netns.request({ protocol: 'http', vip, port, localAddress: client });
      expect(JSON.parse(r.responses[0].body)).toMatchObject({ address: client, port: r.localPort, source: 'toa' });
    }
    server.closeAllConnections();
    await close(listener);
  });
});
