// node:cluster: workers get real client addresses. End to end, a real primary runs inside the
// test's network namespace, forks real workers, and TOA SYNs come through the proxy: round-robin
// and SCHED_NONE with toa.enableCluster() in the primary, per-worker toa.listen() with
// SO_REUSEPORT (a primary that is not yours, as with pm2), and the control without either.
// On loopback: enableCluster() sets TCP_SAVE_SYN before listen(2), and its misuse errors.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { ADDR, ToaNet, describeE2E, useToaNet } from '../helpers/netns/toa-net';

const ROOT = path.join(__dirname, '..', '..');
const PRIMARY = path.join(__dirname, '..', 'helpers', 'children', 'cluster-primary.js');
const onLinux = process.platform === 'linux' ? describe : describe.skip;

interface PrimaryConfig {
  sched: 'rr' | 'none';
  enable: boolean;
  workers: number;
  listen: 'cluster' | 'toa';
  app: 'http' | 'express';
  port: number;
}

interface Warning {
  pid: number;
  code?: string;
  message: string;
}

interface Primary {
  port: number;
  pids: number[];
  warnings: Warning[];
  stop(): Promise<void>;
}

/** Runs cluster-primary.js inside the namespace; resolves once every worker listens. */
function startPrimary(netns: ToaNet, config: PrimaryConfig): Promise<Primary> {
  const env = { ...process.env };
  for (const k of ['NODE_OPTIONS', 'NODE_UNIQUE_ID', 'NODE_CHANNEL_FD', 'NODE_TOA_CLUSTER']) delete env[k];
  const child: ChildProcess = spawn('ip', ['netns', 'exec', netns.ns, process.execPath, PRIMARY, JSON.stringify(config)], {
    cwd: ROOT,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const warnings: Warning[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`cluster primary not ready in 15 s: ${stderr}`));
    }, 15000);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let m: { ready?: boolean; port?: number; pids?: number[]; warning?: Warning; error?: string };
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      if (m.warning) warnings.push(m.warning);
      if (m.error) {
        clearTimeout(timer);
        void stop();
        reject(new Error(`cluster primary: ${m.error}`));
      }
      if (m.ready) {
        clearTimeout(timer);
        resolve({ port: m.port!, pids: m.pids!, warnings, stop });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`cluster primary exited (${code}): ${stderr}`));
    });
  });
}

interface Answer {
  pid: number;
  real: { address: string; port: number; family: string; source: string; proxy?: { address: string } };
}

describeE2E('node:cluster end to end, TOA SYNs through the proxy', () => {
  let netns: ToaNet;
  let primary: Primary | undefined;
  useToaNet((created) => (netns = created));
  afterEach(async () => {
    await primary?.stop();
    primary = undefined;
  });

  async function ask(vip: string, localAddress: string, count = 1) {
    const r = await netns.request({ protocol: 'http', vip, port: primary!.port, localAddress, count });
    expect(r.responses).toHaveLength(count);
    return { ...r, answers: r.responses.map((x) => JSON.parse(x.body) as Answer) };
  }

  /** Connections from every client, IPv4 and IPv6 proxies: each answer is that client. */
  async function expectClientsEverywhere(): Promise<Set<number>> {
    const pids = new Set<number>();
    const cases: [string, string, string][] = [
      ...ADDR.clients4.slice(0, 4).map((c) => [ADDR.vip4, c, 'IPv4'] as [string, string, string]),
      ...ADDR.clients6.slice(0, 2).map((c) => [ADDR.vip6, c, 'IPv6'] as [string, string, string]),
    ];
    for (const [vip, client, family] of cases) {
      const { answers, localPort } = await ask(vip, client);
      expect(answers[0].real).toMatchObject({ address: client, port: localPort, family, source: 'toa' });
      pids.add(answers[0].pid);
    }
    return pids;
  }

  const base: PrimaryConfig = { sched: 'rr', enable: true, workers: 2, listen: 'cluster', app: 'http', port: 0 };

  it('round-robin (the default) with enableCluster() in the primary: every worker reads the client', async () => {
    primary = await startPrimary(netns, base);
    const pids = await expectClientsEverywhere();
    // Round-robin hands connections to the workers in turn: both answered.
    expect([...pids].sort()).toEqual([...primary.pids].sort());
    const { answers, localPort } = await ask(ADDR.vip4, ADDR.clients4[5], 3);
    for (const a of answers) expect(a).toEqual(answers[0]);
    expect(answers[0].real).toMatchObject({ address: ADDR.clients4[5], port: localPort, source: 'toa' });
    expect(primary.warnings).toEqual([]);
  });

  it('SCHED_NONE with enableCluster(): the workers accept on the shared socket and read the client', async () => {
    primary = await startPrimary(netns, { ...base, sched: 'none' });
    const pids = await expectClientsEverywhere();
    for (const pid of pids) expect(primary.pids).toContain(pid);
    expect(primary.warnings).toEqual([]);
  });

  it('Express in round-robin workers: the client, and no warning from the middleware', async () => {
    primary = await startPrimary(netns, { ...base, app: 'express' });
    await expectClientsEverywhere();
    expect(primary.warnings).toEqual([]);
  });

  it('no enableCluster(), each worker toa.listen() with SO_REUSEPORT (a pm2-style primary): the client', async () => {
    primary = await startPrimary(netns, { ...base, enable: false, listen: 'toa', port: 18080 });
    expect(primary.port).toBe(18080);
    const pids = await expectClientsEverywhere();
    for (const pid of pids) expect(primary.pids).toContain(pid);
    expect(primary.warnings).toEqual([]);
  });

  it('(control) round-robin without enableCluster(): no saved SYN, the proxy; Express says what to do', async () => {
    primary = await startPrimary(netns, { ...base, enable: false, app: 'express' });
    const { answers } = await ask(ADDR.vip4, ADDR.clients4[6]);
    expect(answers[0].real).toMatchObject({ address: ADDR.lip4, source: 'peer' });
    // The first request reached one worker; its middleware tried enable() and explained.
    await new Promise((r) => setTimeout(r, 100));
    expect(primary.warnings.map((w) => w.code)).toContain('NODE_TOA_NO_LISTENING_FD');
    expect(primary.warnings.find((w) => w.code === 'NODE_TOA_NO_LISTENING_FD')!.message).toContain('enableCluster()');
  });
});

