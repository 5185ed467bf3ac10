// install() / node-toa/preload on loopback, in this process and in child processes: the
// environment's variables (each bad value stops the process, naming variable and value), install()'s
// options and undo, TCP_SAVE_SYN before listen(2) for every kind of listen (port, given handle,
// given fd), and what accepted sockets say: exactly Node's own values without a trusted TOA (the
// saved SYN's source, formatted as Node formats getpeername on that socket), the client with one
// (ToaCgroup clients, when the sock_ops harness can run). Client sockets, pipes and in-memory
// streams are untouched; a connection's SYN is read once whoever asks first.
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import * as tls from 'node:tls';
import * as toa from '../../lib/index';
import { binding } from '../../lib/addon/binding';
import { EnvError, optionsFromEnv } from '../../lib/install/env';
import { synReads } from '../../lib/resolve/facts';
import { ToaCgroup, describeSockops } from '../helpers/sockops';
import { selfSignedCert } from '../helpers/sockets/tls-cert';

const ROOT = path.join(__dirname, '..', '..');
const GREET_CLIENT = path.join(__dirname, '..', 'helpers', 'children', 'greet-client.js');
const FACTS = Symbol.for('node-toa.connection-facts.v3');
const onLinux = process.platform === 'linux' && binding !== null ? describe : describe.skip;

type Peer = { address?: string; port?: number; family?: string };

/** Counts the saved-SYN reads from now on. */
function reads(): () => number {
  const start = synReads.count;
  return () => synReads.count - start;
}

/** What Node itself would say: getpeername on the handle, as Node's _getpeername does. */
function nodeSays(socket: net.Socket): Peer {
  const out: Peer = {};
  (socket as unknown as { _handle: { getpeername(o: Peer): number } })._handle.getpeername(out);
  return out;
}

const said = (s: net.Socket): Peer => ({ address: s.remoteAddress, port: s.remotePort, family: s.remoteFamily });

