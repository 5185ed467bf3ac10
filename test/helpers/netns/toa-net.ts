/*
 * End-to-end harness: a network namespace with a user-space full-NAT proxy
 * (toa_proxy.py, on a TUN device) that inserts TOA options, a client agent
 * running inside the namespace (netns-agent.js), and listening sockets that
 * live in the namespace but are owned by the jest process.  See README.md.
 */
import * as net from 'net';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import * as readline from 'readline';
import * as vm from 'vm';
import { spawn, execFileSync, execFile, ChildProcess } from 'child_process';
import { removeOrphans } from '../process/leftovers';
import { childEnv, closedAtExit } from '../process/real-process';
import { closeMadeInBlock, describeNeeds, findExe } from '../jest/requirements';

export const ADDR = {
  client4: '192.0.2.1',
  client6: '2001:db8:c::1',
  clients4: ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5', '192.0.2.6', '192.0.2.7', '192.0.2.8', '192.0.2.9'],
  clients6: [
    '2001:db8:c::1',
    '2001:db8:c::2',
    '2001:db8:c::3',
    '2001:db8:c::4',
    '2001:db8:c::5',
    '2001:db8:c::6',
    '2001:db8:c::7',
    '2001:db8:c::8',
    '2001:db8:c::9',
  ],
  vip4: '198.51.100.10', // -> backend over IPv4
  vip4to6: '198.51.100.11', // -> backend over IPv6 (IPv4 client, IPv6 proxy)
  vip6: '2001:db8:a::10', // -> backend over IPv6
  vip6to4: '2001:db8:a::11', // -> backend over IPv4 (NAT64)
  lip4: '198.51.100.2',
  lip6: '2001:db8:b::2',
  untrusted4: '198.51.100.66',
  untrusted6: '2001:db8:b::66',
  rip4: '203.0.113.10',
  rip6: '2001:db8:d::10',
};

/** Where the proxy inserts the option: 'syn' | 'ack' | 'data' | 'all' | 'none', combinable with '+'. */
export type ToaWhere = 'syn' | 'ack' | 'data' | 'syn+ack' | 'ack+data' | 'syn+data' | 'all' | 'none' | string;

export interface ToaRule {
  /** default 'syn' */
  where?: ToaWhere;
  /** option kind; default 200 (format v4), 254 (v6), 28 (ali), 252 (vtoa), 249 (ali-ddos) */
  kind?: number;
  /**
   * default: 'v4' for an IPv4 address, 'v6' for an IPv6 one; 'ali-ddos' is Alibaba Anti-DDoS's
   * 40-byte layout (port, IPv6 or IPv4-mapped client, `node`)
   */
  format?: 'v4' | 'v6' | 'ali' | 'vtoa' | 'ali-ddos';
  /** client address put in the option; default the client's real source address */
  address?: string;
  /** client port put in the option; default the client's real source port */
  port?: number;
  /** hex option bytes inserted verbatim instead (NOPs are added in front to reach a multiple of 4) */
  raw?: string;
  /** proxy source address (LIP) used when its family matches the backend's; lip4/lip6 per family */
  lip?: string;
  lip4?: string;
  lip6?: string;
  /**
   * a fixed proxy source port instead of the counter's (20000-60000): each connection of this rule
   * reaches the server on the same 4-tuple; one still in the proxy's table is replaced
   */
  lport?: number;
  /** vtoa: VPC id (default 0), vip (default the VIP if IPv4), vport (default the VIP port) */
  vid?: number;
  vip?: string;
  vport?: number;
  /** ali: version byte (default 1) */
  version?: number;
  /** ali-ddos: the 20 bytes after the client, as hex (default the LIP6 and 4 zero bytes) */
  node?: string;
  /**
   * Replace the packet's own options (MSS, SACK, window scale, timestamps) with the TOA instead of
   * adding it to them. Default: only for a 40-byte option, which leaves room for nothing else.
   */
  alone?: boolean;
}

export interface ListenOpts {
  /** default '::' (dual stack) */
  host?: string;
  /** default 0 */
  port?: number;
  ipv6Only?: boolean;
  backlog?: number;
}

