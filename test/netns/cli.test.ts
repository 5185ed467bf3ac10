// The `node-toa` command, spawned as an operator runs it (`node bin/node-toa ...`, on the built
// dist/): doctor's checks and exit codes, inspect's lines, HTTP answers and summary on loopback
// and, end to end, behind the netns proxy sending real TOA SYNs; its errors (busy port, no
// permission, bad CIDR, bad arguments) are one line and an exit code, never a stack trace.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { addonOrigin, explainSyncookies, hasNetRaw, toaModuleNames } from '../../lib/cli/doctor';
import { ackVerdict, checkNetRaw, checkSockops, opensWith, sockopsFailure, type AckTap } from '../../lib/cli/doctor-ack';
import { verdict } from '../../lib/cli/doctor-packets';
import { checkPreload, preloadInCommand, splitNodeOptions } from '../../lib/cli/preload-check';
import { itNeeds, findExe, firstMissing, type Missing } from '../helpers/jest/requirements';
import { ADDR, ToaNet, describeE2E, useToaNet, type ToaRule } from '../helpers/netns/toa-net';
import { installCopy, unprivileged, type Installed } from '../helpers/process/unprivileged';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'node-toa');
const onLinux = process.platform === 'linux' ? describe : describe.skip;

beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/cli/main.js is missing: run `npm run build:ts` before these tests');
  }
});

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Where the CLI runs from: the clone, or a copy nobody can read (see asNobody()). */
interface At {
  bin: string;
  cwd: string;
}
const CLONE: At = { bin: BIN, cwd: ROOT };

