/*
 * What the sock_ops TOA injector needs on this machine, and its build: the BPF object and the
 * loader are compiled from the sources in test/helpers/sockops/ at test time, once per content
 * of those sources, into build/sockops/<hash>/ (git-ignored). See README.md.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { findExe } from '../jest/requirements';

const SOURCES = __dirname;
const BPF_SOURCE = path.join(SOURCES, 'toa_sockops.bpf.c');
const LOADER_SOURCE = path.join(SOURCES, 'loader.c');
const BUILD_ROOT = path.resolve(__dirname, '..', '..', '..', 'build', 'sockops');
const LIBBPF_HEADER = '/usr/include/bpf/libbpf.h';

export type Availability = { ok: true } | { ok: false; reason: string };

/** The cgroup v2 hierarchy the test cgroups go under: TOA_SOCKOPS_CGROUP_ROOT, else from /proc/mounts. */
export function cgroupRoot(): string | null {
  if (process.env.TOA_SOCKOPS_CGROUP_ROOT) return process.env.TOA_SOCKOPS_CGROUP_ROOT;
  let mounts = '';
  try {
    mounts = fs.readFileSync('/proc/mounts', 'utf8');
  } catch {
    return null;
  }
  const v2 = mounts
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup2')
    .map((f) => f[1]);
  // Hybrid hosts mount v2 at .../unified next to the v1 controllers; pure v2 hosts at /sys/fs/cgroup.
  return v2.find((m) => m.endsWith('/unified')) ?? v2[0] ?? null;
}

let availCache: Availability | null = null;

/** Root, Linux, a writable cgroup2, clang and libbpf's headers. Does not build anything. */
export function sockopsAvailable(): Availability {
  if (availCache) return availCache;
  const fail = (reason: string): Availability => (availCache = { ok: false, reason });
  // Lets the unavailable path (skip / CI failure) be exercised on a capable machine.
  if (process.env.TOA_SOCKOPS_UNAVAILABLE) return fail(`TOA_SOCKOPS_UNAVAILABLE=${process.env.TOA_SOCKOPS_UNAVAILABLE}`);
  if (process.platform !== 'linux') return fail(`cgroup sock_ops programs need Linux (platform is ${process.platform})`);
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return fail('loading a BPF program and making cgroups needs root');
  }
  const root = cgroupRoot();
  if (!root) return fail('no cgroup2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)');
  try {
    fs.accessSync(path.join(root, 'cgroup.procs'), fs.constants.W_OK);
  } catch (e) {
    return fail(`cgroup2 at ${root} is not writable: ${(e as Error).message}`);
  }
  if (!findExe('clang')) return fail('clang not found (apt-get install clang)');
  if (!fs.existsSync(LIBBPF_HEADER)) return fail(`${LIBBPF_HEADER} not found (apt-get install libbpf-dev)`);
  if (!findExe('taskset')) return fail('taskset not found (apt-get install util-linux)');
  return (availCache = { ok: true });
}

export interface SockopsBuild {
  object: string;
  loader: string;
}

let buildCache: SockopsBuild | null = null;

function compile(args: string[], what: string): void {
  try {
    execFileSync('clang', args, { stdio: 'pipe', timeout: 60_000 });
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer }).stderr || (e as Error).message).trim();
    throw new Error(`building the ${what} failed: clang ${args.join(' ')}\n${stderr}`);
  }
}

/**
 * Compiles the BPF object (clang -target bpf) and the loader (clang, -lbpf), or reuses the
 * outputs of the same sources. Outputs are written under temporary names and renamed, so two
 * jest workers building at once both end up with whole files.
 */
export function buildSockops(): SockopsBuild {
  if (buildCache) return buildCache;
  const a = sockopsAvailable();
  if (!a.ok) throw new Error(`sock_ops harness unavailable: ${a.reason}`);
  const hash = crypto.createHash('sha256');
  for (const f of [BPF_SOURCE, LOADER_SOURCE]) hash.update(fs.readFileSync(f));
  const dir = path.join(BUILD_ROOT, hash.digest('hex').slice(0, 16));
  const object = path.join(dir, 'toa_sockops.bpf.o');
  const loader = path.join(dir, 'loader');
  if (!fs.existsSync(object) || !fs.existsSync(loader)) {
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `.${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    // -target bpf does not search the multiarch include directory, where <asm/types.h> lives.
    const multiarch = execFileSync('clang', ['-print-multiarch'], { encoding: 'utf8' }).trim();
    const includes = multiarch ? ['-I', `/usr/include/${multiarch}`] : [];
    compile(['-O2', '-g', '-Wall', '-target', 'bpf', ...includes, '-c', BPF_SOURCE, '-o', object + tmp], 'BPF object');
    compile(['-O2', '-Wall', '-o', loader + tmp, LOADER_SOURCE, '-lbpf'], 'sock_ops loader');
    fs.renameSync(object + tmp, object);
    fs.renameSync(loader + tmp, loader);
    // Builds of earlier sources are never used again.
    for (const old of fs.readdirSync(BUILD_ROOT)) {
      if (old !== path.basename(dir)) fs.rmSync(path.join(BUILD_ROOT, old), { recursive: true, force: true });
    }
  }
  return (buildCache = { object, loader });
}
