// Real loopback sockets: enable(), saved SYNs, caching, and sockets in every odd state.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { binding } from '../../lib/addon/binding';
import { compileKinds } from '../../lib/core/kinds';
import { enable, isEnabled, realRemoteAddress } from '../../lib/index';
import '../../lib/register';
import { close, connectPair, listen } from '../helpers/sockets/pair';

const linux = process.platform === 'linux';
const onLinux = linux ? describe : describe.skip;

onLinux('on loopback', () => {
  const servers: net.Server[] = [];
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.destroy());
    await Promise.all(servers.splice(0).map(close));
  });

  async function pair(host: string, { enabled }: { enabled: boolean }) {
    const server = net.createServer();
    servers.push(server);
    if (enabled) enable(server);
    const port = await listen(server, host);
    const p = await connectPair(server, host, port);
    sockets.push(p.server, p.client);
    return { listener: server, accepted: p.server, client: p.client };
  }

  it.each(['127.0.0.1', '::1'])('enable() then connect over %s: the peer, as the SYN says', async (host) => {
    const { listener, accepted, client } = await pair(host, { enabled: true });
    expect(isEnabled(listener)).toBe(true);
    expect(realRemoteAddress(accepted)).toEqual({
      address: host,
      port: client.localPort,
      family: host.includes(':') ? 'IPv6' : 'IPv4',
      source: 'peer',
    });
  });

  it('reads the saved SYN once and caches the answer on the socket', async () => {
    await pair('127.0.0.1', { enabled: true });
    const accepted = sockets[0];
    const first = realRemoteAddress(accepted);
    // The kernel freed the SYN on the first read: a second native read finds nothing...
    expect(binding!.testing.lookup((accepted as unknown as { _handle: { fd: number } })._handle.fd, compileKinds(undefined), false).syn).toBe(false);
    // ...yet every later call answers the same, from the cache.
    expect(realRemoteAddress(accepted)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
  });

  it('adds one property to the socket for what was read and the first options\' answer; other options add their own', async () => {
    await pair('127.0.0.1', { enabled: true });
    const accepted = sockets[0];
    const before = new Set(Reflect.ownKeys(accepted));
    const added = () => Reflect.ownKeys(accepted).filter((k) => !before.has(k));
    const first = realRemoteAddress(accepted);
    // A property added to a fresh net.Socket copies its property array: the commonest case (one
    // options) pays for one, the facts, which hold that answer too.
    expect(added()).toEqual([Symbol.for('node-toa.connection-facts.v3')]);
    expect(realRemoteAddress(accepted)).toBe(first);
    const other = realRemoteAddress(accepted, { trustProxy: false });
    expect(other).toEqual(first);
    expect(added()).toHaveLength(2);
    expect(realRemoteAddress(accepted, { trustProxy: false })).toBe(other);
    expect(realRemoteAddress(accepted)).toBe(first);
  });

  it('saves SYNs only once enabled: a server without enable() has none', async () => {
    const { listener } = await pair('127.0.0.1', { enabled: false });
    expect(isEnabled(listener)).toBe(false);
    const fd = (sockets[0] as unknown as { _handle: { fd: number } })._handle.fd;
    expect(binding!.testing.lookup(fd, compileKinds(undefined), false)).toMatchObject({ syn: false, errno: 0 });
    expect(realRemoteAddress(sockets[0])).toEqual({
      address: '127.0.0.1', port: sockets[1].localPort, family: 'IPv4', source: 'peer',
    });
  });

  it('enables a server that is already listening, and a dual-stack one reports IPv4 peers as IPv4', async () => {
    const server = net.createServer();
    servers.push(server);
    const port = await listen(server, '::');
    expect(enable(server)).toBe(server);
    expect(isEnabled(server)).toBe(true);
    const p = await connectPair(server, '127.0.0.1', port);
    sockets.push(p.server, p.client);
    expect(p.server.remoteAddress).toBe('::ffff:127.0.0.1');
    expect(realRemoteAddress(p.server)).toMatchObject({ address: '127.0.0.1', family: 'IPv4', port: p.client.localPort });
  });

  it('adds socket.realRemoteAddress() through node-toa/register, not enumerable', async () => {
    await pair('127.0.0.1', { enabled: true });
    // Equal, not identical: another copy of node-toa loaded by an earlier test file in this worker
    // may have registered the method first; both copies answer from the same per-socket facts.
    expect(sockets[0].realRemoteAddress()).toEqual(realRemoteAddress(sockets[0]));
    expect(Object.keys(net.Socket.prototype)).not.toContain('realRemoteAddress');
  });

  it('answers a destroyed socket from what Node knew, without throwing', async () => {
    await pair('127.0.0.1', { enabled: true });
    const accepted = sockets[0];
    const port = sockets[1].localPort;
    void accepted.remoteAddress; // Node caches the peer name once read
    accepted.destroy();
    expect(realRemoteAddress(accepted)).toEqual({ address: '127.0.0.1', port, family: 'IPv4', source: 'peer' });
  });

  it('answers a socket destroyed before anyone read its address with an empty address', async () => {
    await pair('127.0.0.1', { enabled: true });
    sockets[0].destroy();
    expect(realRemoteAddress(sockets[0])).toEqual({ address: '', port: 0, family: 'IPv4', source: 'peer' });
  });

  it('keeps the answer of a socket that was asked before it closed', async () => {
    await pair('127.0.0.1', { enabled: true });
    const before = realRemoteAddress(sockets[0]);
    sockets[0].destroy();
    expect(realRemoteAddress(sockets[0])).toBe(before);
  });

  it('survives an fd closed under Node (EBADF) and a non-TCP fd', async () => {
    await pair('127.0.0.1', { enabled: true });
    const fake = { _handle: { fd: 987654 }, remoteAddress: '198.51.100.9', remotePort: 1 };
    expect(realRemoteAddress(fake)).toEqual({ address: '198.51.100.9', port: 1, family: 'IPv4', source: 'peer' });
    const fd = fs.openSync(__filename, 'r');
    try {
      const file = { _handle: { fd }, remoteAddress: '198.51.100.10', remotePort: 2 };
      expect(realRemoteAddress(file)).toMatchObject({ address: '198.51.100.10', source: 'peer' });
    } finally {
      fs.closeSync(fd);
    }
  });

  it('answers an in-memory stream (light-my-request, fastify.inject) from its remoteAddress', () => {
    expect(realRemoteAddress({ remoteAddress: '127.0.0.1' })).toEqual({
      address: '127.0.0.1', port: 0, family: 'IPv4', source: 'peer',
    });
  });

  it('warns, and does not throw, for a server with no TCP socket (a unix socket)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-toa-'));
    const server = net.createServer();
    servers.push(server);
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      await new Promise<void>((resolve) => server.listen(path.join(dir, 's'), resolve));
      enable(server);
      await new Promise((r) => setImmediate(r));
      expect(isEnabled(server)).toBe(false);
      const p = await new Promise<net.Socket>((resolve) => {
        server.once('connection', resolve);
        sockets.push(net.connect(path.join(dir, 's')));
      });
      sockets.push(p);
      expect(realRemoteAddress(p)).toMatchObject({ source: 'peer', address: '' });
      expect(emitWarning).toHaveBeenCalledWith(
        expect.stringMatching(/setsockopt\(TCP_SAVE_SYN\) failed with EOPNOTSUPP/),
        expect.objectContaining({ type: 'NodeToaWarning' }),
      );
    } finally {
      emitWarning.mockRestore();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a non-server in enable()', () => {
    expect(() => enable({} as never)).toThrow(
      new TypeError('enable(server): server must be a net.Server (or an http, https, http2 or tls server)'),
    );
    expect(() => enable(null as never)).toThrow(TypeError);
  });
});

onLinux('in a worker thread', () => {
  it('loads the addon and answers', async () => {
    const dist = path.join(__dirname, '..', '..', 'dist', 'index.js');
    const worker = new Worker(
      `
      const { parentPort } = require('node:worker_threads');
      const net = require('node:net');
      const toa = require(${JSON.stringify(dist)});
      const server = toa.enable(net.createServer((s) => {
        parentPort.postMessage({ answer: toa.realRemoteAddress(s), support: toa.support() });
        s.destroy(); server.close();
      }));
      server.listen(0, '127.0.0.1', () => net.connect(server.address().port, '127.0.0.1').on('error', () => {}));
      `,
      { eval: true },
    );
    const message = await new Promise<{ answer: { source: string; address: string }; support: { addon: boolean } }>(
      (resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      },
    );
    await worker.terminate();
    expect(message.support.addon).toBe(true);
    expect(message.answer).toMatchObject({ source: 'peer', address: '127.0.0.1' });
  });
});
