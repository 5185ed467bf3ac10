// The cache of scripts/prebuild.js, in node_modules/.cache: a build is kept under its recipe (what
// decides it before the compiler runs: toolchain, target, binding.gyp, the scripts) and is taken
// again only while every file the compiler read still has the bytes it had.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const sha = (data) => crypto.createHash('sha256').update(data).digest('hex');

function fileSha(file) {
  try {
    return sha(fs.readFileSync(file));
  } catch {
    return 'missing';
  }
}

/**
 * Every file the compiler read, from the dependency files -MMD left in node-gyp's build/ (make's own
 * record of what a rebuild depends on), as paths relative to the package where they are in it, so
 * a copy of the package checks its own files. `scratch` is the real path node-gyp built in, made of
 * links to the package's entries.
 */
function compilerInputs(scratch, root) {
  const buildDir = path.join(scratch, 'build');
  const deps = path.join(buildDir, 'Release', '.deps');
  const realRoot = fs.realpathSync(root);
  const inputs = new Set();
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      if (!entry.name.endsWith('.o.d')) continue;
      // make's command line ("cmd_... := ..."), then "object: dep dep \<newline> dep", then "dep :" each.
      const text = fs.readFileSync(p, 'utf8').split('\n').filter((l) => !l.startsWith('cmd_')).join(' ');
      for (const dep of text.slice(text.indexOf(': ') + 2).replace(/\\\s/g, ' ').split(/\s+/)) {
        if (dep === '' || dep.endsWith(':')) continue;
        const abs = path.resolve(buildDir, dep);
        if (abs.startsWith(scratch + path.sep)) {
          inputs.add(path.relative(scratch, abs));
        } else {
          const real = fs.realpathSync(abs);
          inputs.add(real.startsWith(realRoot + path.sep) ? path.relative(realRoot, real) : real);
        }
      }
    }
  };
  walk(deps);
  if (inputs.size === 0) throw new Error(`prebuild: node-gyp left no dependency files in ${deps}`);
  return [...inputs].sort();
}

const hashes = (inputs, root) => Object.fromEntries(inputs.map((f) => [f, fileSha(path.resolve(root, f))]));
const manifestOf = (cacheDir, key) => path.join(cacheDir, `${key}.json`);

function readManifest(cacheDir, key) {
  try {
    return JSON.parse(fs.readFileSync(manifestOf(cacheDir, key), 'utf8'));
  } catch {
    return null;
  }
}

/** The cached build for `key` whose inputs are unchanged in `root`, or null. */
function lookup(cacheDir, key, root) {
  const manifest = readManifest(cacheDir, key);
  if (manifest === null) return null;
  const now = hashes(Object.keys(manifest.inputs), root);
  const file = path.join(cacheDir, manifest.file);
  return Object.entries(manifest.inputs).every(([f, h]) => now[f] === h) && fs.existsSync(file) ? file : null;
}

/** Keeps `built` under `key` with the hashes of its inputs (the one build kept per key); its cache path. */
function store(cacheDir, key, root, built, inputs) {
  const manifest = { inputs: hashes(inputs, root) };
  manifest.file = `${key}-${sha(JSON.stringify(manifest.inputs)).slice(0, 16)}.node`;
  fs.copyFileSync(built, path.join(cacheDir, manifest.file));
  const previous = readManifest(cacheDir, key);
  const tmp = `${manifestOf(cacheDir, key)}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(manifest, null, 1));
  fs.renameSync(tmp, manifestOf(cacheDir, key));
  if (previous && previous.file !== manifest.file) fs.rmSync(path.join(cacheDir, previous.file), { force: true });
  return path.join(cacheDir, manifest.file);
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

module.exports = { sha, fileSha, compilerInputs, lookup, store, withLock };
