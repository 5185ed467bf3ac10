// The published types, as a TypeScript user meets them: the packed package in a fresh project,
// strict, skipLibCheck false, checked by TypeScript 5.0 (the floor claimed), 5.9 and 7, under
// module nodenext (an ESM .mts and a CommonJS .cts consumer) and commonjs (each compiler's own
// default resolution: node10 for 5.x; 7 removed node10 and defaults to bundler), with Express 4 +
// Fastify 4 + Koa 2 and with Express 5 + Fastify 5 + Koa 3. A program passes only with no
// output at all: every @ts-expect-error must meet its error (TS2578 otherwise), so types that
// fell back to `any` fail too.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.join(__dirname, '..', '..');
const NM = path.join(REPO, 'node_modules');
const TSC_TIMEOUT = 240_000;

/** Compiler alias (package.json devDependencies) and the @types/node it is paired with. */
const COMPILERS = {
  // The floor: TypeScript 5.0 with @types/node 18 (Node 18 is engines' floor; today's
  // @types/node needs TypeScript >= 5.6 for its own files, Disposable and the like).
  'ts5.0': { pkg: 'typescript5.0', typesNode: 'types-node18' },
  'ts5.9': { pkg: 'typescript', typesNode: 'types-node26' },
  'ts7': { pkg: 'typescript7', typesNode: 'types-node26' },
} as const;
type Compiler = keyof typeof COMPILERS;

/** node_modules/<name> of the consumer -> the repo's node_modules/<dir>. */
const FRAMEWORKS = {
  'express4-fastify4-koa2': { express: 'express4', fastify: 'fastify4', koa: 'koa2', '@types/express': 'types-express4', '@types/koa': 'types-koa2' },
  'express5-fastify5-koa3': { express: 'express', fastify: 'fastify', koa: 'koa', '@types/express': '@types/express', '@types/koa': '@types/koa' },
} as const;
type Frameworks = keyof typeof FRAMEWORKS;
type Mode = 'nodenext' | 'commonjs';

// Left out of the consumer's node_modules: the repo's test-only @types (a user of node-toa has
// none of them), and content-disposition, which Express 5 hoists in the repo as v2 with its own
// types: they would shadow the @types/content-disposition that @types/koa uses in a Koa install.
const LEFT_OUT = new Set(['.bin', '.package-lock.json', 'content-disposition', '@types/jest', '@types/morgan', '@types/ws']);

const CORE = `
import * as http from 'node:http';
import * as net from 'node:net';
import * as toa from 'node-toa';
import { configure, createResolver, enable, install, installed, listen, realRemoteAddress, support } from 'node-toa';
import type { InstallOptions, ListenOptions, RealAddress, ToaOptions } from 'node-toa';
import 'node-toa/register';

const options: ToaOptions = { trustProxy: ['198.51.100.0/24', 'loopback'], kinds: [200, { kind: 252, layout: 'vtoa' }], multiple: 'first' };
configure(options);
const io: InstallOptions = { trustProxy: 'loopback', ack: 'auto' };
const undo: () => void = install(io);
const on: boolean = installed();
const resolve: (socket: object) => RealAddress = createResolver({ trustProxy: true });
const addon: boolean = support().addon;

const server: net.Server = enable(net.createServer((socket) => {
  const a: RealAddress = realRemoteAddress(socket, options);
  const b: RealAddress = socket.realRemoteAddress({ trustProxy: 'loopback' });
  const c: RealAddress = toa.realRemoteAddress(socket);
  const address: string = a.address;
  const port: number = b.port;
  const family: 'IPv4' | 'IPv6' = c.family;
  const source: 'toa' | 'kernel' | 'proxy-protocol' | 'peer' = a.source;
  const proxy: string | undefined = a.proxy?.address;
  const packet: 'syn' | 'ack' | 'data' | undefined = a.packet;
  const version: 1 | 2 | undefined = a.proxyProtocol?.version;
  const tlv: Buffer | undefined = a.proxyProtocol?.tlvs[0]?.value;
  const vpce: string | undefined = a.proxyProtocol?.vpceId;
  const destination: number | undefined = a.destination?.port;
  // @ts-expect-error the command is 'PROXY' or 'LOCAL'
  const command: 'HEALTH' | undefined = a.proxyProtocol?.command;
  // @ts-expect-error no such option
  realRemoteAddress(socket, { trustproxy: true });
  // @ts-expect-error the address is a string
  const n: number = a.address;
  // @ts-expect-error 'other' is not a source
  const s: 'other' = b.source;
  void [address, port, family, source, proxy, packet, version, tlv, vpce, destination, command, n, s, resolve(socket)];
}));

async function main(): Promise<void> {
  const lo: ListenOptions = { port: 0, host: '127.0.0.1', reusePort: true, proxyProtocol: { mode: 'optional', timeout: 3000 }, trustProxy: 'loopback' };
  enable(net.createServer(), { proxyProtocol: true, trustProxy: ['10.0.0.0/8'] });
  // @ts-expect-error proxyProtocol's mode is 'required' or 'optional'
  enable(net.createServer(), { proxyProtocol: { mode: 'sometimes' } });
  const web: http.Server = await listen(http.createServer(), lo);
  // @ts-expect-error the port is required
  await listen(http.createServer(), {});
  // @ts-expect-error not a server
  await listen({}, { port: 1 });
  void web;
}

// @ts-expect-error ack is 'auto', a boolean or tap options
install({ ack: 'always' });
undo();
void [on, addon, server, main];
`;