function listening(server: net.Server, ...args: unknown[]): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    (server.listen as (...a: unknown[]) => void)(...args, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** Connects to 127.0.0.1:port (or host); resolves with the accepted socket and the client. */
async function accept(server: net.Server, port: number, host = '127.0.0.1'): Promise<{ accepted: net.Socket; client: net.Socket }> {
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(port, host);
  client.on('error', () => undefined);
  await new Promise((resolve) => client.once('connect', resolve));
  return { accepted: await accepted, client };
}

/** Runs `node <flag> node-toa/preload -e <code>` from the repository (the package by its name). */
function preloadRun(env: Record<string, string>, code = "console.log('app ran')", flag = '-r', prefix: string[] = []) {
  const r = spawnSync(prefix[0] ?? process.execPath, [...prefix.slice(1), ...(prefix.length > 0 ? [process.execPath] : []), flag, 'node-toa/preload', '-e', code], {
    cwd: ROOT,
    env: { ...process.env, NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: 'off', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the environment (env.ts)', () => {
  it('reads each variable; unset or empty ones are left out', () => {
    expect(optionsFromEnv({})).toEqual({});
    expect(optionsFromEnv({ NODE_TOA_TRUST_PROXY: ' ', NODE_TOA_KINDS: '' })).toEqual({});
    expect(
      optionsFromEnv({
        NODE_TOA_TRUST_PROXY: 'loopback, 198.51.100.0/24,2001:db8::/32',
        NODE_TOA_ACK: 'on',
        NODE_TOA_KINDS: '200, 253,254,28',
        NODE_TOA_MULTIPLE: 'first',
      }),
    ).toEqual({ trustProxy: 'loopback, 198.51.100.0/24,2001:db8::/32', ack: true, kinds: [200, 253, 254, 28], multiple: 'first' });
    expect(optionsFromEnv({ NODE_TOA_ACK: 'auto' })).toEqual({ ack: 'auto' });
    expect(optionsFromEnv({ NODE_TOA_ACK: 'sockops' })).toEqual({ ack: { source: 'sockops' } });
    expect(optionsFromEnv({ NODE_TOA_ACK: ' packet ' })).toEqual({ ack: { source: 'packet' } });
    expect(optionsFromEnv({ NODE_TOA_ACK: 'off', NODE_TOA_TRUST_PROXY: 'false' })).toEqual({ ack: false, trustProxy: false });
    expect(optionsFromEnv({ NODE_TOA_TRUST_PROXY: 'true' })).toEqual({ trustProxy: true });
  });

  const bad: Array<[string, string, RegExp]> = [
    ['NODE_TOA_TRUST_PROXY', 'nonsense', /^node-toa: NODE_TOA_TRUST_PROXY='nonsense' is not a list of proxies: invalid IP address: nonsense/],
    ['NODE_TOA_TRUST_PROXY', '10.0.0.0/33', /^node-toa: NODE_TOA_TRUST_PROXY='10.0.0.0\/33' is not a list of proxies: invalid range on address: 10.0.0.0\/33/],
    ['NODE_TOA_ACK', 'yes', /^node-toa: NODE_TOA_ACK='yes' must be auto, on, off, sockops or packet$/],
    ['NODE_TOA_KINDS', '200,x', /^node-toa: NODE_TOA_KINDS='200,x' must be TCP option kinds from 9 to 255, comma-separated/],
    ['NODE_TOA_KINDS', '5', /^node-toa: NODE_TOA_KINDS='5' is not usable: kinds: 5 is not usable as a TOA kind/],
    ['NODE_TOA_KINDS', '256', /^node-toa: NODE_TOA_KINDS='256' is not usable: kinds: 256 is not usable/],
    ['NODE_TOA_MULTIPLE', 'all', /^node-toa: NODE_TOA_MULTIPLE='all' must be one of ignore, first, last$/],
  ];

  it.each(bad)('%s=%s is an EnvError naming the variable and the value', (variable, value, message) => {
    let error: unknown;
    try {
      optionsFromEnv({ [variable]: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EnvError);
    expect(error).toMatchObject({ code: 'ERR_TOA_BAD_ENV', variable, value });
    expect((error as Error).message).toMatch(message);
  });

  onLinux('node -r node-toa/preload / --import node-toa/preload', () => {
    it.each(bad)('%s=%s stops the process at startup, before the app, with one line naming both', (variable, value) => {
      for (const flag of ['-r', '--import']) {
        const r = preloadRun({ [variable]: value }, undefined, flag);
        expect(r.status).toBe(1);
        expect(r.stdout).not.toMatch(/app ran/);
        expect(r.stderr).toContain(`node-toa/preload: ${variable}='${value}'`);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }
    });

    it('good values start the app, with no warning when a proxy is trusted', () => {
      const r = preloadRun({ NODE_TOA_KINDS: '200,253,254,28', NODE_TOA_MULTIPLE: 'first' }, "console.log('app ran', require('node-toa').installed())");
      expect(r).toMatchObject({ status: 0, stdout: 'app ran true\n', stderr: '' });
      const m = preloadRun({}, "console.log('app ran', require('node-toa').installed())", '--import');
      expect(m).toMatchObject({ status: 0, stdout: 'app ran true\n', stderr: '' });
    });

    it('NODE_TOA_TRUST_PROXY unset: one startup warning that says so and how to set it, however many servers', () => {
      const code = `const net = require('net');
        const a = net.createServer().listen(0, '127.0.0.1'); const b = net.createServer().listen(0, '127.0.0.1');
        setTimeout(() => { a.close(); b.close(); console.log('app ran'); }, 50);`;
      const r = preloadRun({ NODE_TOA_TRUST_PROXY: '' }, code);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe('app ran\n');
      expect(r.stderr.match(/NODE_TOA_TRUST_NONE/g)).toHaveLength(1);
      expect(r.stderr).toMatch(/NODE_TOA_TRUST_PROXY is not set, so no proxy is trusted.*NODE_TOA_TRUST_PROXY=198\.51\.100\.0\/24/);
    });

    // setpriv drops capabilities from root's bounding set for the child (as a container without
    // them): CAP_NET_RAW for packet sockets; CAP_BPF, CAP_SYS_ADMIN and CAP_NET_ADMIN for the
    // sock_ops program.
    const canDrop = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
    const drop = (caps: string) => (canDrop ? ['setpriv', '--bounding-set', caps, '--inh-caps', caps] : []);
    const noCapNetRaw = drop('-net_raw');
    const noTapAtAll = drop('-net_raw,-bpf,-sys_admin,-net_admin');
    const tapsOf = `const net = require('net'); const a = net.createServer().listen(0, '127.0.0.1', () => { a.close(); console.log('app ran', JSON.stringify(require('node-toa').stats().taps.map((t) => t.source))); });`;
    (canDrop || process.getuid?.() !== 0 ? it : it.skip)('NODE_TOA_ACK=on with neither capability fails loudly; auto reads SYNs only with one notice', () => {
      const on = preloadRun({ NODE_TOA_ACK: 'on' }, undefined, '-r', noTapAtAll);
      expect(on.status).toBe(1);
      expect(on.stdout).not.toMatch(/app ran/);
      expect(on.stderr).toMatch(/^node-toa\/preload: \{ ack: true \} needs the CAP_NET_RAW capability.*\(NODE_TOA_ACK='on'; auto reads SYNs only instead\)\n$/);
      const auto = preloadRun({ NODE_TOA_ACK: 'auto' }, tapsOf, '-r', noTapAtAll);
      expect(auto.status).toBe(0);
      expect(auto.stdout).toBe('app ran []\n');
      expect(auto.stderr.match(/NODE_TOA_ACK_SYN_ONLY/g)).toHaveLength(1);
      expect(auto.stderr).toMatch(/lacks CAP_NET_RAW \(and CAP_BPF with CAP_NET_ADMIN for the sock_ops program\), so TOA is read from SYNs only.*NODE_TOA_ACK=off/);
    });

    (canDrop || process.getuid?.() !== 0 ? it : it.skip)('without CAP_NET_RAW the sock_ops program still reads the ACK; NODE_TOA_ACK=packet fails loudly', () => {
      const on = preloadRun({ NODE_TOA_ACK: 'on' }, tapsOf, '-r', noCapNetRaw);
      expect(on).toMatchObject({ status: 0, stdout: 'app ran ["sockops"]\n', stderr: '' });
      const packet = preloadRun({ NODE_TOA_ACK: 'packet' }, undefined, '-r', noCapNetRaw);
      expect(packet.status).toBe(1);
      expect(packet.stderr).toMatch(/^node-toa\/preload: \{ ack: true \} needs the CAP_NET_RAW capability/);
    });

    (canDrop || process.getuid?.() !== 0 ? it : it.skip)('NODE_TOA_ACK=sockops without CAP_BPF fails loudly, naming the step and the capabilities', () => {
      const r = preloadRun({ NODE_TOA_ACK: 'sockops' }, undefined, '-r', drop('-bpf,-sys_admin'));
      expect(r.status).toBe(1);
      expect(r.stdout).not.toMatch(/app ran/);
      expect(r.stderr).toMatch(/cannot open the ACK tap through the sock_ops program: bpf\(BPF_\w+\) failed with EPERM \(loading and attaching it needs CAP_BPF and CAP_NET_ADMIN, or root\)/);
    });

    (process.getuid?.() === 0 ? it : it.skip)('NODE_TOA_ACK=sockops|packet opens that kind of tap', () => {
      for (const source of ['sockops', 'packet']) {
        expect(preloadRun({ NODE_TOA_ACK: source }, tapsOf)).toMatchObject({ status: 0, stdout: `app ran ["${source}"]\n`, stderr: '' });
      }
    });

    (process.getuid?.() === 0 ? it : it.skip)('NODE_TOA_ACK=auto with CAP_NET_RAW opens the tap of every TCP server, silently', () => {
      const code = `const net = require('net'); const a = net.createServer().listen(0, '127.0.0.1', () => {
        setImmediate(() => { const { port } = a.address(); const taps = require('node-toa').stats().taps.map((t) => t.port === port); a.close(); console.log(JSON.stringify(taps)); });
      });`;
      const r = preloadRun({ NODE_TOA_ACK: 'auto' }, code);
      expect(r).toMatchObject({ status: 0, stdout: '[true]\n', stderr: '' });
    });
  });
});

onLinux('makeSynReader (the first read\u2019s native call)', () => {
  it('checks its arrays once, then takes only the fd; fills the record as readSyn() does', async () => {
    const table = new Uint8Array(256);
    table[254] = 3;
    const size = binding!.recordLayout.size;
    expect(() => binding!.makeSynReader!(new Uint8Array(10), new Uint8Array(size), false)).toThrow(new RangeError('kind table must hold 256 bytes'));
    expect(() => binding!.makeSynReader!(table, new Uint8Array(10), false)).toThrow(new TypeError('record must be a Uint8Array of recordLayout.size bytes'));
    const record = new Uint8Array(size);
    const read = binding!.makeSynReader!(table, record, true);
    expect(() => read('x' as unknown as number)).toThrow(new TypeError('fd must be a number'));
    expect(() => read(-1)).toThrow(new RangeError('fd must be >= 0'));
    const server = net.createServer();
    const port = await listening(server, 0, '127.0.0.1');
    binding!.setSaveSyn((server as unknown as { _handle: { fd: number } })._handle.fd, true);
    const { accepted, client } = await accept(server, port);
    const fd = (accepted as unknown as { _handle: { fd: number } })._handle.fd;
    expect(read(fd)).toBe(0);
    const L = binding!.recordLayout;
    expect(record[L.flags]).toBe(L.flagSyn | L.flagPeer | L.flagName); // with the peer name, as asked
    expect(read(fd)).toBe(0); // the SYN is gone: read, but nothing there
    expect(record[L.flags] & L.flagSyn).toBe(0);
    accepted.destroy();
    client.destroy();
    server.close();
  });
});

onLinux('install(options)', () => {
  let undo: (() => void) | undefined;
  afterEach(() => {
    undo?.();
    undo = undefined;
  });

  it('checks its options like every call: TypeError/RangeError naming option and value, unknown keys refused', () => {
    expect(() => toa.install({ trustproxy: 'loopback' } as never)).toThrow(
      new TypeError("install(options): unknown option 'trustproxy' (known: trustProxy, kinds, multiple, ack, proxyProtocol)"),
    );
    expect(() => toa.install('loopback' as never)).toThrow(new TypeError('install(options): options must be an object, got string'));
    expect(() => toa.install({ ack: 'sometimes' as never })).toThrow(
      new TypeError("install(options): options.ack must be 'auto', a boolean or an object such as { capacity: 65536, maxAge: 30000 }, got 'sometimes'"),
    );
    expect(() => toa.install({ ack: { capacity: 0 } })).toThrow(new RangeError('install(options): options.ack.capacity must be from 1 to 16777216, got 0'));
    expect(() => toa.install({ ack: { size: 1 } as never })).toThrow(new TypeError("install(options): unknown option 'ack.size' (known: capacity, maxAge, source)"));
    expect(() => toa.install({ trustProxy: 5 as never })).toThrow(TypeError);
    expect(() => toa.install({ kinds: [5] })).toThrow(RangeError);
    expect(() => toa.install({ multiple: 'all' as never })).toThrow(new TypeError("multiple must be one of 'ignore', 'first', 'last', got 'all'"));
    expect(toa.installed()).toBe(false);
  });

  it('returns an undo function; installed() says whether it is on; a second install() is refused', () => {
    const nodeOwn = (net.Socket.prototype as unknown as { _getpeername: unknown })._getpeername;
    expect(toa.installed()).toBe(false);
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    expect(toa.installed()).toBe(true);
    expect((net.Socket.prototype as unknown as { _getpeername: unknown })._getpeername).not.toBe(nodeOwn);
    expect(() => toa.install({ trustProxy: 'loopback' })).toThrow(expect.objectContaining({ code: 'ERR_TOA_ALREADY_INSTALLED' }));
    undo();
    expect(toa.installed()).toBe(false);
    expect((net.Socket.prototype as unknown as { _getpeername: unknown })._getpeername).toBe(nodeOwn);
    undo(); // twice: nothing
    undo = toa.install({ trustProxy: 'loopback', ack: false }); // and again
    expect(toa.installed()).toBe(true);
  });

  it('sets TCP_SAVE_SYN before listen(2): the socket has it when the kernel is asked to listen', async () => {
    // Node's TCP handle's listen() is where listen(2) happens: look at the socket right then.
    const probe = net.createServer();
    await listening(probe, 0, '127.0.0.1');
    const tcp = Object.getPrototypeOf((probe as unknown as { _handle: object })._handle) as { listen(this: { fd: number }, b: number): number };
    probe.close();
    const nodeListen = tcp.listen;
    const atListen: number[] = [];
    tcp.listen = function listen(this: { fd: number }, backlog: number) {
      atListen.push(binding!.getSaveSyn(this.fd));
      return nodeListen.call(this, backlog);
    };
    try {
      undo = toa.install({ trustProxy: 'loopback', ack: false });
      const servers = [net.createServer(), http.createServer(), tls.createServer(selfSignedCert())];
      await listening(servers[0], 0);
      await listening(servers[1], 0, '127.0.0.1');
      await listening(servers[2], { port: 0, host: '::1' });
      for (const s of servers) s.close();
      undo();
      undo = undefined;
      const control = net.createServer();
      await listening(control, 0, '127.0.0.1');
      control.close();
      expect(atListen).toEqual([1, 1, 1, 0]); // the last: after undo, Node's own listen
    } finally {
      tcp.listen = nodeListen;
    }
  });

  (process.getuid?.() === 0 ? it : it.skip)('with ack, the tap of a server is open before listen(2) too, and undo closes it', async () => {
    const probe = net.createServer();
    await listening(probe, 0, '127.0.0.1');
    const tcp = Object.getPrototypeOf((probe as unknown as { _handle: object })._handle) as { listen(this: { getsockname(o: { port?: number }): number }, b: number): number };
    probe.close();
    const nodeListen = tcp.listen;
    const tappedAtListen: boolean[] = [];
    tcp.listen = function listen(this: { getsockname(o: { port?: number }): number }, backlog: number) {
      const out: { port?: number } = {};
      this.getsockname(out);
      tappedAtListen.push(toa.stats().taps.some((t) => t.port === out.port));
      return nodeListen.call(this, backlog);
    };
    try {
      undo = toa.install({ trustProxy: 'loopback', ack: true });
      const server = http.createServer();
      const port = await listening(server, 0, '127.0.0.1');
      expect(tappedAtListen).toEqual([true]);
      undo();
      undo = undefined;
      expect(toa.stats().taps.some((t) => t.port === port)).toBe(false);
      server.close();
    } finally {
      tcp.listen = nodeListen;
    }
  });

  it('servers that listened before install() get TCP_SAVE_SYN at install(), with one warning', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const early = [net.createServer(), net.createServer()];
    try {
      for (const s of early) await listening(s, 0, '127.0.0.1');
      expect(early.map((s) => toa.isEnabled(s))).toEqual([false, false]);
      undo = toa.install({ trustProxy: 'loopback', ack: false });
      expect(early.map((s) => toa.isEnabled(s))).toEqual([true, true]);
      const codes = emitWarning.mock.calls.map((c) => (c[1] as { code?: string } | undefined)?.code);
      expect(codes).toEqual(['NODE_TOA_INSTALL_LATE']);
      expect(String(emitWarning.mock.calls[0][0])).toMatch(/^node-toa: install\(\) found 2 listening sockets without TCP_SAVE_SYN and set it; /);
    } finally {
      emitWarning.mockRestore();
      for (const s of early) s.close();
    }
  });

  it('a server listening on a handle or an fd it was given gets TCP_SAVE_SYN too (before listen(2) where it only was bound)', async () => {
    // Both before install(): no TCP_SAVE_SYN on them.
    const given = net.createServer();
    await listening(given, 0, '127.0.0.1');
    expect(toa.isEnabled(given)).toBe(false);
    // A descriptor no Node handle owns yet (as a supervisor passes one): made natively, its
    // TCP_SAVE_SYN taken off again.
    const fd = binding!.createListener('127.0.0.1', 0, 16, false, false);
    expect(fd).toBeGreaterThan(0);
    expect(binding!.setSaveSyn(fd, false)).toBe(0);
    expect(binding!.getSaveSyn(fd)).toBe(0);
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    const onHandle = net.createServer();
    const port = await listening(onHandle, (given as unknown as { _handle: object })._handle);
    expect(toa.isEnabled(onHandle)).toBe(true);
    const { accepted, client } = await accept(onHandle, port);
    expect(said(accepted)).toEqual(nodeSays(accepted));
    expect((accepted as unknown as Record<symbol, { synPeer?: unknown }>)[FACTS]?.synPeer).toBeDefined();
    accepted.destroy();
    client.destroy();
    onHandle.close();

    const create = (net as unknown as { _createServerHandle(a: string, p: number, t: number): { fd: number; close(): void } })._createServerHandle;
    const bound = create('127.0.0.1', 0, 4);
    expect(binding!.getSaveSyn(bound.fd)).toBe(1); // bound, not listening: SCHED_NONE's path
    expect(binding!.isTcpListener(bound.fd)).toBe(false);
    bound.close();

    const onFd = net.createServer();
    await listening(onFd, { fd });
    expect(binding!.getSaveSyn(fd)).toBe(1);
    onFd.close();
    given.close();
  });

  it.each([
    ['::', '127.0.0.1', '::ffff:127.0.0.1', 'IPv6'],
    ['127.0.0.1', '127.0.0.1', '127.0.0.1', 'IPv4'],
    ['::1', '::1', '::1', 'IPv6'],
  ])('listening on %s, a peer without TOA is exactly what Node says (%s -> %s)', async (host, dial, address, family) => {
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    const server = net.createServer();
    const port = await listening(server, 0, host);
    const readSyn = reads();
    try {
      const { accepted, client } = await accept(server, port, dial);
      const clientPort = client.localPort;
      expect(said(accepted)).toEqual({ address, port: clientPort, family });
      expect(said(accepted)).toEqual(nodeSays(accepted));
      // Answered from the saved SYN (no getpeername), which was read once, for everyone after.
      expect(readSyn()).toBe(1);
      expect(toa.realRemoteAddress(accepted)).toMatchObject({ address: dial, port: client.localPort, source: 'peer' });
      expect(toa.realRemoteAddress(accepted, { trustProxy: '10.0.0.0/8' }).address).toBe(dial);
      expect(readSyn()).toBe(1);
      // The client socket is Node's: the server it dialled.
      expect(said(client)).toEqual({ address: dial, port, family: dial.includes(':') ? 'IPv6' : 'IPv4' });
      accepted.destroy();
      client.destroy();
      // A destroyed socket keeps what it said.
      expect(said(accepted)).toEqual({ address, port: clientPort, family });
    } finally {
      server.close();
    }
  });

  it('realRemoteAddress() first (register, an integration), remoteAddress after: one SYN read', async () => {
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    const server = net.createServer();
    const port = await listening(server, 0, '127.0.0.1');
    const readSyn = reads();
    try {
      const { accepted, client } = await accept(server, port);
      expect(toa.realRemoteAddress(accepted).source).toBe('peer');
      expect(said(accepted)).toEqual(nodeSays(accepted));
      expect(readSyn()).toBe(1);
      accepted.destroy();
      client.destroy();
    } finally {
      server.close();
    }
  });

  it('a TLS socket and the raw socket under it agree, whichever is read first, from one SYN read', async () => {
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    const server = tls.createServer(selfSignedCert());
    const raw: Peer[] = [];
    server.on('connection', (socket: net.Socket) => raw.push(said(socket)));
    const port = await listening(server, 0, '127.0.0.1');
    const readSyn = reads();
    try {
      const secured = new Promise<tls.TLSSocket>((resolve) => server.once('secureConnection', resolve));
      const client = tls.connect({ port, host: '127.0.0.1', ca: selfSignedCert().cert });
      client.on('error', () => undefined);
      const t = await secured;
      expect(said(t)).toEqual(raw[0]);
      expect(raw[0]).toEqual({ address: '127.0.0.1', port: client.localPort, family: 'IPv4' });
      expect(toa.realRemoteAddress(t).address).toBe('127.0.0.1');
      expect(readSyn()).toBe(1);
      t.destroy();
      client.destroy();
    } finally {
      server.close();
    }
  });

  it('pipes, sockets never connected and in-memory streams are untouched, silently', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    const file = path.join(os.tmpdir(), `node-toa-preload-${process.pid}.sock`);
    fs.rmSync(file, { force: true });
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(file, resolve));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect(file);
    const a = await accepted;
    expect(said(a)).toEqual({ address: undefined, port: undefined, family: undefined });
    expect(said(new net.Socket())).toEqual({ address: undefined, port: undefined, family: undefined });
    expect((new PassThrough() as unknown as Peer).address).toBeUndefined();
    a.destroy();
    client.destroy();
    server.close();
    await new Promise((resolve) => setImmediate(resolve));
    const calls = emitWarning.mock.calls.length;
    emitWarning.mockRestore();
    expect(calls).toBe(0);
  });

  it('undo restores Node: new servers do not save SYNs, new sockets ask getpeername', async () => {
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    undo();
    undo = undefined;
    const server = net.createServer();
    const port = await listening(server, 0, '127.0.0.1');
    expect(toa.isEnabled(server)).toBe(false);
    const { accepted, client } = await accept(server, port);
    expect(said(accepted)).toEqual(nodeSays(accepted));
    expect((accepted as unknown as Record<symbol, unknown>)[FACTS]).toBeUndefined();
    accepted.destroy();
    client.destroy();
    server.close();
  });
});

describeSockops('install() with clients whose kernel writes TOA', () => {
  let group: ToaCgroup;
  let undo: (() => void) | undefined;
  beforeAll(async () => {
    group = await ToaCgroup.create({ packets: ['syn'] });
  });
  afterEach(() => {
    undo?.();
    undo = undefined;
  });
  afterAll(() => group?.close());

  /** greet-client.js in the cgroup against `server`; resolves with the accepted socket's view. */
  async function greet(server: net.Server, port: number, look: (s: net.Socket) => unknown): Promise<{ seen: unknown; clientPort: number }> {
    let seen: unknown;
    const onConnection = (socket: net.Socket) => {
      seen = look(socket);
      socket.on('error', () => undefined);
      socket.resume(); // read to the client's FIN, so the socket closes
      socket.end('hello\n');
    };
    server.on('connection', onConnection);
    const r = await group.run(process.execPath, [GREET_CLIENT, String(port)], { timeoutMs: 15_000 });
    server.off('connection', onConnection);
    if (r.code !== 0) throw new Error(`greet-client failed: ${r.stderr}`);
    return { seen, clientPort: (JSON.parse(r.stdout.trim()) as { localPort: number }).localPort };
  }

  it("metrics() counts the preload's first reads, its fast answers too: a TOA client and a plain one", async () => {
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    const server = net.createServer();
    const port = await listening(server, 0, '127.0.0.1');
    expect(toa.metrics().ports[port]).toBeUndefined();
    const { seen, clientPort } = await greet(server, port, (s) => s.remoteAddress);
    expect(seen).toBe(group.expected(clientPort).address);
    const { accepted, client } = await accept(server, port);
    expect(accepted.remoteAddress).toBe('127.0.0.1');
    accepted.destroy();
    client.destroy();
    expect(toa.metrics().ports[port]).toEqual({
      connections: 2,
      bySource: { toa: 1, kernel: 0, 'proxy-protocol': 0, peer: 1 },
      byPacket: { syn: 1, ack: 0, data: 0 },
      byKind: { 254: 1 },
      refused: { untrusted: 0, ambiguous: 0, malformed: 0, tfoCookie: 0 },
      noSavedSyn: 0,
      proxyProtocol: { headers: 0, local: 0, malformed: 0, tooLarge: 0, timeout: 0, missing: 0 },
      udp: {
        flows: { spp: 0, 'proxy-protocol': 0, uoa: 0 },
        datagrams: { spp: 0, 'proxy-protocol': 0, uoa: 0, peer: 0 },
        dropped: { malformed: 0, tooLarge: 0, missing: 0 },
        refused: { untrusted: 0 },
        consumed: 0,
      },
    });
    server.close();
  });

  it('a trusted proxy: the client, in its own family, also on a dual-stack socket; the proxy stays readable with the installed trust', async () => {
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    const server = net.createServer();
    const port = await listening(server, 0);
    const { seen, clientPort } = await greet(server, port, (s) => ({ ...said(s), real: toa.realRemoteAddress(s) }));
    const want = group.expected(clientPort);
    expect(seen).toEqual({
      address: want.address,
      port: clientPort,
      family: 'IPv4',
      real: { address: want.address, port: clientPort, family: 'IPv4', source: 'toa', kind: 254, packet: 'syn', proxy: { address: '127.0.0.1', port: clientPort, family: 'IPv4' } },
    });
    server.close();
  });

  it('on a handle it was given, too', async () => {
    const given = net.createServer();
    await listening(given, 0, '127.0.0.1');
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    const server = net.createServer();
    const port = await listening(server, (given as unknown as { _handle: object })._handle);
    const { seen, clientPort } = await greet(server, port, said);
    expect(seen).toEqual({ address: group.expected(clientPort).address, port: clientPort, family: 'IPv4' });
    server.close();
    given.close();
  });

  it('an untrusted proxy: Node\u2019s own value, and the TOA is in realRemoteAddress() for no one', async () => {
    undo = toa.install({ trustProxy: '192.0.2.0/24', ack: false });
    const server = net.createServer();
    const port = await listening(server, 0);
    const { seen, clientPort } = await greet(server, port, (s) => ({ ...said(s), node: nodeSays(s) }));
    expect(seen).toEqual({ address: '::ffff:127.0.0.1', port: clientPort, family: 'IPv6', node: { address: '::ffff:127.0.0.1', port: clientPort, family: 'IPv6' } });
    server.close();
  });

  it('the integrations and register, loaded too, read the same SYN once and agree', async () => {
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    require('../../lib/register');
    const server = net.createServer();
    const port = await listening(server, 0, '127.0.0.1');
    const readSyn = reads();
    try {
      // remoteAddress first: this copy reads the SYN. Then register's method (possibly another
      // copy of node-toa, loaded by an earlier test file in this worker) and an integration's
      // resolver: a second read would find no SYN and answer the peer, so the client there proves
      // they used the shared facts.
      const { seen, clientPort } = await greet(server, port, (s) => {
        const remote = s.remoteAddress;
        const viaRegister = (s as unknown as { realRemoteAddress(o?: object): toa.RealAddress }).realRemoteAddress({ trustProxy: 'loopback' });
        const viaResolver = toa.createResolver({ trustProxy: '127.0.0.0/8' })(s);
        return { remote, viaRegister: viaRegister.address, viaResolver: viaResolver.address };
      });
      const want = group.expected(clientPort).address;
      expect(seen).toEqual({ remote: want, viaRegister: want, viaResolver: want });
      expect(readSyn()).toBe(1);
    } finally {
      server.close();
    }
  });
});

describeSockops('install() beside the Express integration', () => {
  let group: ToaCgroup;
  let undo: (() => void) | undefined;
  beforeAll(async () => {
    group = await ToaCgroup.create({ packets: ['syn'] });
  });
  afterAll(async () => {
    undo?.();
    await group?.close();
  });

  it('toaMiddleware({ setIp }) and req.socket agree, the server counts as enabled (no late warning), one SYN read per connection', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    undo = toa.install({ trustProxy: 'loopback', ack: false });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const express = require('express') as typeof import('express');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { toaMiddleware } = require('../../lib/express') as typeof import('../../lib/express');
    const app = express();
    app.use(toaMiddleware({ trustProxy: 'loopback', setIp: true }));
    app.get('/', (req, res) => {
      res.json({ ip: req.ip, real: req.realRemoteAddress().address, socket: req.socket.remoteAddress });
    });
    const server = http.createServer(app);
    const port = await listening(server, 0, '127.0.0.1');
    const readSyn = reads();
    try {
      const r = await group.run(process.execPath, [path.join(__dirname, '..', 'helpers', 'children', 'preload-client.js'), JSON.stringify({ kind: 'http', port, connections: [{ requests: 2 }, { requests: 1 }] })], { timeoutMs: 20_000 });
      expect(r.code).toBe(0);
      const conns = JSON.parse(r.stdout.trim()) as Array<{ localPort: number; responses: Array<{ body: string }> }>;
      for (const c of conns) {
        const want = group.expected(c.localPort).address;
        for (const res of c.responses) expect(JSON.parse(res.body)).toEqual({ ip: want, real: want, socket: want });
      }
      expect(readSyn()).toBe(2);
      expect(emitWarning).not.toHaveBeenCalled();
    } finally {
      emitWarning.mockRestore();
      server.closeAllConnections();
      server.close();
    }
  });
});

// A child process: the preload in NODE_OPTIONS, as npm start, pm2 or a Docker CMD would pass it.
onLinux('NODE_OPTIONS=--require node-toa/preload', () => {
  it('is picked up without any flag in the command', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['-e', "console.log(require('node-toa').installed())"],
        { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '--require node-toa/preload', NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: 'off' }, timeout: 20_000 },
        (error, stdout, stderr) => (error ? reject(new Error(`${error.message} ${stderr}`)) : resolve(stdout)),
      ),
    );
    expect(out).toBe('true\n');
  });
});
