// The published artefact: pack it with the prebuilds, install the tarball into an empty project
// with no compiler on PATH, and use it from CommonJS, ESM and TypeScript, as a user would.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const repo = path.join(__dirname, '..', '..');
// A failure is rethrown as a plain Error: execFileSync's own carries itself under `error` (a
// timeout's), which jest's worker cannot send to the parent, and the reason would be lost.
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeout = 180_000): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout, env });
  } catch (error) {
    const e = error as { message?: string; stdout?: string; stderr?: string; signal?: string };
    throw Object.assign(new Error(`${cmd} ${args.join(' ')} failed${e.signal ? ` (${e.signal})` : ''}: ${e.message}\n${e.stderr ?? ''}`), {
      stdout: e.stdout,
      stderr: e.stderr,
    });
  }
}

const PREBUILDS = ['linux-x64/node.napi.glibc.node', 'linux-x64/node.napi.musl.node', 'linux-arm64/node.napi.glibc.node', 'linux-arm64/node.napi.musl.node'];

/** A PATH with node, npm and sh (npm runs scripts with it) only: no python3, make, cc, g++ or clang. */
function compilerlessPath(dir: string): string {
  fs.mkdirSync(dir);
  fs.symlinkSync('/bin/sh', path.join(dir, 'sh'));
  fs.symlinkSync(process.execPath, path.join(dir, 'node'));
  fs.symlinkSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim(), path.join(dir, 'npm'));
  return dir;
}

// What an installed package loaded, and what it answers: the addon's file is read from the
// process's own mappings, not from what the loader says.
const LOADED = `
const net = require('node:net');
const toa = require('node-toa');
const maps = require('node:fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.endsWith('.node')).map((l) => l.split(/\\s+/).pop());
const server = toa.enable(net.createServer((s) => {
  console.log(JSON.stringify({ maps: [...new Set(maps)], support: toa.support(), answer: toa.realRemoteAddress(s, { trustProxy: 'loopback' }) }));
  s.destroy(); server.close();
}));
server.listen(0, '127.0.0.1', () => net.connect(server.address().port, '127.0.0.1').on('error', () => {}));
`;

const CJS = `
const net = require('node:net');
const toa = require('node-toa');
require('node-toa/register');
const server = toa.enable(net.createServer((s) => {
  console.log(JSON.stringify({ fn: toa.realRemoteAddress(s), method: s.realRemoteAddress(), support: toa.support() }));
  s.destroy(); server.close();
}));
server.listen(0, '127.0.0.1', () => net.connect(server.address().port, '127.0.0.1').on('error', () => {}));
`;

const ESM = `
import net from 'node:net';
import toa, { realRemoteAddress, enable, configure } from 'node-toa';
import 'node-toa/register';
configure({ trustProxy: 'loopback' });
const server = enable(net.createServer((s) => {
  console.log(JSON.stringify({ same: toa.realRemoteAddress === realRemoteAddress, answer: realRemoteAddress(s), method: s.realRemoteAddress() }));
  s.destroy(); server.close();
}));
server.listen(0, '127.0.0.1', () => net.connect(server.address().port, '127.0.0.1').on('error', () => {}));
`;

const TS = `
import * as net from 'node:net';
import { realRemoteAddress, enable, install, installed, type RealAddress, type ToaOptions, type InstallOptions } from 'node-toa';
import 'node-toa/register';
const io: InstallOptions = { trustProxy: 'loopback', ack: 'auto', kinds: [200, 254], multiple: 'first' };
const undo: () => void = install(io);
const on: boolean = installed();
// @ts-expect-error: ack is 'auto', a boolean or TapOptions
install({ ack: 'always' });
undo(); void on;
const options: ToaOptions = { trustProxy: ['198.51.100.0/24', 'loopback'], kinds: [200, { kind: 252, layout: 'vtoa' }] };
enable(net.createServer((socket: net.Socket) => {
  const a: RealAddress = realRemoteAddress(socket, options);
  const b: RealAddress = socket.realRemoteAddress(options);
  const source: 'toa' | 'kernel' | 'proxy-protocol' | 'peer' = b.source;
  // @ts-expect-error: no such option
  realRemoteAddress(socket, { trustproxy: true });
  // @ts-expect-error: address is a string
  const n: number = a.address;
  void source; void n;
}));
`;

// An app that knows nothing of node-toa, started with the preload.
const PRELOADED = `
const net = require('node:net');
const server = net.createServer((s) => {
  const toa = require('node-toa');
  console.log(JSON.stringify({ installed: toa.installed(), enabled: toa.isEnabled(server), remote: [s.remoteAddress, s.remoteFamily] }));
  s.destroy(); server.close();
});
server.listen(0, '127.0.0.1', () => net.connect(server.address().port, '127.0.0.1').on('error', () => {}));
`;