// Only an ES module has node-toa's default: module.exports itself, as Node gives it.
const CORE_ESM_ONLY = `
import toaDefault from 'node-toa';
const viaDefault: typeof toa.realRemoteAddress = toaDefault.realRemoteAddress;
void viaDefault;
`;

const EXPRESS = `
import express from 'express';
import toaMiddleware, { toaMiddleware as named, type ToaMiddlewareOptions } from 'node-toa/express';
import type { RealAddress } from 'node-toa';

const app = express();
const options: ToaMiddlewareOptions = { trustProxy: '10.0.0.0/8', setIp: true, ack: false };
app.use(toaMiddleware(options));
app.use(named());
app.get('/', (req, res) => {
  const real: RealAddress = req.realRemoteAddress();
  const ip: string | undefined = req.ip;
  res.send({ address: real.address, ip });
});
app.get('/misuse', (req) => {
  // @ts-expect-error realRemoteAddress() takes no options: they are the middleware's
  req.realRemoteAddress({ trustProxy: true });
  // @ts-expect-error the port is a number
  const p: string = req.realRemoteAddress().port;
  return p;
});
// @ts-expect-error setIp is a boolean
toaMiddleware({ setIp: 'yes' });
// @ts-expect-error an unknown option
toaMiddleware({ trustproxy: true });
`;

const FASTIFY = `
import Fastify from 'fastify';
import fastifyToa, { fastifyToa as named, type FastifyToaOptions } from 'node-toa/fastify';
import type { RealAddress } from 'node-toa';

async function main(): Promise<void> {
  const app = Fastify();
  const options: FastifyToaOptions = { trustProxy: '10.0.0.0/8', setIp: true };
  await app.register(fastifyToa, options);
  await app.register(named, { kinds: [254] });
  app.get('/', async (request) => {
    const real: RealAddress = request.realRemoteAddress();
    const port: number = real.port;
    return { address: real.address, port, ip: request.ip };
  });
  app.get('/misuse', async (_request, reply) => {
    // @ts-expect-error there is no realRemoteAddress on the reply
    return reply.realRemoteAddress();
  });
  // @ts-expect-error setIp is a boolean
  await app.register(fastifyToa, { setIp: 1 });
  // @ts-expect-error trustProxy is not a number
  await app.register(fastifyToa, { trustProxy: 3 });
}
void main;
`;

const KOA = `
import Koa from 'koa';
import toaKoa, { toaKoa as named, toaMiddleware, type ToaKoaOptions } from 'node-toa/koa';
import type { RealAddress } from 'node-toa';

const app = new Koa();
const options: ToaKoaOptions = { trustProxy: ['10.0.0.0/8'], setIp: true };
app.use(toaKoa(options));
app.use(named());
app.use(toaMiddleware());
app.use(async (ctx, next) => {
  const real: RealAddress = ctx.realRemoteAddress();
  ctx.body = { address: real.address, family: real.family, ip: ctx.ip };
  await next();
});
app.use((ctx) => {
  // @ts-expect-error the family is 'IPv4' | 'IPv6'
  const f: 'IPv5' = ctx.realRemoteAddress().family;
  // @ts-expect-error realRemoteAddress() takes no options
  ctx.realRemoteAddress({});
  return f;
});
// @ts-expect-error an unknown option
toaKoa({ setip: true });
`;