/** Runs a script in a fresh node process in the repository (node-toa resolves to dist/). */
function node(script: string, env: Record<string, string> = {}): unknown {
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 15000 });
  if (r.status !== 0) throw new Error(`node -e failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

onLinux('enableCluster() in a primary, on loopback', () => {
  // The addon, by its path inside dist/: the test reads the socket option back from the kernel.
  const prelude = `
    const net = require('net');
    const toa = require('node-toa');
    const binding = require('./dist/addon/binding.js').binding;
    const saveSyn = (server) => binding.getSaveSyn(server._handle.fd);`;

  it('a server the primary listens on has TCP_SAVE_SYN as soon as listen() returns (set before listen(2))', () => {
    const out = node(`${prelude}
      toa.enableCluster();
      const a = net.createServer(); a.listen(0);               // no host: Node listens synchronously
      const b = net.createServer(); b.listen(0, '127.0.0.1');  // a host: after a lookup
      const now = saveSyn(a);
      b.on('listening', () => {
        console.log(JSON.stringify({ now, b: saveSyn(b), env: process.env.NODE_TOA_CLUSTER }));
        a.close(); b.close();
      });`);
    expect(out).toEqual({ now: 1, b: 1, env: '1' });
  });

  it('(control) without enableCluster() the same server has none', () => {
    const out = node(`${prelude}
      const a = net.createServer(); a.listen(0);
      console.log(JSON.stringify({ now: saveSyn(a) })); a.close();`);
    expect(out).toEqual({ now: 0 });
  });

  it("SCHED_NONE's bound, not yet listening, handle gets it too (net._createServerHandle)", () => {
    const out = node(`${prelude}
      toa.enableCluster();
      const handle = net._createServerHandle('127.0.0.1', 0, 4);
      console.log(JSON.stringify({ saveSyn: binding.getSaveSyn(handle.fd), listening: binding.isTcpListener(handle.fd) }));
      handle.close();`);
    expect(out).toEqual({ saveSyn: 1, listening: false });
  });

  it('listeners the primary had before the call get it too, with one warning', () => {
    const out = node(`${prelude}
      const codes = [];
      process.on('warning', (w) => codes.push(w.code));
      const a = net.createServer(); a.listen(0);
      const before = saveSyn(a);
      toa.enableCluster();
      toa.enableCluster(); // a second call changes nothing
      setImmediate(() => { console.log(JSON.stringify({ before, after: saveSyn(a), codes })); a.close(); });`);
    expect(out).toEqual({ before: 0, after: 1, codes: ['NODE_TOA_CLUSTER_LATE'] });
  });

  it('unix sockets of the primary are left alone, silently', () => {
    const out = node(`${prelude}
      const codes = [];
      process.on('warning', (w) => codes.push(w.code));
      toa.enableCluster();
      const p = require('path').join(require('os').tmpdir(), 'node-toa-' + process.pid + '.sock');
      const u = net.createServer(); u.listen(p, () => {
        setImmediate(() => { console.log(JSON.stringify({ listening: u.listening, codes })); u.close(); });
      });`);
    expect(out).toEqual({ listening: true, codes: [] });
  });

  it('throws in a worker, saying where to call it and what to do under pm2', () => {
    // cluster.fork() needs a script file to run; this one lives in a temporary directory.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-toa-cluster-'));
    const script = path.join(dir, 'worker-call.js');
    fs.writeFileSync(
      script,
      `const cluster = require('cluster');
      const toa = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
      if (cluster.isPrimary) {
        const w = cluster.fork();
        w.on('message', (m) => { console.log(JSON.stringify(m)); w.kill(); });
      } else {
        try { toa.enableCluster(); process.send({ threw: false }); }
        catch (e) { process.send({ threw: true, name: e.name, message: e.message, primaryEnabled: toa.clusterPrimaryEnabled() }); }
      }`,
    );
    let out: unknown;
    try {
      const r = spawnSync(process.execPath, [script], { cwd: ROOT, encoding: 'utf8', timeout: 15000 });
      out = JSON.parse(r.stdout || 'null');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(out).toEqual({
      threw: true,
      name: 'Error',
      message:
        'enableCluster() must be called in the cluster primary (cluster.isPrimary), before cluster.fork(); workers need no call. ' +
        'Where the primary is not yours (pm2), use toa.listen(server, { port, reusePort: true }) in each worker.',
      primaryEnabled: false,
    });
  });
});