/** Runs the CLI to completion (bounded). `prefix` runs it through another command (setpriv, ip netns exec). */
function runCli(args: string[], prefix: string[] = [], at: At = CLONE, env: NodeJS.ProcessEnv = process.env): Finished {
  const argv = [...prefix, process.execPath, at.bin, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { cwd: at.cwd, encoding: 'utf8', timeout: 20_000, env });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectNoStack(text: string): void {
  expect(text).not.toMatch(/^\s+at /m);
}

// As nobody: setpriv drops every capability and the clone may be unreadable to nobody (a clone
// under /root), so these cases run a world-readable copy of the package (helpers/process/unprivileged.ts),
// made once for this file, when the first of them runs.
const nobody = unprivileged();
/** What is missing to run the CLI as nobody here, or null. */
const nobodyMissing: Missing = typeof nobody === 'string' ? nobody : null;
let nobodyCopy: Installed | undefined;
function asNobody(): { prefix: string[]; at: At } {
  if (typeof nobody === 'string') throw new Error(nobody);
  nobodyCopy ??= installCopy(ROOT, nobody.base);
  return { prefix: nobody.prefix, at: { bin: nobodyCopy.bin, cwd: nobodyCopy.dir } };
}
afterAll(() => nobodyCopy?.remove());

/** A running `inspect`: its stdout lines as they come, and its end. */
class Running {
  readonly lines: string[] = [];
  stderr = '';
  private waiters: Array<() => void> = [];
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      for (const w of this.waiters.splice(0)) w();
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** The first line (from `from` on) that matches, within 10 s. */
  async line(match: (line: string) => boolean, from = 0): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        throw new Error(`no matching line in 10 s; stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async json(event: string, predicate: (o: Record<string, any>) => boolean = () => true): Promise<Record<string, any>> {
    const line = await this.line((l) => {
      try {
        const o = JSON.parse(l) as Record<string, unknown>;
        return o.event === event && predicate(o);
      } catch {
        return false;
      }
    });
    return JSON.parse(line) as Record<string, any>;
  }

  /** Ctrl-C, and the exit code; kills it if it does not end in 5 s. */
  async interrupt(): Promise<number | null> {
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

function startCli(args: string[], prefix: string[] = [], at: At = CLONE): Running {
  const argv = [...prefix, process.execPath, at.bin, ...args];
  return new Running(spawn(argv[0], argv.slice(1), { cwd: at.cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Whether this process (and so a CLI it spawns as is) has CAP_NET_RAW: the ACK tap can open. */
const NET_RAW = hasNetRaw(fs.readFileSync('/proc/self/status', 'latin1')) === true;
/** Root (with every capability): the ACK tap opens, through the sock_ops program. */
const IS_ROOT = process.getuid?.() === 0;

// Root without some capabilities, as a container without them: setpriv drops them from the
// bounding set, so the CLI's node has none of them. CAP_NET_RAW opens packet sockets; CAP_BPF with
// CAP_NET_ADMIN (or CAP_SYS_ADMIN, which root also has) loads the sock_ops program.
const dropMissing: Missing =
  process.platform !== 'linux'
    ? 'capabilities are Linux only'
    : !IS_ROOT
      ? 'needs root, to drop capabilities with setpriv'
      : findExe('setpriv') === null
        ? 'needs setpriv (util-linux)'
        : null;
const without = (caps: string): string[] => (caps === '' ? [] : [findExe('setpriv') ?? 'setpriv', '--bounding-set', caps, '--inh-caps', caps]);
/** The sock_ops program loads, packet sockets do not open. */
const NO_NET_RAW = '-net_raw';
/** Packet sockets open, the sock_ops program does not load. */
const NO_BPF = '-bpf,-sys_admin';
/** Neither source of the ACK tap opens. */
const NO_TAP = '-net_raw,-bpf,-sys_admin,-net_admin';

/** runCli(), without blocking this process (several at once). */
function runCliAsync(args: string[], prefix: string[] = [], at: At = CLONE, env: NodeJS.ProcessEnv = process.env): Promise<Finished> {
  return finished([...prefix, process.execPath, at.bin, ...args], at.cwd, env);
}

/** Runs argv to its end (killed after 20 s) and collects what it wrote. */
function finished(argv: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => resolve(socket));
    socket.once('error', reject);
  });
}

function get(port: number, urlPath: string): Promise<{ status: number; body: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, localPort: req.socket?.localPort ?? 0 }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('no answer in 5 s')));
  });
}

describe('doctor: the checks on their own', () => {
  test('toa-packet: the verdict of doctor --listen for what arrived', () => {
    const seen = (syn: number, ack: number, data: number, untrustedToa = 0) => ({
      connections: syn + ack + data + untrustedToa + 1, withToa: syn + ack + data, untrustedToa, byPacket: { syn, ack, data },
    });
    expect(verdict(seen(3, 0, 0), false)).toMatchObject({ status: 'ok', message: expect.stringContaining('tags the SYN; the SYN path is enough') });
    expect(verdict(seen(0, 2, 1), true)).toMatchObject({ status: 'warn', message: expect.stringContaining('needs the ACK tap') });
    expect(verdict(seen(0, 0, 0, 2), true)).toMatchObject({ status: 'fail', message: expect.stringContaining('not in --trust') });
    expect(verdict(seen(0, 0, 0), false)).toMatchObject({ status: 'fail', message: expect.stringContaining('try --ack') });
    expect(verdict({ connections: 0, withToa: 0, untrustedToa: 0, byPacket: { syn: 0, ack: 0, data: 0 } }, true).status).toBe('warn');
  });

  test('syncookies: 0 and 1 are fine and explained, 2 fails', () => {
    expect(explainSyncookies('0\n')).toEqual({ id: 'syncookies', status: 'ok', message: expect.stringContaining('never syncookies') });
    const one = explainSyncookies('1\n');
    expect(one.status).toBe('ok');
    expect(one.message).toMatch(/only when a SYN queue overflows.*no saved SYN/);
    const two = explainSyncookies('2\n');
    expect(two.status).toBe('fail');
    expect(two.message).toMatch(/always.*TOA cannot be read; set it to 1/);
    expect(explainSyncookies('7').status).toBe('warn');
  });

  test('CAP_NET_RAW is bit 13 of CapEff', () => {
    expect(hasNetRaw('Name:\tnode\nCapEff:\t000001ffffffffff\n')).toBe(true);
    expect(hasNetRaw('CapEff:\t0000000000002000\n')).toBe(true);
    expect(hasNetRaw('CapEff:\t0000000000001000\n')).toBe(false);
    expect(hasNetRaw('CapEff:\t0000000000000000\n')).toBe(false);
    expect(hasNetRaw('Name:\tnode\n')).toBeUndefined();
  });

  test('the ACK tap: either source will do; each check warns only when the other cannot open either', () => {
    const eperm = sockopsFailure({ errno: 1, syscall: 'bpf(BPF_BTF_LOAD)' });
    expect(eperm).toBe('bpf(BPF_BTF_LOAD) failed with EPERM: it needs CAP_BPF and CAP_NET_ADMIN, or root');
    expect(sockopsFailure({ errno: 22, syscall: 'bpf(BPF_PROG_LOAD)', log: 'processed 10 insns\ninvalid func unknown#130\n' })).toBe(
      'bpf(BPF_PROG_LOAD) failed with EINVAL: the kernel refused the program (it needs Linux 5.12 or later); the verifier said: invalid func unknown#130',
    );
    expect(sockopsFailure({ errno: 2, syscall: 'open(cgroup2)' })).toBe('open(cgroup2) failed with ENOENT: this process has no cgroup v2 in sight');

    const tap = (sockops: boolean, packet: boolean): AckTap => ({ sockops, packet, ...(sockops ? {} : { sockopsError: eperm }) });
    const statuses = (t: AckTap) => [checkNetRaw(t).status, checkSockops(t).status];
    expect(statuses(tap(true, true))).toEqual(['ok', 'ok']);
    expect(statuses(tap(true, false))).toEqual(['info', 'ok']);
    expect(statuses(tap(false, true))).toEqual(['ok', 'info']);
    expect(statuses(tap(false, false))).toEqual(['warn', 'warn']);
    expect(checkNetRaw(tap(true, false)).message).toBe('CAP_NET_RAW: no, so no packet sockets; the ACK tap reads handshake ACKs through the sock_ops program instead (see sockops)');
    expect(checkSockops(tap(false, true)).message).toBe(`the sock_ops program loads: no (${eperm}); the ACK tap uses packet sockets instead (CAP_NET_RAW)`);
    expect(checkSockops(tap(false, false)).message).toMatch(/^the sock_ops program loads: no \(.*\); the ACK tap cannot use it \(grant them: setcap cap_bpf,cap_net_admin\+ep /);
    expect(checkNetRaw({}).status).toBe('info');

    // auto (what { ack: true } and the verdict line mean): the sock_ops program first, else packet sockets.
    expect([tap(true, true), tap(true, false), tap(false, true), tap(false, false)].map((t) => opensWith('auto', t))).toEqual(['sockops', 'sockops', 'packet', null]);
    expect(opensWith('packet', tap(true, false))).toBeNull();
    expect(opensWith('sockops', tap(false, true))).toBeNull();
    expect(opensWith('auto', { packet: true })).toBeUndefined(); // the sock_ops program not tried: cannot tell
    expect(ackVerdict({ source: 'packet' })).toMatch(/^TOA can be read here, from the SYN and, with the ACK tap \(packet sockets\), from the handshake ACK: /);
    expect(ackVerdict({ source: null })).toMatch(/^TOA can be read here from the SYN only: the ACK tap cannot open /);
  });

  test('vendor TOA module names from /proc/modules', () => {
    const modules = [
      'toa 16384 0 - Live 0x0000000000000000 (OE)',
      'vtoa 16384 0 - Live 0x0000000000000000',
      'ali_toa 16384 0 - Live 0x0000000000000000',
      'toa_nat64 16384 0 - Live 0x0000000000000000',
      'tap 28672 1 vhost_net, Live 0x0000000000000000',
      'nf_conntrack 172032 1 - Live 0x0000000000000000',
    ].join('\n');
    expect(toaModuleNames(modules)).toEqual(['toa', 'vtoa', 'ali_toa', 'toa_nat64']);
  });

  test('where the addon came from', () => {
    expect(addonOrigin('/app/node_modules/node-toa/prebuilds/linux-x64/node-toa.node')).toBe('prebuild');
    expect(addonOrigin('/app/node_modules/node-toa/build/Release/node_toa.node')).toBe('local build');
    expect(addonOrigin('/app/node_modules/node-toa/build/Debug/node_toa.node')).toBe('debug build');
  });
});

describe('node-toa: usage', () => {
  test('--help prints both commands and exits 0', () => {
    const r = runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('node-toa doctor');
    expect(r.stdout).toContain('node-toa inspect [--port 8080]');
  });

  test('no command: the usage, exit 2', () => {
    const r = runCli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('Usage:');
  });

  test('an unknown command or option: one line, exit 2', () => {
    const r = runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("node-toa: unknown command 'frobnicate'\n(see node-toa --help)\n");
    const o = runCli(['inspect', '--bogus']);
    expect(o.code).toBe(2);
    expect(o.stderr).toMatch(/^node-toa inspect: Unknown option '--bogus'/);
    expectNoStack(o.stderr);
  });

  test('inspect --ack --no-ack: one line, exit 2, nothing listening', () => {
    const r = runCli(['inspect', '--ack', '--no-ack', '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('node-toa inspect: --ack and --no-ack contradict each other: give one\n(see node-toa --help)\n');
    expect(r.stdout).toBe('');
  });

  test('--version is the package version', () => {
    const r = runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe((JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  });
});

describe('doctor -- COMMAND: would node-toa/preload be active, and what would it trust', () => {
  it.each([
    [['node', '-r', 'node-toa/preload', 'app.js'], {}, 'argv', '-r node-toa/preload'],
    [['node', '--require=node-toa/preload', 'app.js'], {}, 'argv', '--require=node-toa/preload'],
    [['node', '--import', 'node-toa/preload', 'app.mjs'], {}, 'argv', '--import node-toa/preload'],
    [['/usr/local/bin/node20', '--inspect', '-r', './node_modules/node-toa/dist/preload.js', 'app.js'], {}, 'argv', '-r ./node_modules/node-toa/dist/preload.js'],
    [['node', '--max-old-space-size', '512', '--import=node-toa/preload', 'app.js'], {}, 'argv', '--import=node-toa/preload'],
    [['node', 'app.js', '-r', 'node-toa/preload'], {}, null, undefined], // the app's own arguments
    [['node', '-r', 'dotenv/config', 'app.js'], {}, null, undefined],
    [['node', 'app.js'], { NODE_OPTIONS: '--max-old-space-size=512 --require node-toa/preload' }, 'NODE_OPTIONS', '--require node-toa/preload'],
    [['npm', 'start'], { NODE_OPTIONS: '--import=node-toa/preload' }, 'NODE_OPTIONS', '--import=node-toa/preload'],
    [['pm2-runtime', 'app.js'], {}, null, undefined],
  ])('%j with %j', (command, env, via, flag) => {
    expect(preloadInCommand(command, env)).toEqual({ via, node: /node/.test(command[0]), ...(flag === undefined ? {} : { flag }) });
  });

  it('splits NODE_OPTIONS as Node does (spaces, double quotes, escapes)', () => {
    expect(splitNodeOptions(' -r  "node-toa/preload" --title "my \\"app\\""')).toEqual(['-r', 'node-toa/preload', '--title', 'my "app"']);
    expect(splitNodeOptions('')).toEqual([]);
  });

  const found = () => '/app/node_modules/node-toa/dist/preload.js';
  const ids = (checks: Array<{ id: string; status: string }>) => checks.map((c) => `${c.id}:${c.status}`);

  // What doctor finds of the ACK tap's two sources (doctor-ack.ts), in each combination.
  const EPERM = 'bpf(BPF_BTF_LOAD) failed with EPERM: it needs CAP_BPF and CAP_NET_ADMIN, or root';
  const BOTH: AckTap = { source: 'sockops', sockops: true, packet: true };
  const SOCKOPS_ONLY: AckTap = { source: 'sockops', sockops: true, packet: false };
  const PACKET_ONLY: AckTap = { source: 'packet', sockops: false, sockopsError: EPERM, packet: true };
  const NEITHER: AckTap = { source: null, sockops: false, sockopsError: EPERM, packet: false };

  it('active, trusting what NODE_TOA_TRUST_PROXY says, the tap as the sock_ops program or CAP_NET_RAW allows', () => {
    const checks = checkPreload(['node', '-r', 'node-toa/preload', 'app.js'], { NODE_TOA_TRUST_PROXY: '198.51.100.0/24, loopback' }, '/app', PACKET_ONLY, found);
    expect(ids(checks)).toEqual(['preload:ok', 'preload-module:ok', 'trust:ok', 'ack:info', 'kinds:info', 'multiple:info']);
    expect(checks[2].message).toBe('trusts TOA from 198.51.100.0/24, loopback (NODE_TOA_TRUST_PROXY)');
    expect(checks[3].message).toBe(
      `NODE_TOA_ACK=auto: every TCP server also reads TOA from handshake ACKs (the ACK tap), through packet sockets, as CAP_NET_RAW is there and the sock_ops program does not load here (${EPERM})`,
    );
    expect(checks[4].message).toBe('TCP option kinds 200,249,253,254 (the default; NODE_TOA_KINDS)');
    const noCap = checkPreload(['node', '-r', 'node-toa/preload', 'app.js'], { NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: 'on', NODE_TOA_KINDS: '200,28' }, '/app', NEITHER, found);
    expect(ids(noCap)).toEqual(['preload:ok', 'preload-module:ok', 'trust:ok', 'ack:fail', 'kinds:info', 'multiple:info']);
    expect(noCap[4].message).toBe('TCP option kinds 200,28 (NODE_TOA_KINDS)');
  });

  it('NODE_TOA_ACK: what the preload would do with the ACK tap, by its own name, from both sources', () => {
    const ack = (value: string | undefined, tap: AckTap | boolean | undefined) =>
      checkPreload(['node', '-r', 'node-toa/preload', 'app.js'], { NODE_TOA_TRUST_PROXY: 'loopback', ...(value === undefined ? {} : { NODE_TOA_ACK: value }) }, '/app', tap, found).find((c) => c.id === 'ack');
    const viaSockops = (name: string) => `${name}: every TCP server also reads TOA from handshake ACKs (the ACK tap), through the sock_ops program, which loads here`;
    const viaPacket = (name: string) => `${name}: every TCP server also reads TOA from handshake ACKs (the ACK tap), through packet sockets, as CAP_NET_RAW is there`;
    const stops = 'the preload would stop the process at startup';
    // on: either source will do (the sock_ops program first); it fails only when neither opens.
    expect(ack('on', BOTH)).toEqual({ id: 'ack', status: 'ok', message: viaSockops('NODE_TOA_ACK=on') });
    expect(ack('on', SOCKOPS_ONLY)).toEqual({ id: 'ack', status: 'ok', message: viaSockops('NODE_TOA_ACK=on') });
    expect(ack('on', PACKET_ONLY)).toEqual({ id: 'ack', status: 'ok', message: `${viaPacket('NODE_TOA_ACK=on')} and the sock_ops program does not load here (${EPERM})` });
    expect(ack('on', NEITHER)).toEqual({
      id: 'ack',
      status: 'fail',
      message: `NODE_TOA_ACK=on: the sock_ops program does not load here (${EPERM}) and this process lacks CAP_NET_RAW, so neither source of the ACK tap opens: ${stops}`,
    });
    // auto (also when unset): the same choice, SYNs only (no failure) when neither opens.
    expect(ack(undefined, SOCKOPS_ONLY)).toEqual({ id: 'ack', status: 'info', message: viaSockops('NODE_TOA_ACK=auto') });
    expect(ack('auto', NEITHER)).toEqual({
      id: 'ack',
      status: 'info',
      message: `NODE_TOA_ACK=auto: the sock_ops program does not load here (${EPERM}) and this process lacks CAP_NET_RAW, so SYNs only (one warning at startup says so)`,
    });
    // sockops and packet: that source or the preload stops; the other one does not matter.
    expect(ack('sockops', SOCKOPS_ONLY)).toEqual({ id: 'ack', status: 'ok', message: viaSockops('NODE_TOA_ACK=sockops') });
    expect(ack('sockops', PACKET_ONLY)).toEqual({ id: 'ack', status: 'fail', message: `NODE_TOA_ACK=sockops: the sock_ops program does not load here (${EPERM}): ${stops}` });
    expect(ack('packet', BOTH)).toEqual({ id: 'ack', status: 'ok', message: viaPacket('NODE_TOA_ACK=packet') });
    expect(ack('packet', SOCKOPS_ONLY)).toEqual({ id: 'ack', status: 'fail', message: `NODE_TOA_ACK=packet needs CAP_NET_RAW (packet sockets), which this process lacks: ${stops}` });
    expect(ack('off', NEITHER)).toEqual({ id: 'ack', status: 'info', message: 'NODE_TOA_ACK=off: TOA is read from SYNs only' });
    // Nothing known of the sock_ops program (a bare CAP_NET_RAW answer, or nothing): never a FAIL it cannot back.
    for (const tap of [false, true, undefined]) {
      expect(ack('on', tap)).toMatchObject({ status: 'info', message: expect.stringMatching(/^NODE_TOA_ACK=on: .*\(doctor cannot tell here\)$/) });
    }
    expect(ack('packet', false)).toMatchObject({ status: 'fail' });
  });

  it('not active, not installed, nothing trusted, or a value the preload would stop at', () => {
    const off = checkPreload(['node', 'app.js'], {}, '/app', true, found);
    expect(ids(off)).toEqual(['preload:fail', 'trust:warn', 'ack:info', 'kinds:info', 'multiple:info']);
    expect(off[0].message).toBe("`node app.js` does not load node-toa/preload: start it as `node -r node-toa/preload app.js`, or set NODE_OPTIONS='--require node-toa/preload'");
    expect(ids(checkPreload(['node', '-r', 'node-toa/preload', 'app.js'], {}, '/app', true, () => undefined)).slice(0, 2)).toEqual(['preload:ok', 'preload-module:fail']);
    for (const [variable, value, id] of [['NODE_TOA_TRUST_PROXY', 'nonsense', 'trust'], ['NODE_TOA_ACK', 'yes', 'ack'], ['NODE_TOA_KINDS', '5', 'kinds'], ['NODE_TOA_MULTIPLE', 'x', 'multiple']]) {
      const bad = checkPreload(['node', '-r', 'node-toa/preload', 'app.js'], { [variable]: value }, '/app', true, found);
      expect(bad[bad.length - 1]).toMatchObject({ id, status: 'fail' });
      expect(bad[bad.length - 1].message).toContain(`${variable}='${value}'`);
      expect(bad[bad.length - 1].message).toMatch(/the preload would stop the process at startup$/);
    }
  });
});

onLinux('node-toa doctor -- COMMAND', () => {
  const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
    const e = { ...process.env, ...extra };
    for (const k of ['NODE_OPTIONS', 'NODE_TOA_TRUST_PROXY', 'NODE_TOA_ACK', 'NODE_TOA_KINDS', 'NODE_TOA_MULTIPLE']) if (!(k in extra)) delete e[k];
    return e;
  };

  test('the machine checks, then the preload\'s; exit 0 when it is active here', () => {
    const r = runCli(['doctor', '--', 'node', '-r', 'node-toa/preload', 'app.js'], [], CLONE, env({ NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: 'off' }));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/).slice(0, 2).join(' ')).slice(7)).toEqual([
      'ok preload', 'ok preload-module', 'ok trust', 'info ack', 'info kinds', 'info multiple', '`node -r',
    ]);
    expect(r.stdout).toContain(`node-toa/preload resolves from ${ROOT} to ${path.join(ROOT, 'dist', 'preload.js')}`);
    expect(lines[lines.length - 1]).toBe('`node -r node-toa/preload app.js` gets node-toa/preload: socket.remoteAddress is the client for the proxies trusted above.');
  });

  test('exit 1 when the command would not load it; --json carries the preload checks', () => {
    const r = runCli(['doctor', '--json', '--', 'node', 'app.js'], [], CLONE, env({}));
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { command: string[]; preload: Array<{ id: string; status: string }>; preloadFailed: boolean; failed: boolean };
    expect(report).toMatchObject({ command: ['node', 'app.js'], preloadFailed: true, failed: false });
    expect(report.preload.map((c) => `${c.id}:${c.status}`).slice(0, 2)).toEqual(['preload:fail', 'trust:warn']);
  });

  test('with the preload in NODE_OPTIONS and a bad value, doctor itself still runs and names it', () => {
    const r = runCli(['doctor', '--', 'npm', 'start'], [], CLONE, env({ NODE_OPTIONS: '--require node-toa/preload', NODE_TOA_MULTIPLE: 'both' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^ok {4}preload +`npm start` loads node-toa\/preload through NODE_OPTIONS/m);
    expect(r.stdout).toMatch(/^FAIL {2}multiple +NODE_TOA_MULTIPLE='both' must be one of ignore, first, last: the preload would stop the process at startup$/m);
  });

  test('-- without a command is a usage error', () => {
    const r = runCli(['doctor', '--']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^node-toa doctor: -- must be followed by the command to check/);
  });

  // The preload itself, run under the same capabilities: the sources of the taps it opened.
  const TAPS = `const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(JSON.stringify(require('node-toa').stats().taps.map((t) => t.source))); s.close(); });`;
  // What the preload does with each NODE_TOA_ACK (preload.test.ts proves these on its own): the
  // tap's source, [] for SYNs only, 'stops' when it exits 1 at startup.
  const DOES: Array<[string, Record<string, string[] | 'stops'>]> = [
    ['', { auto: ['sockops'], on: ['sockops'], sockops: ['sockops'], packet: ['packet'] }],
    [NO_NET_RAW, { auto: ['sockops'], on: ['sockops'], sockops: ['sockops'], packet: 'stops' }],
    [NO_BPF, { auto: ['packet'], on: ['packet'], sockops: 'stops', packet: ['packet'] }],
    [NO_TAP, { auto: [], on: 'stops', sockops: 'stops', packet: 'stops' }],
  ];
  itNeeds(dropMissing, 'the ack check says what the preload really does with NODE_TOA_ACK, with either source, both or neither', async () => {
    for (const [caps, does] of DOES) {
      await Promise.all(
        Object.entries(does).map(async ([value, expected]) => {
          const e = env({ NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: value });
          const [doctor, app] = await Promise.all([
            runCliAsync(['doctor', '--json', '--', 'node', '-r', 'node-toa/preload', 'app.js'], without(caps), CLONE, e),
            finished([...without(caps), process.execPath, '-r', 'node-toa/preload', '-e', TAPS], ROOT, e),
          ]);
          const what = `NODE_TOA_ACK=${value} without '${caps}': doctor ${doctor.stdout}${doctor.stderr}; the app ${app.code} ${app.stdout}${app.stderr}`;
          const ack = (JSON.parse(doctor.stdout) as { preload: Array<{ id: string; status: string; message: string }> }).preload.find((c) => c.id === 'ack');
          // By its own name, never "on" for sockops or packet.
          expect({ what, message: ack?.message.startsWith(`NODE_TOA_ACK=${value}`) }).toEqual({ what, message: true });
          if (expected === 'stops') {
            expect({ what, app: app.code, doctor: doctor.code, ack: ack?.status }).toEqual({ what, app: 1, doctor: 1, ack: 'fail' });
            expect(ack?.message).toMatch(/: the preload would stop the process at startup$/);
          } else {
            expect({ what, app: app.code, taps: app.stdout.trim(), doctor: doctor.code, ack: ack?.status }).toEqual({
              what,
              app: 0,
              taps: JSON.stringify(expected),
              doctor: 0,
              ack: value === 'auto' ? 'info' : 'ok',
            });
            expect({ what, message: ack?.message }).toEqual({
              what,
              message: expect.stringContaining(expected[0] === 'sockops' ? 'through the sock_ops program' : expected[0] === 'packet' ? 'through packet sockets' : 'so SYNs only'),
            });
          }
        }),
      );
    }
  }, 90_000);
});