interface Program {
  name: string;
  compiler: Compiler;
  mode: Mode;
  /** null: node-toa alone, no framework in the program (nothing else brings @types/node) */
  frameworks: Frameworks | null;
}

interface Result {
  status: number | null;
  seconds: number;
  output: string;
}

function tsconfig(mode: Mode, files: string[]): object {
  // No `types`: each compiler's default (5.x: every @types package; 7: none).
  const common = { target: 'es2022', strict: true, skipLibCheck: false, noEmit: true };
  // The consumer's node_modules is made of symlinks into the repo's; preserveSymlinks resolves
  // through them as through the copies a real install has (a package's dependencies, and the one
  // @types/node, are then the consumer's, not what the repo has hoisted).
  const compilerOptions =
    mode === 'nodenext'
      ? { ...common, module: 'nodenext', moduleResolution: 'nodenext', preserveSymlinks: true }
      : { ...common, module: 'commonjs', esModuleInterop: true, preserveSymlinks: true };
  return { compilerOptions, files };
}

/** node_modules/<name> -> target, each a symlink, with the choices of this program. */
function linkModules(dir: string, choices: Record<string, string>): void {
  const nm = path.join(dir, 'node_modules');
  fs.mkdirSync(path.join(nm, '@types'), { recursive: true });
  const chosen = new Set(Object.keys(choices));
  for (const name of fs.readdirSync(NM)) {
    if (name === '@types' || LEFT_OUT.has(name) || chosen.has(name)) continue;
    fs.symlinkSync(path.join(NM, name), path.join(nm, name));
  }
  for (const name of fs.readdirSync(path.join(NM, '@types'))) {
    const full = `@types/${name}`;
    if (LEFT_OUT.has(full) || chosen.has(full)) continue;
    fs.symlinkSync(path.join(NM, '@types', name), path.join(nm, full));
  }
  for (const [name, target] of Object.entries(choices)) fs.symlinkSync(path.join(NM, target), path.join(nm, name));
}

function setUp(root: string, tarball: string, p: Program): string {
  const dir = path.join(root, p.name);
  fs.mkdirSync(path.join(dir, 'node_modules', 'node-toa'), { recursive: true });
  // A copy per program (not a symlink): node-toa's own imports of fastify and koa must find this
  // program's majors, as they do in a real install.
  execFileSync('tar', ['xzf', tarball, '-C', path.join(dir, 'node_modules', 'node-toa'), '--strip-components=1']);
  const { pkg, typesNode } = COMPILERS[p.compiler];
  linkModules(dir, { typescript: pkg, '@types/node': typesNode, ...(p.frameworks ? FRAMEWORKS[p.frameworks] : {}) });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: p.name, private: true }));
  const sources: Record<string, string> = { core: CORE, ...(p.frameworks ? { express: EXPRESS, fastify: FASTIFY, koa: KOA } : {}) };
  const files: string[] = [];
  for (const [name, source] of Object.entries(sources)) {
    if (p.mode === 'nodenext') {
      fs.writeFileSync(path.join(dir, `${name}.mts`), name === 'core' ? source + CORE_ESM_ONLY : source);
      fs.writeFileSync(path.join(dir, `${name}.cts`), source);
      files.push(`${name}.mts`, `${name}.cts`);
    } else {
      fs.writeFileSync(path.join(dir, `${name}.ts`), source);
      files.push(`${name}.ts`);
    }
  }
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig(p.mode, files), null, 2));
  return dir;
}

function tsc(dir: string): Promise<Result> {
  const start = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: TSC_TIMEOUT,
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d));
    child.stderr.on('data', (d: Buffer) => (output += d));
    child.on('close', (status, signal) => resolve({ status, seconds: Number(process.hrtime.bigint() - start) / 1e9, output: signal ? `${output}\nkilled by ${signal}` : output }));
  });
}