export interface RequestOpts {
  protocol?: 'http' | 'https' | 'h2' | 'h2c' | 'tcp';
  vip: string;
  port: number;
  /** default ADDR.client4 / ADDR.client6 after the VIP's family */
  localAddress?: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  /** requests on one connection (http/https keep-alive agent with maxSockets 1, h2 one session); default 1 */
  count?: number;
  /** default true; false sends `connection: close` (one connection per request) */
  keepAlive?: boolean;
  body?: string;
  /** TLS: verify against ca; without ca (or with insecure) any certificate is accepted */
  ca?: string | Buffer;
  insecure?: boolean;
  servername?: string;
  /** tcp: end our side after writing */
  halfClose?: boolean;
  /** sequential connections, each with `count` requests; default 1 */
  connections?: number;
  /** whole request bounded by this; default 5000 */
  timeoutMs?: number;
}

export interface RequestResponse {
  status: number;
  body: string;
  headers?: Record<string, unknown>;
  localAddress?: string;
  localPort?: number;
}

export interface RequestConnection {
  localAddress: string;
  localPort: number;
  responses: RequestResponse[];
}

export interface RequestResult extends RequestConnection {
  elapsedMs: number;
  /** only when connections > 1 */
  connections?: RequestConnection[];
}

export interface FloodOpts {
  count: number;
  /** RIP port */
  port: number;
  /** 'ack' (bare ACKs, default), 'syn' or 'data' (ACK+PSH with a payload) */
  where?: 'ack' | 'syn' | 'data';
  /** backend family, default 4 */
  family?: 4 | 6;
  /** option to add; address defaults to ADDR.client4/6, port random per packet */
  rule?: ToaRule;
  payloadHex?: string;
  /** [min, max] of the random source ports; default [1024, 65535] */
  sports?: [number, number];
}

export interface CraftOpts {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** letters from S A P F R; default 'A' */
  flags?: string;
  seq?: number;
  ack?: number;
  window?: number;
  ttl?: number;
  /** padded with EOL to a multiple of 4 */
  optionsHex?: string;
  payloadHex?: string;
}

export interface TcpOptionInfo {
  kind: number;
  len: number;
  hex: string;
}

export interface PacketInfo {
  t: number;
  /**
   * 'c2s' forwarded to the server, 's2c' forwarded to the client, 'inj' written by
   * flood/raw/craft; 'in' as the kernel sent it into the TUN (before translation)
   */
  dir: 'c2s' | 's2c' | 'inj' | 'in';
  hex: string;
  /** IPv4 header length in bytes */
  ihl?: number;
  family?: 4 | 6;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  seq?: number;
  flags?: string;
  optionsHex?: string;
  options?: TcpOptionInfo[];
  payloadLen?: number;
  tcpChecksumOk?: boolean;
}

export interface ConnInfo {
  client: string;
  cport: number;
  vip: string;
  vport: number;
  lip: string;
  lport: number;
  rip: string;
  rport: number;
  closing: boolean;
  toaHex: string | null;
}

export interface ProxyStats {
  packetsIn: number;
  packetsOut: number;
  connections: number;
  active: number;
  toaInserted: number;
  toaTooBig: number;
  [k: string]: number;
}

const HELPERS = __dirname;
const PROXY_PY = path.join(HELPERS, 'toa_proxy.py');
const AGENT_JS = path.join(HELPERS, 'netns-agent.js');
const NS_DIR = '/run/netns';
const NS_RE = /^toa-(\d+)-[0-9a-f]+$/;

function ipBin(): string | null {
  return findExe('ip');
}