onLinux('node-toa doctor', () => {
  test('one line per check; TCP_SAVE_SYN really works here, so exit 0', () => {
    const r = runCli(['doctor']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(8);
    expect(lines[0]).toMatch(/^ok {4}addon {8}native addon loaded from (local build|prebuild): /);
    expect(lines[1]).toMatch(/^ok {4}saved-syn {4}TCP_SAVE_SYN works: the kernel saved a loopback connection's SYN/);
    expect(lines[2]).toMatch(/^(ok {4}|FAIL {2})syncookies {3}net\.ipv4\.tcp_syncookies = \d/);
    expect(lines[3]).toMatch(/^(ok|info) +toa-module /);
    expect(lines[4]).toMatch(/^(ok|info|warn) +cap-net-raw +CAP_NET_RAW: (yes|no)/);
    expect(lines[5]).toMatch(/^(ok|info|warn) +sockops +the sock_ops program loads: (yes|no)/);
    expect(lines[6]).toMatch(/^(ok|info|warn) +uoa +/);
    expect(lines[7]).toMatch(/^TOA can be read here/);
  });

  test('--json: the same checks as data', () => {
    const r = runCli(['doctor', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string }>; failed: boolean };
    expect(report.failed).toBe(false);
    expect(report.checks.map((c) => c.id)).toEqual(['addon', 'saved-syn', 'syncookies', 'toa-module', 'cap-net-raw', 'sockops', 'uoa']);
    expect(report.checks.find((c) => c.id === 'saved-syn')?.status).toBe('ok');
    const syncookies = fs.readFileSync('/proc/sys/net/ipv4/tcp_syncookies', 'utf8').trim();
    expect(report.checks.find((c) => c.id === 'syncookies')?.status).toBe(syncookies === '2' ? 'fail' : 'ok');
  });

  itNeeds(nobodyMissing, 'without any capability (as nobody): a warning for each source of the ACK tap, still exit 0', () => {
    const { prefix, at } = asNobody();
    const r = runCli(['doctor'], prefix, at);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^warn {2}cap-net-raw {2}CAP_NET_RAW: no; the ACK tap \(for proxies that put TOA only in the ACK\) cannot open packet sockets/m);
    expect(r.stdout).toMatch(/^warn {2}sockops {6}the sock_ops program loads: no \(bpf\(BPF_\w+\) failed with EPERM: it needs CAP_BPF and CAP_NET_ADMIN, or root\)/m);
    expect(r.stdout).toMatch(/^TOA can be read here from the SYN only: the ACK tap cannot open/m);
  });
});

onLinux('node-toa doctor: the ACK tap\'s two sources (capabilities dropped with setpriv)', () => {
  // CapEff, the sock_ops program really loaded, and the source { ack: true } opens with (as the app's own stats() says).
  const CASES: Array<[string, AckTap, [string, string]]> = [
    ['', { packet: true, sockops: true, source: 'sockops' }, ['ok', 'ok']],
    [NO_NET_RAW, { packet: false, sockops: true, source: 'sockops' }, ['info', 'ok']],
    [NO_BPF, { packet: true, sockops: false, source: 'packet' }, ['ok', 'info']],
    [NO_TAP, { packet: false, sockops: false, source: null }, ['warn', 'warn']],
  ];
  itNeeds(dropMissing, '--json: ackTap and the checks; ok while either source opens, warn on both only when neither does', async () => {
    await Promise.all(
      CASES.map(async ([caps, ackTap, [capNetRaw, sockops]]) => {
        const r = await runCliAsync(['doctor', '--json'], without(caps));
        const report = JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string }>; failed: boolean; ackTap: AckTap };
        const status = (id: string) => report.checks.find((c) => c.id === id)?.status;
        expect({ caps, code: r.code, ackTap: report.ackTap, statuses: [status('cap-net-raw'), status('sockops')] }).toEqual({
          caps,
          code: 0,
          ackTap: ackTap.sockops ? ackTap : { ...ackTap, sockopsError: expect.stringMatching(/^bpf\(BPF_\w+\) failed with EPERM: it needs CAP_BPF and CAP_NET_ADMIN, or root$/) },
          statuses: [capNetRaw, sockops],
        });
      }),
    );
  }, 60_000);

  itNeeds(dropMissing, 'without CAP_NET_RAW where the sock_ops program loads: the ACK tap runs, and the lines say so', () => {
    const r = runCli(['doctor'], without(NO_NET_RAW));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^info {2}cap-net-raw {2}CAP_NET_RAW: no, so no packet sockets; the ACK tap reads handshake ACKs through the sock_ops program instead \(see sockops\)$/m);
    expect(r.stdout).toMatch(/^ok {4}sockops {6}the sock_ops program loads: yes; /m);
    expect(r.stdout).not.toMatch(/cannot run|cannot open/);
    expect(r.stdout.trim().split('\n').pop()).toBe(
      'TOA can be read here, from the SYN and, with the ACK tap (the sock_ops program), from the handshake ACK: run `node-toa inspect --trust <proxy range>` behind the proxy to see it arrive.',
    );
  });

  itNeeds(dropMissing, 'without the sock_ops program\'s capabilities but with CAP_NET_RAW: packet sockets, the sock_ops line says why not', () => {
    const r = runCli(['doctor'], without(NO_BPF));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok {4}cap-net-raw {2}CAP_NET_RAW: yes; /m);
    expect(r.stdout).toMatch(/^info {2}sockops {6}the sock_ops program loads: no \(bpf\(BPF_\w+\) failed with EPERM: it needs CAP_BPF and CAP_NET_ADMIN, or root\); the ACK tap uses packet sockets instead \(CAP_NET_RAW\)$/m);
    expect(r.stdout.trim().split('\n').pop()).toMatch(/^TOA can be read here, from the SYN and, with the ACK tap \(packet sockets\), from the handshake ACK: /);
  });
});