const TSCONFIG = {
  compilerOptions: {
    module: 'node16', moduleResolution: 'node16', target: 'es2022', strict: true, noEmit: true,
    types: ['node'], typeRoots: [path.join(repo, 'node_modules', '@types')],
  },
  files: ['use.ts'],
};

describe('the npm package', () => {
  let tmp: string;
  let tarball: string;
  let app: string;
  let bare: NodeJS.ProcessEnv;

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'node-toa-pack-'));
    // Pack what is built (no scripts: another test may be reading dist/ right now), unpack it,
    // make the prebuilds there (scripts/prebuild.js of the repo: it is not shipped; cached by the
    // hash of the sources in node_modules/.cache), and pack again: the repo's own build/ is left alone.
    const first = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], repo))[0];
    run('tar', ['xzf', path.join(tmp, first.filename), '-C', tmp], tmp);
    const pkg = path.join(tmp, 'package');
    fs.symlinkSync(path.join(repo, 'node_modules'), path.join(pkg, 'node_modules'));
    // From an empty cache (a fresh CI machine) the four take minutes, here or in prebuilds.test.ts,
    // which holds the cache's lock meanwhile.
    run(process.execPath, [path.join(repo, 'scripts', 'prebuild.js')], pkg, process.env, 900_000);
    fs.rmSync(path.join(pkg, 'build'), { recursive: true, force: true });
    fs.unlinkSync(path.join(pkg, 'node_modules'));
    const second = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], pkg))[0];
    tarball = path.join(tmp, second.filename);
    (globalThis as { packFiles?: string[] }).packFiles = second.files.map((f: { path: string }) => f.path);

    app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    bare = { ...process.env, PATH: compilerlessPath(path.join(tmp, 'bin')) };
    for (const tool of ['python3', 'make', 'cc', 'c++', 'g++', 'clang++']) {
      expect(spawnSync('sh', ['-c', `command -v ${tool}`], { env: bare }).status).not.toBe(0);
    }
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], app, bare);
  }, 1_200_000);

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('carries dist, the docs, the native sources, both build files and the prebuild', () => {
    const files = (globalThis as { packFiles?: string[] }).packFiles!;
    for (const f of [
      'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/register.js', 'dist/register.d.ts',
      'native/addon.cc', 'native/toa_parse.cc', 'native/toa_parse.h', 'native/toa_sys.cc',
      'binding.gyp', 'CMakeLists.txt', 'package.json', 'README.md',
    ]) {
      expect(files).toContain(f);
    }
    for (const f of PREBUILDS) expect(files).toContain(`prebuilds/${f}`);
    expect(files).toContain('scripts/install.js');
    // The README's links and the warnings' "see node-toa/docs/..." point into the package.
    for (const f of fs.readdirSync(path.join(repo, 'docs'))) expect(files).toContain(`docs/${f}`);
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('lib/') || f.startsWith('build/'))).toBe(false);
  });

  it('installs from the prebuild with no compiler on PATH, and loads the linux-x64 glibc one', () => {
    const installed = path.join(app, 'node_modules', 'node-toa');
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
    fs.writeFileSync(path.join(app, 'loaded.cjs'), LOADED);
    const out = JSON.parse(run('node', ['loaded.cjs'], app, bare));
    expect(out.maps).toEqual([fs.realpathSync(path.join(installed, 'prebuilds', 'linux-x64', 'node.napi.glibc.node'))]);
    expect(out.support).toEqual({ addon: true, savedSyn: true });
    expect(out.answer).toMatchObject({ address: '127.0.0.1', source: 'peer' });
    const doctor = run(path.join(app, 'node_modules', '.bin', 'node-toa'), ['doctor', '--json'], app, bare);
    const addon = (JSON.parse(doctor) as { checks: { id: string }[] }).checks.find((c) => c.id === 'addon');
    expect(addon).toEqual({ id: 'addon', status: 'ok', message: `native addon loaded from prebuild: ${path.join('node_modules', 'node-toa', 'prebuilds', 'linux-x64', 'node.napi.glibc.node')}` });
  });

  it('with no prebuild that fits and no compiler, the install succeeds with one message, and the package answers peer', () => {
    // A second app, whose copy of the package lost its prebuilds: what a platform without one sees.
    const other = path.join(tmp, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'package.json'), JSON.stringify({ name: 'other', private: true }));
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', tarball], other, bare);
    const installed = path.join(other, 'node_modules', 'node-toa');
    fs.rmSync(path.join(installed, 'prebuilds'), { recursive: true });
    const rebuild = spawnSync('npm', ['rebuild', 'node-toa', '--foreground-scripts'], { cwd: other, env: bare, encoding: 'utf8', timeout: 120_000 });
    expect(rebuild.status).toBe(0);
    const lines = `${rebuild.stdout}${rebuild.stderr}`.split('\n').filter((l) => l.startsWith('node-toa:'));
    expect(lines).toEqual([expect.stringMatching(/^node-toa: no native addon \(No native build was found for platform=linux arch=x64 .*; no python3, make, a C\+\+ compiler to build one\); node-toa works without it, answering with the socket's own address \(source 'peer'\)\. To build it: install python3, make and g\+\+ .*, then npm rebuild node-toa$/)]);
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
    fs.writeFileSync(path.join(other, 'loaded.cjs'), LOADED);
    const out = JSON.parse(run('node', ['loaded.cjs'], other, bare));
    expect(out.maps).toEqual([]);
    expect(out.support).toMatchObject({ addon: false, savedSyn: false, error: expect.stringMatching(/^No native build was found/) });
    expect(out.answer).toMatchObject({ address: '127.0.0.1', family: 'IPv4', source: 'peer' });
    const doctor = spawnSync(path.join(other, 'node_modules', '.bin', 'node-toa'), ['doctor', '--json'], { cwd: other, env: bare, encoding: 'utf8', timeout: 60_000 });
    const addon = (JSON.parse(doctor.stdout) as { checks: { id: string; status: string; message: string }[] }).checks.find((c) => c.id === 'addon')!;
    expect(addon.status).toBe('fail');
    expect(addon.message).toMatch(/^the native addon did not load \(No native build was found for platform=linux arch=x64 .*\); answers are the socket's own peer; to build it: install python3, make and g\+\+/);
  });

  it('works from CommonJS', () => {
    fs.writeFileSync(path.join(app, 'use.cjs'), CJS);
    const out = JSON.parse(run('node', ['use.cjs'], app));
    expect(out.support).toEqual({ addon: true, savedSyn: true });
    expect(out.fn).toMatchObject({ address: '127.0.0.1', family: 'IPv4', source: 'peer' });
    expect(out.method).toEqual(out.fn);
  });

  it('works from ESM, with named and default exports of one module instance', () => {
    fs.writeFileSync(path.join(app, 'use.mjs'), ESM);
    const out = JSON.parse(run('node', ['use.mjs'], app));
    expect(out.same).toBe(true);
    expect(out.answer).toMatchObject({ address: '127.0.0.1', source: 'peer' });
    expect(out.method).toEqual(out.answer);
  });

  it('node -r node-toa/preload and node --import node-toa/preload work from the installed package', () => {
    fs.writeFileSync(path.join(app, 'server.cjs'), PRELOADED);
    const env = { ...process.env, NODE_TOA_TRUST_PROXY: 'loopback', NODE_TOA_ACK: 'off' };
    for (const flag of ['-r', '--import']) {
      const out = execFileSync('node', [flag, 'node-toa/preload', 'server.cjs'], { cwd: app, env, encoding: 'utf8', timeout: 30_000 });
      expect(JSON.parse(out)).toEqual({ installed: true, enabled: true, remote: ['127.0.0.1', 'IPv4'] });
    }
    const bad = spawnSync('node', ['-r', 'node-toa/preload', 'server.cjs'], { cwd: app, env: { ...env, NODE_TOA_ACK: 'sometimes' }, encoding: 'utf8', timeout: 30_000 });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe("node-toa/preload: NODE_TOA_ACK='sometimes' must be auto, on, off, sockops or packet\n");
    const files = (globalThis as { packFiles?: string[] }).packFiles!;
    for (const f of ['dist/preload.js', 'dist/preload.mjs', 'dist/preload.d.ts', 'dist/install/install.js']) expect(files).toContain(f);
  });

  it('type-checks from TypeScript, with the net.Socket declaration merging', () => {
    fs.writeFileSync(path.join(app, 'use.ts'), TS);
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    expect(() => run('node', [tsc, '-p', 'tsconfig.json'], app)).not.toThrow();
    // ...and misuse fails to compile.
    fs.writeFileSync(path.join(app, 'use.ts'), `${TS}\nrealRemoteAddress(42 as unknown as net.Socket).nope;\n`);
    let output = '';
    try {
      run('node', [tsc, '-p', 'tsconfig.json'], app);
    } catch (error) {
      output = String((error as { stdout?: string }).stdout);
    }
    expect(output).toMatch(/Property 'nope' does not exist on type 'RealAddress'/);
  });
});