function pythonBin(): string | null {
  if (process.env.TOA_PYTHON) return process.env.TOA_PYTHON;
  // Prefer the system interpreter: version-manager shims (pyenv) add ~300 ms per start.
  for (const p of ['/usr/bin/python3', '/usr/local/bin/python3']) {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return findExe('python3');
}

let availCache: { ok: true } | { ok: false; reason: string } | null = null;

/** root + ip + /dev/net/tun + python3, and `ip netns add` actually works here. */
export function netnsAvailable(): { ok: true } | { ok: false; reason: string } {
  if (availCache) return availCache;
  const fail = (reason: string) => (availCache = { ok: false, reason });
  // Lets the unavailable path (skip / CI failure) be exercised on a capable machine.
  if (process.env.TOA_NET_UNAVAILABLE) return fail(`TOA_NET_UNAVAILABLE=${process.env.TOA_NET_UNAVAILABLE}`);
  if (process.platform !== 'linux') return fail(`network namespaces need Linux (platform is ${process.platform})`);
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return fail('the e2e harness needs root (ip netns, TUN)');
  const ip = ipBin();
  if (!ip) return fail('`ip` (iproute2) not found');
  try {
    fs.accessSync('/dev/net/tun', fs.constants.R_OK | fs.constants.W_OK);
  } catch (e) {
    return fail(`/dev/net/tun not usable: ${(e as Error).message}`);
  }
  if (!pythonBin()) return fail('python3 not found');
  const probe = `toa-${process.pid}-0${crypto.randomBytes(3).toString('hex')}`; // matches NS_RE: GC'd if leaked
  try {
    execFileSync(ip, ['netns', 'add', probe], { stdio: 'pipe' });
  } catch (e) {
    return fail(`\`ip netns add\` failed: ${String((e as { stderr?: Buffer }).stderr || (e as Error).message).trim()}`);
  }
  try {
    execFileSync(ip, ['netns', 'delete', probe], { stdio: 'pipe' });
  } catch {
    /* ignore */
  }
  return (availCache = { ok: true });
}

/**
 * Like jest's describe, but when the harness cannot run: with CI=true a test that fails with the
 * reason; otherwise a loud warning and describe.skip (requirements.ts, describeNeeds). ToaNets
 * created inside the block and still open at its end are closed (also when a test failed before
 * close()).
 */
export function describeE2E(name: string, fn: () => void): void {
  const a = netnsAvailable();
  describeNeeds('e2e network namespace harness', a.ok ? null : a.reason, name, fn, closeMadeInBlock(localNets, () => createSeq));
}

// ---- process-wide cleanup -------------------------------------------------
// Every test file's copy of this module shares one set per worker, closed when the worker exits.
const openNets = closedAtExit<ToaNet>('node-toa.test.toa-net.registry');
const localNets = new Set<ToaNet>();
let createSeq = 0;

function removeStaleNamespaces(ip: string): void {
  removeOrphans(NS_DIR, NS_RE, (name) => {
    try {
      execFileSync(ip, ['netns', 'delete', name], { stdio: 'ignore' });
    } catch {
      /* ignore */
    }
  });
}

function run(cmd: string, args: string[], timeoutMs = 10000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const e = new Error(`${cmd} ${args.join(' ')}: ${String(stderr || err.message).trim()}`);
        reject(e);
      } else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function snakeToCamel(o: Record<string, number>): ProxyStats {
  const r: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) r[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  return r as ProxyStats;
}

type Pending = { resolve: (v: any) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

let certCache: { key: string; cert: string } | null = null;

/**
 * A self-signed certificate (EC P-256) for the VIPs and RIPs (IP SANs) and
 * localhost, made with the openssl CLI once per process.
 */
export function testCert(): { key: string; cert: string } {
  if (certCache) return certCache;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'toa-cert-'));
  try {
    const san = [ADDR.vip4, ADDR.vip4to6, ADDR.vip6, ADDR.vip6to4, ADDR.rip4, ADDR.rip6].map((a) => `IP:${a}`).join(',');
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '7',
        '-subj', '/CN=toa-test', '-addext', `subjectAltName=${san},DNS:localhost`,
      ],
      { stdio: 'pipe' },
    );
    certCache = {
      key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'),
      cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8'),
    };
    return certCache;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export class ToaNet {
  readonly ns: string;
  /** @internal creation order, for describeE2E cleanup */
  readonly seq: number;
  private readonly ip: string;
  private proxy: ChildProcess | null = null;
  private agent: ChildProcess | null = null;
  private nextId = 1;
  private proxyPending = new Map<number, Pending>();
  private agentPending = new Map<number, Pending>();
  private servers = new Set<net.Server>();
  private sockets = new Set<net.Socket>();
  private closing: Promise<void> | null = null;
  private proxyErr = '';
  private agentErr = '';
  private readonly debug: boolean;

  private constructor(ns: string, ip: string, debug: boolean) {
    this.ns = ns;
    this.ip = ip;
    this.debug = debug;
    this.seq = ++createSeq;
  }

  static async create(opts: { name?: string; debug?: boolean; mtu?: number } = {}): Promise<ToaNet> {
    const a = netnsAvailable();
    if (!a.ok) throw new Error(`ToaNet unavailable: ${a.reason}`);
    const ip = ipBin() as string;
    removeStaleNamespaces(ip);
    const ns = opts.name || `toa-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    await run(ip, ['netns', 'add', ns]);
    const t = new ToaNet(ns, ip, !!opts.debug || !!process.env.TOA_NET_DEBUG);
    openNets.add(t);
    localNets.add(t);
    try {
      await Promise.all([t.startProxy(opts.mtu), t.startAgent()]);
    } catch (e) {
      await t.close();
      throw e;
    }
    return t;
  }

  get pids(): { proxy?: number; agent?: number } {
    return { proxy: this.proxy?.pid, agent: this.agent?.pid };
  }

  // ---- children -----------------------------------------------------------
  private startProxy(mtu?: number): Promise<void> {
    const py = pythonBin() as string;
    const args = ['netns', 'exec', this.ns, py, '-u', PROXY_PY, '--ns', this.ns];
    if (mtu) args.push('--mtu', String(mtu));
    if (this.debug) args.push('--debug');
    const p = spawn(this.ip, args, { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv() });
    this.proxy = p;
    p.stdin!.on('error', () => {
      /* EPIPE when it died: reported through 'exit' */
    });
    p.stderr!.on('data', (d: Buffer) => {
      this.proxyErr = (this.proxyErr + d.toString()).slice(-4000);
      if (this.debug) process.stderr.write(`[proxy ${this.ns}] ${d}`);
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`toa_proxy did not start in 10 s: ${this.proxyErr}`)), 10000);
      const rl = readline.createInterface({ input: p.stdout! });
      rl.on('line', (line) => {
        let m: any;
        try {
          m = JSON.parse(line);
        } catch {
          return;
        }
        if (m.ready !== undefined) {
          clearTimeout(timer);
          if (m.ready) resolve();
          else reject(new Error(`toa_proxy failed to start: ${m.error} ${this.proxyErr}`));
          return;
        }
        const pend = this.proxyPending.get(m.id);
        if (!pend) return;
        this.proxyPending.delete(m.id);
        clearTimeout(pend.timer);
        if (m.ok) pend.resolve(m);
        else pend.reject(new Error(`toa_proxy: ${m.error}`));
      });
      p.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      p.on('exit', (code, sig) => {
        clearTimeout(timer);
        const e = new Error(`toa_proxy exited (${code ?? sig}): ${this.proxyErr.trim()}`);
        reject(e);
        for (const [, pend] of this.proxyPending) {
          clearTimeout(pend.timer);
          pend.reject(e);
        }
        this.proxyPending.clear();
      });
    });
  }

  private startAgent(): Promise<void> {
    const a = spawn(this.ip, ['netns', 'exec', this.ns, process.execPath, AGENT_JS], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: childEnv(),
    });
    this.agent = a;
    const onOut = (d: Buffer) => {
      this.agentErr = (this.agentErr + d.toString()).slice(-4000);
      if (this.debug) process.stderr.write(`[agent ${this.ns}] ${d}`);
    };
    a.stdout!.on('data', onOut);
    a.stderr!.on('data', onOut);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`netns agent did not start in 10 s: ${this.agentErr}`)), 10000);
      a.on('message', (m: any, handle: unknown) => {
        if (m && m.ready) {
          clearTimeout(timer);
          resolve();
          return;
        }
        if (m && m.fatal) {
          this.agentErr += `\n${m.error}`;
          return;
        }
        const pend = m && this.agentPending.get(m.id);
        if (!pend) {
          // An unclaimed handle (request timed out meanwhile): close it.
          if (handle && typeof (handle as { close?: () => void }).close === 'function') (handle as { close: () => void }).close();
          return;
        }
        this.agentPending.delete(m.id);
        clearTimeout(pend.timer);
        if (m.ok) pend.resolve({ msg: m, handle });
        else {
          const e = new Error(`netns agent: ${m.error}`) as Error & { code?: string };
          if (m.code) e.code = m.code;
          pend.reject(e);
        }
      });
      a.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      a.on('exit', (code, sig) => {
        clearTimeout(timer);
        const e = new Error(`netns agent exited (${code ?? sig}): ${this.agentErr.trim()}`);
        reject(e);
        for (const [, pend] of this.agentPending) {
          clearTimeout(pend.timer);
          pend.reject(e);
        }
        this.agentPending.clear();
      });
    });
  }

  private proxyCmd(op: string, args: Record<string, unknown> = {}, timeoutMs = 10000): Promise<any> {
    if (this.closing) return Promise.reject(new Error('ToaNet is closed'));
    const p = this.proxy;
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.reject(new Error(`toa_proxy is not running: ${this.proxyErr}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.proxyPending.delete(id);
        reject(new Error(`toa_proxy: no answer to ${op} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.proxyPending.set(id, { resolve, reject, timer });
      p.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  private agentCmd(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 10000): Promise<{ msg: any; handle: any }> {
    if (this.closing) return Promise.reject(new Error('ToaNet is closed'));
    const a = this.agent;
    if (!a || !a.connected) return Promise.reject(new Error(`netns agent is not running: ${this.agentErr}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.agentPending.delete(id);
        reject(new Error(`netns agent: no answer to ${cmd} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.agentPending.set(id, { resolve, reject, timer });
      a.send({ id, cmd, ...args }, (err: Error | null) => {
        if (err) {
          clearTimeout(timer);
          this.agentPending.delete(id);
          reject(err);
        }
      });
    });
  }

  // ---- listening sockets in the namespace -----------------------------------
  /** Raw listening TCP handle (libuv TCPWrap) created in the namespace. */
  private async rawListen(opts: ListenOpts): Promise<unknown> {
    const { handle } = await this.agentCmd('listen', {
      host: opts.host,
      port: opts.port,
      ipv6Only: opts.ipv6Only,
      backlog: opts.backlog,
    });
    if (!handle) throw new Error('netns agent sent no handle');
    return handle;
  }

  private track(server: net.Server): void {
    this.servers.add(server);
    server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  private static listenOn(server: net.Server, handle: unknown, backlog?: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      server.once('error', onErr);
      server.listen(handle as net.ListenOptions, backlog ?? 511, () => {
        server.removeListener('error', onErr);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  /**
   * A net.Server, owned by this process, listening on a socket that lives in
   * the namespace (default [::]:random, dual stack).  Pass it on with
   * `otherServer.listen(handle)` (the handle is then shared: close only one),
   * or use serve().
   */
  async listenHandle(opts: ListenOpts = {}): Promise<net.Server> {
    const handle = await this.rawListen(opts);
    const server = new net.Server();
    this.track(server);
    await ToaNet.listenOn(server, handle, opts.backlog);
    return server;
  }

  /**
   * server.listen(<socket in the namespace>) for any net.Server (http, https,
   * http2, tls, net; Express via http.createServer(app), Fastify via
   * fastify.server after ready()).  Resolves with the port.  close() closes it.
   */
  async serve(server: net.Server, opts: ListenOpts = {}): Promise<number> {
    const handle = await this.rawListen(opts);
    this.track(server);
    return ToaNet.listenOn(server, handle, opts.backlog);
  }

  /**
   * Runs require(module)[fn](...args) in the agent (inside the namespace); it
   * must return or resolve a listening net.Server (or an object whose .server
   * is one).  Its listening socket is handed to this process, the agent's copy
   * is closed.  Relative module paths are resolved from process.cwd().  The
   * module must be plain JS (the agent is plain node, no ts-jest).
   */
  async listenWith(module: string, fn: string, args: unknown[] = []): Promise<net.Server> {
    const mod = module.startsWith('./') || module.startsWith('../') ? path.resolve(process.cwd(), module) : module;
    const { handle } = await this.agentCmd('listenWith', { module: mod, fn, args });
    if (!handle) throw new Error('netns agent sent no handle');
    const server = new net.Server();
    this.track(server);
    await ToaNet.listenOn(server, handle);
    return server;
  }

  // ---- proxy control ----------------------------------------------------------
  /** Rule for one client source address ('default' or '*' for the default rule). */
  async rule(client: string, rule: ToaRule | null): Promise<void> {
    await this.proxyCmd('rule', { client, rule });
  }

  async defaultRule(rule: ToaRule): Promise<void> {
    await this.proxyCmd('rule', { client: 'default', rule });
  }

  /** Remove all rules; the default rule goes back to { where: 'syn' }. */
  async clearRules(): Promise<void> {
    await this.proxyCmd('clear');
  }

  async stats(opts: { reset?: boolean } = {}): Promise<ProxyStats> {
    const r = await this.proxyCmd('stats', { reset: !!opts.reset });
    return snakeToCamel(r.stats);
  }

  /**
   * Last packets written into the TUN (ring of 1024; dir 'in': a separate ring
   * of what the kernel sent into the TUN), oldest first, parsed.  clear empties both.
   */
  async packets(opts: { dir?: 'c2s' | 's2c' | 'inj' | 'in'; limit?: number; clear?: boolean } = {}): Promise<PacketInfo[]> {
    const r = await this.proxyCmd('packets', opts as Record<string, unknown>);
    return r.packets;
  }

  async clearPackets(): Promise<void> {
    await this.proxyCmd('packets', { limit: 0, clear: true });
  }

  /** The proxy's connection table (client tuple <-> LIP:lport). */
  async conns(): Promise<ConnInfo[]> {
    const r = await this.proxyCmd('conns');
    return r.conns;
  }

  /** Bare ACKs (or SYNs / data) with a TOA from random LIP ports to RIP:port; no handshake. */
  async flood(opts: FloodOpts): Promise<{ sent: number; lip: string; rip: string }> {
    return this.proxyCmd('flood', opts as unknown as Record<string, unknown>, 10000 + opts.count);
  }

  /** Write one full IP packet into the TUN (fix: recompute IP/TCP checksums). */
  async raw(hex: string, opts: { fix?: boolean } = {}): Promise<void> {
    await this.proxyCmd('raw', { hex, fix: !!opts.fix });
  }

  /** Build a TCP packet (checksums computed) and write it into the TUN; returns its hex. */
  async craft(opts: CraftOpts): Promise<string> {
    const r = await this.proxyCmd('craft', opts as unknown as Record<string, unknown>);
    return r.hex;
  }

  async ping(): Promise<void> {
    await Promise.all([this.proxyCmd('ping'), this.agentCmd('ping')]);
  }

  // ---- client ---------------------------------------------------------------------
  async request(opts: RequestOpts): Promise<RequestResult> {
    const o: Record<string, unknown> = { ...opts };
    if (Buffer.isBuffer(opts.ca)) o.ca = opts.ca.toString('utf8');
    const timeoutMs = opts.timeoutMs ?? 5000;
    const { msg } = await this.agentCmd('request', o, timeoutMs + 3000);
    return msg.result as RequestResult;
  }

  // ---- namespace ------------------------------------------------------------------
  async sysctl(key: string, value: string | number): Promise<void> {
    await run(this.ip, ['netns', 'exec', this.ns, 'sysctl', '-q', '-w', `${key}=${value}`]);
  }

  /** Run a command inside the namespace. */
  async exec(cmd: string, args: string[] = [], timeoutMs = 10000): Promise<{ stdout: string; stderr: string }> {
    return run(this.ip, ['netns', 'exec', this.ns, cmd, ...args], timeoutMs);
  }

  /** Kills the children, closes the servers it handed out, deletes the namespace. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private closeServers(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    for (const srv of this.servers) {
      const h = srv as net.Server & { closeAllConnections?: () => void };
      try {
        if (typeof h.closeAllConnections === 'function') h.closeAllConnections();
      } catch {
        /* ignore */
      }
      if (srv.listening) srv.close();
    }
    this.servers.clear();
  }

  private async doClose(): Promise<void> {
    this.closeServers();
    const waitExit = (c: ChildProcess | null, ms: number) =>
      new Promise<void>((resolve) => {
        if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
        const t = setTimeout(() => {
          try {
            c.kill('SIGKILL');
          } catch {
            /* ignore */
          }
        }, ms);
        c.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    const agent = this.agent;
    const proxy = this.proxy;
    if (agent && agent.connected) agent.disconnect(); // agent exits on 'disconnect'
    if (proxy && proxy.stdin && !proxy.stdin.destroyed) proxy.stdin.end(); // proxy exits on EOF, deletes ns
    await Promise.all([waitExit(agent, 1500), waitExit(proxy, 1500)]);
    for (const m of [this.proxyPending, this.agentPending]) {
      for (const [, pend] of m) {
        clearTimeout(pend.timer);
        pend.reject(new Error('ToaNet closed'));
      }
      m.clear();
    }
    if (fs.existsSync(path.join(NS_DIR, this.ns))) {
      await run(this.ip, ['netns', 'delete', this.ns]).catch(() => undefined);
    }
    openNets.delete(this);
    localNets.delete(this);
  }

  /** Synchronous last-resort cleanup (process 'exit'). */
  closeSync(): void {
    for (const c of [this.agent, this.proxy]) {
      if (c && c.pid && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          /* ignore */
        }
      }
    }
    try {
      if (fs.existsSync(path.join(NS_DIR, this.ns))) execFileSync(this.ip, ['netns', 'delete', this.ns], { stdio: 'ignore' });
    } catch {
      /* ignore */
    }
    openNets.delete(this);
    localNets.delete(this);
  }
}

/**
 * One namespace for the enclosing describe block: created before its tests (and handed to
 * `use`), its rules cleared before each test, closed after the block.
 */
export function useToaNet(use: (netns: ToaNet) => void): void {
  let netns: ToaNet | undefined;
  beforeAll(async () => {
    netns = await ToaNet.create();
    use(netns);
  });
  afterAll(async () => {
    await netns?.close();
  });
  beforeEach(async () => {
    await netns?.clearRules();
  });
}