/** Runs the jobs `width` at a time (2 cores here; tsc 5 is single-threaded). */
async function pool<T>(jobs: (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker));
  return results;
}

// TypeScript 7 (about a second a program): every mode with every framework set, and node-toa
// alone, since 7 includes no @types/* by itself and only node-toa's own references then bring
// @types/node (5.x includes them all, so the same program there proves nothing more).
// TypeScript 5.x takes 20-30 s a program on this 2-core machine, so all 8 would take minutes:
// 5.0 checks both modes with the old majors, 5.9 both modes with the new ones, so every (mode,
// frameworks) pair still meets a 5.x compiler. 5.0 cannot check the new majors: Fastify 5's own
// types use NoInfer (TypeScript 5.4), whatever node-toa does.
const MODES: Mode[] = ['nodenext', 'commonjs'];
const [OLD, NEW] = Object.keys(FRAMEWORKS) as Frameworks[];
const CROSSED: [Compiler, Mode, Frameworks][] = [
  ['ts5.0', 'nodenext', OLD],
  ['ts5.0', 'commonjs', OLD],
  ['ts5.9', 'nodenext', NEW],
  ['ts5.9', 'commonjs', NEW],
  ...MODES.flatMap((mode): [Compiler, Mode, Frameworks][] => [['ts7', mode, OLD], ['ts7', mode, NEW]]),
];
const PROGRAMS: Program[] = [
  ...CROSSED.map(([compiler, mode, frameworks]) => ({ name: `${compiler}-${mode}-${frameworks}`, compiler, mode, frameworks })),
  ...MODES.map((mode) => ({ name: `ts7-${mode}-alone`, compiler: 'ts7' as Compiler, mode, frameworks: null })),
];

describe('the packed types in a fresh TypeScript project', () => {
  let root: string;
  let tarball: string;
  const results = new Map<string, Result>();

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'node-toa-consumer-types-'));
    // Pack what is built, without scripts (another test may be reading dist/ right now).
    const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', root], { cwd: REPO, encoding: 'utf8' }))[0];
    tarball = path.join(root, packed.filename);
    const dirs = PROGRAMS.map((p) => setUp(root, tarball, p));
    // The TypeScript 7 programs first: a second each, so the slow 5.x ones share the pool last.
    const order = PROGRAMS.map((p, i) => i).sort((a, b) => Number(PROGRAMS[b].compiler === 'ts7') - Number(PROGRAMS[a].compiler === 'ts7'));
    const out = await pool(order.map((i) => () => tsc(dirs[i])), 2);
    order.forEach((i, k) => results.set(PROGRAMS[i].name, out[k]));
  }, 900_000);

  afterAll(() => {
    // NODE_TOA_KEEP_CONSUMERS=1 keeps the projects, to run their tsc by hand after a failure.
    if (root && process.env.NODE_TOA_KEEP_CONSUMERS !== '1') fs.rmSync(root, { recursive: true, force: true });
  });

  it('the compilers are the versions the matrix names', () => {
    const version = (pkg: string): string => JSON.parse(fs.readFileSync(path.join(NM, pkg, 'package.json'), 'utf8')).version;
    expect(version('typescript5.0')).toMatch(/^5\.0\./);
    expect(version('typescript')).toMatch(/^5\.9\./);
    expect(version('typescript7')).toMatch(/^7\./);
    expect(version('types-node18')).toMatch(/^18\./);
    expect(version('types-express4')).toMatch(/^4\./);
    expect(version('@types/express')).toMatch(/^5\./);
    expect(version('types-koa2')).toMatch(/^2\./);
    expect(version('@types/koa')).toMatch(/^3\./);
    expect(version('fastify4')).toMatch(/^4\./);
    expect(version('fastify')).toMatch(/^5\./);
  });

  it.each(PROGRAMS.map((p) => [p.name]))('%s type-checks with no output', (name) => {
    const r = results.get(name)!;
    expect(`${name} (${r.seconds.toFixed(1)} s): ${r.output.trim()}`).toBe(`${name} (${r.seconds.toFixed(1)} s): `);
    expect(r.status).toBe(0);
  });
});