onLinux('node-toa inspect on loopback', () => {
  test('--json: a line per connection on connect (even one that sends nothing), HTTP answered with the same, summary on Ctrl-C', async () => {
    const cli = startCli(['inspect', '--json', '--port', '0', '--host', '127.0.0.1']);
    try {
      const listening = await cli.json('listening');
      // No --ack: the tap opens where it can, as the preload's NODE_TOA_ACK=auto: for root,
      // through the sock_ops program.
      expect(listening).toEqual({
        event: 'listening',
        address: '127.0.0.1',
        port: expect.any(Number),
        saveSyn: true,
        trust: [],
        ...(IS_ROOT ? { ack: true, ackSource: 'sockops' } : listening.ack === true ? { ack: true, ackSource: expect.any(String) } : { ack: false, ackOff: expect.any(String) }),
      });
      const port = listening.port as number;

      const silent = await connect(port);
      const line = await cli.json('connection', (o) => o.client.port === silent.localPort);
      expect(line).toEqual({
        event: 'connection',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        peer: { address: '127.0.0.1', port: silent.localPort, family: 'IPv4' },
        client: { address: '127.0.0.1', port: silent.localPort, family: 'IPv4' },
        source: 'peer',
        local: { address: '127.0.0.1', port },
      });

      const answer = await get(port, '/where?x=1');
      expect(answer.status).toBe(200);
      const body = JSON.parse(answer.body) as Record<string, any>;
      expect(body.client).toEqual({ address: '127.0.0.1', port: answer.localPort, family: 'IPv4' });
      expect(body.source).toBe('peer');
      expect(body.request).toEqual({ method: 'GET', url: '/where?x=1' });
      await cli.json('connection', (o) => o.client.port === answer.localPort);
      silent.destroy();

      expect(await cli.interrupt()).toBe(0);
      const summary = await cli.json('summary');
      expect(summary).toEqual({
        event: 'summary',
        connections: 2,
        withToa: 0,
        untrustedToa: 0,
        byPacket: { syn: 0, ack: 0, data: 0 },
        byPeer: { '127.0.0.1': { connections: 2, withToa: 0, untrustedToa: 0 } },
        seconds: expect.any(Number),
      });
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('text: readable lines and a summary', async () => {
    const cli = startCli(['inspect', '--port', '0', '--host', '127.0.0.1', '--trust', 'loopback']);
    try {
      const first = await cli.line((l) => l.startsWith('node-toa inspect: listening on 127.0.0.1:'));
      expect(first).toContain('TCP_SAVE_SYN on; trusting loopback');
      if (IS_ROOT) expect(first).toContain('; ACK tap on: the sock_ops program). Ctrl-C for a summary.');
      const port = Number(/127\.0\.0\.1:(\d+)/.exec(first)![1]);
      const socket = await connect(port);
      const line = await cli.line((l) => l.includes(`client 127.0.0.1:${socket.localPort}`));
      expect(line).toMatch(
        new RegExp(`^\\d{4}-\\S+Z  peer 127\\.0\\.0\\.1:${socket.localPort}  client 127\\.0\\.0\\.1:${socket.localPort}  source peer$`),
      );
      socket.destroy();
      const lineCount = cli.lines.length;
      expect(await cli.interrupt()).toBe(0);
      await cli.line((l) => l.startsWith('1 connection in'), lineCount);
      await cli.line((l) => /^ {2}127\.0\.0\.1 {2}1 connection, 0 with TOA$/.test(l), lineCount);
      expect(cli.stderr).toBe('');
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('a busy port: one line naming it, exit 1', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const r = await new Promise<Finished>((resolve) => {
        // Asynchronous: this process must keep serving the busy port meanwhile.
        const child = spawn(process.execPath, [BIN, 'inspect', '--port', String(port), '--host', '127.0.0.1'], { cwd: ROOT });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.on('exit', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `node-toa inspect: 127.0.0.1:${port} is already in use (EADDRINUSE); stop the other process or choose another --port\n`,
      );
    } finally {
      busy.close();
    }
  });

  test('a bad CIDR in --trust: the core says what is wrong, exit 2, before listening', () => {
    const r = runCli(['inspect', '--port', '0', '--trust', '198.51.100.2,10.0.0.0/33']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'node-toa inspect: --trust: invalid range on address: 10.0.0.0/33 (in ["198.51.100.2","10.0.0.0/33"])\n(see node-toa --help)\n',
    );
    expect(r.stdout).toBe('');
    const word = runCli(['inspect', '--port', '0', '--trust', 'proxies']);
    expect(word.code).toBe(2);
    expect(word.stderr).toMatch(/^node-toa inspect: --trust: invalid IP address: proxies /);
  });

  test('a bad port or kind: exit 2 naming the value', () => {
    const port = runCli(['inspect', '--port', '70000']);
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/^node-toa inspect: --port must be a port number from 0 to 65535, got '70000'/);
    const kind = runCli(['inspect', '--port', '0', '--kinds', '200,5']);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toMatch(/^node-toa inspect: --kinds: 5 is not usable as a TOA kind/);
  });

  /** The highest privileged port, or why there is none (every port is unprivileged). */
  const privileged = ((): { port: number; missing: Missing } => {
    let start = NaN;
    try {
      start = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
    } catch (e) {
      return { port: 0, missing: `cannot read net.ipv4.ip_unprivileged_port_start: ${(e as Error).message}` };
    }
    if (!(start >= 2)) return { port: 0, missing: `needs privileged ports (net.ipv4.ip_unprivileged_port_start is ${start})` };
    return { port: start - 1, missing: null };
  })();

  itNeeds(firstMissing(nobodyMissing, privileged.missing), 'no permission for a low port (as nobody): one line with the fix, exit 1', () => {
    const { prefix, at } = asNobody();
    const port = String(privileged.port);
    const r = runCli(['inspect', '--port', port, '--host', '127.0.0.1'], prefix, at);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `node-toa inspect: permission denied to listen on 127.0.0.1:${port} (ports below 1024 need root or ` +
        'CAP_NET_BIND_SERVICE) (EACCES); choose --port 8080, or grant it: setcap cap_net_bind_service+ep $(command -v node)\n',
    );
  });

  itNeeds(nobodyMissing, '--ack without CAP_NET_RAW (as nobody): one line, exit 1, nothing listening', () => {
    const { prefix, at } = asNobody();
    const r = runCli(['inspect', '--ack', '--port', '0', '--host', '127.0.0.1'], prefix, at);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^node-toa inspect: --ack: \{ ack: true \} needs the CAP_NET_RAW capability .*EPERM/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });

  itNeeds(nobodyMissing, 'no flag, with neither source of the tap (as nobody): listens, says once why the tap is off and both ways to grant it, reads SYNs', async () => {
    const { prefix, at } = asNobody();
    const cli = startCli(['inspect', '--port', '0', '--host', '127.0.0.1'], prefix, at);
    try {
      const first = await cli.line((l) => l.startsWith('node-toa inspect: listening on 127.0.0.1:'));
      expect(first).toContain('; ACK tap off: the sock_ops program does not load and this process lacks CAP_NET_RAW). Ctrl-C for a summary.');
      const why = await cli.line((l) => l.startsWith('node-toa inspect: TOA is read from the SYN only'));
      expect(why).toMatch(/ a proxy that tags the handshake ACK \(Tencent anti-DDoS and CLB, Alibaba Anti-DDoS, DPVS since 2023, Huawei\) shows none here: /);
      expect(why).toContain(
        'grant CAP_BPF and CAP_NET_ADMIN for the sock_ops program (setcap cap_bpf,cap_net_admin+ep on node; docker run --cap-add BPF --cap-add NET_ADMIN) or ' +
          'CAP_NET_RAW for packet sockets (setcap cap_net_raw+ep on node; docker run --cap-add NET_RAW).',
      );
      expect(cli.lines.indexOf(why)).toBe(cli.lines.indexOf(first) + 1);
      const port = Number(/127\.0\.0\.1:(\d+)/.exec(first)![1]);
      const socket = await connect(port);
      await cli.line((l) => l.includes(`client 127.0.0.1:${socket.localPort}  source peer`));
      socket.destroy();
      const lineCount = cli.lines.length;
      expect(await cli.interrupt()).toBe(0);
      await cli.line((l) => l.startsWith('  No TOA seen, and the ACK tap was off: TOA is read from the SYN only'), lineCount);
      // Said on stdout, once: no process warning besides.
      expect(cli.stderr).toBe('');
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('--ack as root: the tap is on, through the sock_ops program', async () => {
    expect(IS_ROOT).toBe(true); // CI runs as root: root has what either source needs
    const cli = startCli(['inspect', '--json', '--ack', '--port', '0', '--host', '127.0.0.1']);
    try {
      const listening = await cli.json('listening');
      expect(listening).toMatchObject({ ack: true, ackSource: 'sockops', saveSyn: true });
      expect(await cli.interrupt()).toBe(0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  itNeeds(dropMissing, 'no flag, without CAP_NET_RAW where the sock_ops program loads: the tap is on, and the line says through what', async () => {
    for (const json of [true, false]) {
      const cli = startCli(['inspect', ...(json ? ['--json'] : []), '--port', '0', '--host', '127.0.0.1'], without(NO_NET_RAW));
      try {
        if (json) {
          const listening = await cli.json('listening');
          expect(listening).toMatchObject({ ack: true, ackSource: 'sockops' });
          expect(listening.ackOff).toBeUndefined();
        } else {
          const first = await cli.line((l) => l.startsWith('node-toa inspect: listening on 127.0.0.1:'));
          expect(first).toContain('; ACK tap on: the sock_ops program). Ctrl-C for a summary.');
          expect(cli.lines.some((l) => l.includes('TOA is read from the SYN only'))).toBe(false);
        }
        expect(await cli.interrupt()).toBe(0);
        expect(cli.stderr).toBe('');
      } finally {
        cli.child.kill('SIGKILL');
      }
    }
  });

  itNeeds(dropMissing, 'no flag, with neither source (root without CAP_NET_RAW, CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN): ackOff names both', async () => {
    const cli = startCli(['inspect', '--json', '--port', '0', '--host', '127.0.0.1'], without(NO_TAP));
    try {
      expect(await cli.json('listening')).toMatchObject({ ack: false, ackOff: 'the sock_ops program does not load and this process lacks CAP_NET_RAW' });
      expect(await cli.interrupt()).toBe(0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('--ack-source sockops|packet as root: the tap opens through that source', async () => {
    expect(IS_ROOT).toBe(true);
    for (const source of ['packet', 'sockops']) {
      const cli = startCli(['inspect', '--json', '--ack-source', source, '--port', '0', '--host', '127.0.0.1']);
      try {
        expect(await cli.json('listening')).toMatchObject({ ack: true, ackSource: source });
        expect(await cli.interrupt()).toBe(0);
      } finally {
        cli.child.kill('SIGKILL');
      }
    }
    const text = startCli(['inspect', '--ack-source', 'packet', '--port', '0', '--host', '127.0.0.1']);
    try {
      expect(await text.line((l) => l.startsWith('node-toa inspect: listening on'))).toContain('; ACK tap on: packet sockets). Ctrl-C for a summary.');
      expect(await text.interrupt()).toBe(0);
    } finally {
      text.child.kill('SIGKILL');
    }
  });

  itNeeds(dropMissing, '--ack-source requires that source: one line naming it and why, exit 1, nothing listening', async () => {
    const [sockops, packet] = await Promise.all([
      runCliAsync(['inspect', '--ack-source', 'sockops', '--port', '0', '--host', '127.0.0.1'], without(NO_BPF)),
      runCliAsync(['inspect', '--ack', '--ack-source', 'packet', '--port', '0', '--host', '127.0.0.1'], without(NO_NET_RAW)),
    ]);
    expect(sockops).toEqual({
      code: 1,
      stdout: '',
      stderr: expect.stringMatching(
        /^node-toa inspect: --ack-source sockops: cannot open the ACK tap through the sock_ops program: bpf\(BPF_\w+\) failed with EPERM \(loading and attaching it needs CAP_BPF and CAP_NET_ADMIN, or root\)\n$/,
      ),
    });
    // Where the sock_ops program would load: packet sockets were asked for, so CAP_NET_RAW alone counts.
    expect(packet).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(/^node-toa inspect: --ack --ack-source packet: \{ ack: true \} needs the CAP_NET_RAW capability to open a packet socket .*EPERM.*\n$/) });
  });

  test('--ack-source: a bad value, or with --no-ack: one line, exit 2', () => {
    const bad = runCli(['inspect', '--ack-source', 'raw', '--port', '0']);
    expect(bad).toEqual({ code: 2, stdout: '', stderr: "node-toa inspect: --ack-source must be auto, sockops or packet, got 'raw'\n(see node-toa --help)\n" });
    const both = runCli(['inspect', '--ack-source', 'sockops', '--no-ack', '--port', '0']);
    expect(both).toEqual({ code: 2, stdout: '', stderr: 'node-toa inspect: --ack-source sockops and --no-ack contradict each other: give one\n(see node-toa --help)\n' });
  });
});

describeE2E('node-toa CLI behind a TOA proxy (network namespace)', () => {
  let netns: ToaNet;

  useToaNet((created) => (netns = created));

  const inNs = (): string[] => ['ip', 'netns', 'exec', netns.ns];

  test('inspect --json --trust <proxy>: the line and the HTTP answer show the client from the TOA SYN', async () => {
    const cli = startCli(['inspect', '--json', '--port', '0', '--trust', ADDR.lip4], inNs());
    try {
      const { port } = await cli.json('listening');
      const client = ADDR.clients4[3];
      const result = await netns.request({ protocol: 'http', vip: ADDR.vip4, port, localAddress: client, path: '/through-the-proxy' });
      expect(result.localAddress).toBe(client);
      expect(result.responses).toHaveLength(1);
      const body = JSON.parse(result.responses[0].body) as Record<string, any>;
      expect(body.client).toEqual({ address: client, port: result.localPort, family: 'IPv4' });
      expect(body.source).toBe('toa');
      expect(body.kind).toBe(200);
      expect(body.packet).toBe('syn');
      expect(body.peer.address).toBe(ADDR.lip4);
      expect(body.peer.port).not.toBe(result.localPort); // full NAT: the proxy's own port

      const line = await cli.json('connection', (o) => o.client.port === result.localPort);
      expect(line).toMatchObject({ client: { address: client, port: result.localPort }, source: 'toa', kind: 200, packet: 'syn', peer: { address: ADDR.lip4 } });
      expect(line.local).toEqual({ address: ADDR.rip4, port });

      expect(await cli.interrupt()).toBe(0);
      const summary = await cli.json('summary');
      expect(summary).toMatchObject({ connections: 1, withToa: 1, untrustedToa: 0, byPacket: { syn: 1, ack: 0, data: 0 } });
      expect(summary.byPeer).toEqual({ [ADDR.lip4]: { connections: 1, withToa: 1, untrustedToa: 0 } });
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('doctor --listen --ack: which packet the proxy tags, in one line (here the handshake ACK: the tap is needed)', async () => {
    const cli = startCli(['doctor', '--listen', '0', '--trust', ADDR.lip4, '--ack', '--count', '2', '--seconds', '20'], inNs());
    try {
      const first = await cli.line((l) => l.startsWith('node-toa doctor: listening on port'));
      const port = Number(/port (\d+)/.exec(first)![1]);
      for (const client of [ADDR.clients4[6], ADDR.clients4[7]]) {
        await netns.rule(client, { where: 'ack' });
        const r = await netns.request({ protocol: 'http', vip: ADDR.vip4, port, localAddress: client });
        expect(JSON.parse(r.responses[0].body)).toMatchObject({ source: 'toa', packet: 'ack' });
      }
      const verdict = await cli.line((l) => l.includes('toa-packet'));
      expect(verdict).toMatch(
        /^warn {2}toa-packet +2 connections: TOA in the SYN 0, the handshake ACK 2, the first data packet 0: this proxy tags the ACK, not the SYN; the application needs the ACK tap/,
      );
      expect(await cli.exited).toBe(0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('inspect --ack: the line says which packet carried the TOA, the summary tallies it and says the tap is needed', async () => {
    const cli = startCli(['inspect', '--port', '0', '--ack', '--trust', ADDR.lip4], inNs());
    try {
      const first = await cli.line((l) => l.startsWith('node-toa inspect: listening on'));
      const port = Number(/\]:(\d+)/.exec(first)![1]);
      const client = ADDR.clients4[5];
      await netns.rule(client, { where: 'ack' });
      const result = await netns.request({ protocol: 'http', vip: ADDR.vip4, port, localAddress: client });
      expect(JSON.parse(result.responses[0].body)).toMatchObject({ source: 'toa', packet: 'ack' });
      const line = await cli.line((l) => l.includes(`client ${client}:${result.localPort}`));
      expect(line).toContain(`source toa  kind 200  in the handshake ACK`);
      const lineCount = cli.lines.length;
      expect(await cli.interrupt()).toBe(0);
      await cli.line(
        (l) =>
          l ===
          '  TOA carried by: the SYN 0, the handshake ACK 1, the first data packet 0 (the application needs the ACK tap: { ack: true }, or node-toa/preload where the sock_ops program loads or CAP_NET_RAW is there)',
        lineCount,
      );
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('inspect with no ack flag (as root): the tap is on, a TOA in the handshake ACK (Tencent, Alibaba Anti-DDoS) is shown', async () => {
    expect(NET_RAW).toBe(true); // CI runs as root: this case must not pass by missing the tap
    const cli = startCli(['inspect', '--json', '--port', '0', '--trust', ADDR.lip4], inNs());
    try {
      const listening = await cli.json('listening');
      expect(listening).toMatchObject({ ack: true, ackSource: 'sockops', saveSyn: true });
      expect(listening.ackOff).toBeUndefined();
      const cases: Array<[string, ToaRule, number, string, 'IPv4' | 'IPv6']> = [
        [ADDR.clients4[2], { where: 'ack' }, 200, ADDR.vip4, 'IPv4'],
        [ADDR.clients6[2], { where: 'ack', format: 'ali-ddos' }, 249, ADDR.vip6to4, 'IPv6'],
      ];
      for (const [client, rule, kind, vip, family] of cases) {
        await netns.rule(client, rule);
        const result = await netns.request({ protocol: 'http', vip, port: listening.port as number, localAddress: client });
        expect(JSON.parse(result.responses[0].body)).toMatchObject({ client: { address: client, port: result.localPort, family }, source: 'toa', kind, packet: 'ack' });
        const line = await cli.json('connection', (o) => o.client.port === result.localPort);
        expect(line).toMatchObject({ client: { address: client }, source: 'toa', kind, packet: 'ack', peer: { address: ADDR.lip4 } });
      }
      expect(await cli.interrupt()).toBe(0);
      expect(await cli.json('summary')).toMatchObject({ connections: 2, withToa: 2, byPacket: { syn: 0, ack: 2, data: 0 } });
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  // Each source on its own reads the TOA of the handshake ACK: packet sockets as asked for, the
  // sock_ops program as auto takes it without CAP_NET_RAW.
  const BY_SOURCE: Array<[string, string[], string[], number]> = [
    ['packet', ['--ack-source', 'packet'], [], 0],
    ['sockops', [], [NO_NET_RAW], 1],
  ];
  for (const [source, flags, caps, at] of BY_SOURCE) {
    itNeeds(dropMissing, `inspect ${flags.join(' ') || `without CAP_NET_RAW`}: the ACK tap through ${source} shows a TOA in the handshake ACK`, async () => {
      const cli = startCli(['inspect', '--json', ...flags, '--port', '0', '--trust', ADDR.lip4], [...inNs(), ...caps.flatMap(without)]);
      try {
        const listening = await cli.json('listening');
        expect(listening).toMatchObject({ ack: true, ackSource: source });
        const client = ADDR.clients4[at];
        await netns.rule(client, { where: 'ack' });
        const result = await netns.request({ protocol: 'http', vip: ADDR.vip4, port: listening.port as number, localAddress: client });
        expect(JSON.parse(result.responses[0].body)).toMatchObject({ client: { address: client, port: result.localPort }, source: 'toa', kind: 200, packet: 'ack' });
        expect(await cli.interrupt()).toBe(0);
      } finally {
        cli.child.kill('SIGKILL');
      }
    });
  }

  test('inspect --no-ack: the SYN only, so the same ACK TOA is not seen (the proxy, no ignored TOA)', async () => {
    const cli = startCli(['inspect', '--json', '--no-ack', '--port', '0', '--trust', ADDR.lip4], inNs());
    try {
      const listening = await cli.json('listening');
      expect(listening).toMatchObject({ ack: false, ackOff: '--no-ack' });
      const client = ADDR.clients4[8];
      await netns.rule(client, { where: 'ack' });
      const result = await netns.request({ protocol: 'http', vip: ADDR.vip4, port: listening.port as number, localAddress: client });
      const body = JSON.parse(result.responses[0].body) as Record<string, any>;
      expect(body).toMatchObject({ source: 'peer', client: { address: ADDR.lip4 } });
      expect(body.untrustedToa).toBeUndefined();
      expect(await cli.interrupt()).toBe(0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('inspect without --trust: the TOA is shown as ignored, the client is the proxy', async () => {
    const cli = startCli(['inspect', '--port', '0'], inNs());
    try {
      const first = await cli.line((l) => l.startsWith('node-toa inspect: listening on'));
      const port = Number(/\]:(\d+)/.exec(first)![1]);
      const client = ADDR.clients4[4];
      const result = await netns.request({ protocol: 'http', vip: ADDR.vip4, port, localAddress: client });
      const body = JSON.parse(result.responses[0].body) as Record<string, any>;
      expect(body.source).toBe('peer');
      expect(body.client.address).toBe(ADDR.lip4);
      expect(body.untrustedToa).toEqual({ address: client, port: result.localPort, family: 'IPv4', kind: 200 });
      const line = await cli.line((l) => l.includes('ignored TOA'));
      expect(line).toContain(
        `source peer  (ignored TOA kind 200 saying ${client}:${result.localPort}: ${ADDR.lip4} is not trusted; add it with --trust)`,
      );
      const lineCount = cli.lines.length;
      expect(await cli.interrupt()).toBe(0);
      await cli.line((l) => l.includes('1 connection in') && l.includes('1 with TOA from an untrusted peer (ignored)'), lineCount);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('doctor where net.ipv4.tcp_syncookies = 2: saved-syn and syncookies fail, exit 1', async () => {
    await netns.sysctl('net.ipv4.tcp_syncookies', 2);
    try {
      const r = runCli(['doctor'], inNs());
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^FAIL {2}saved-syn {4}TCP_SAVE_SYN was set, but the kernel kept no SYN/m);
      expect(r.stdout).toMatch(/^FAIL {2}syncookies {3}net\.ipv4\.tcp_syncookies = 2: syncookies always/m);
      expect(r.stdout).toMatch(/^TOA cannot be read from the SYN on this machine/m);
      expectNoStack(r.stderr);
    } finally {
      await netns.sysctl('net.ipv4.tcp_syncookies', 1);
    }
  });
});
