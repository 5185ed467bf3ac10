#!/usr/bin/env node
// What the tests need from the machine, set up by the test command itself (`npm test` runs this
// before jest), so that a fresh clone needs only `npm install` then `npm test`: the Debian
// packages below, when missing, if this runs as root where apt is (`apt-get update` once, then
// `apt-get install -y --no-install-recommends`), and the Node binaries of the matrix
// (scripts/node-matrix.js). It prints one line per thing it did, nothing when all is there. What it
// cannot get here (not root, no apt, not linux-x64) it names in one line with the way to get it;
// with CI=true that fails the command (a test that cannot run fails there anyway), elsewhere the
// tests that need it skip and say why.
//
//   node scripts/test-setup.js          what `npm test` needs
//   node scripts/test-setup.js --fuzz   and what `npm run fuzz` needs (.ci/run)
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const matrix = require('./node-matrix.js');

/**
 * The one list of the Debian packages the project's checks need, each with what needs it (.ci/run
 * has no copy: it runs this script). Most are in the Debian 12 image CI runs on; the others are
 * installed on a first run.
 */
const PACKAGES = [
  ['iproute2', 'npm test', 'ip netns, tun devices: the end-to-end harness'],
  ['python3', 'npm test', 'the user-space full-NAT proxy (test/helpers/netns/toa_proxy.py), node-gyp'],
  ['make', 'npm test', 'node-gyp, cmake-js'],
  ['g++', 'npm test', 'node-gyp, cmake-js, the ASan build'],
  ['cmake', 'npm test', 'test/build/cmake-build.test.ts, the ASan and fuzz builds'],
  ['openssl', 'npm test', 'TLS certificates of the HTTPS and producer tests'],
  ['curl', 'npm test', 'a real client in the sock_ops cgroup and behind the producers'],
  ['binutils', 'npm test', 'readelf: test/build/prebuilds.test.ts'],
  ['util-linux', 'npm test', 'unshare, nsenter'],
  ['clang', 'npm test', 'the sock_ops BPF programs (test/helpers/sockops/, npm run build:bpf), fuzz targets'],
  ['libbpf-dev', 'npm test', 'bpf_helpers.h for the sock_ops BPF programs'],
  ['llvm', 'npm test', 'llvm-objcopy, llvm-readelf: npm run build:bpf (test/build/bpf-program.test.ts)'],
  ['haproxy', 'npm test', 'a real PROXY protocol producer (test/loopback/proxy-producers.test.ts)'],
  ['nginx', 'npm test', 'a real PROXY protocol producer (test/loopback/proxy-producers.test.ts)'],
  ['libnginx-mod-stream', 'npm test', "nginx's stream module"],
  ['qemu-user-static', 'npm test', 'runs the arm64 prebuild under a real arm64 Node'],
  ['libc6-arm64-cross', 'npm test', 'the arm64 sysroot qemu-user runs the arm64 Node in'],
  ['libstdc++6-arm64-cross', 'npm test', 'the arm64 sysroot'],
  ['libgcc-s1-arm64-cross', 'npm test', 'the arm64 sysroot'],
  ['musl', 'npm test', "musl's dynamic linker for the musl prebuilds"],
  ['libclang-rt-14-dev', 'npm run fuzz', "libFuzzer's runtime"],
].map(([name, usedBy, why]) => ({ name, usedBy, why }));

const say = (line) => process.stderr.write(`test-setup: ${line}\n`);
const seconds = (start) => `${Math.round((Date.now() - start) / 1000)} s`;

/** The first `name` on PATH, or null. */
function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir || '.', name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** The packages of `names` dpkg does not have installed. */
function missingPackages(names) {
  // One query for all; an unknown name is an error line on stderr and no line on stdout.
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Abbrev}\n', ...names], { encoding: 'utf8' });
  const installed = new Set(
    r.stdout.split('\n').filter((line) => / ii ?$/.test(line)).map((line) => line.split(' ')[0].split(':')[0]),
  );
  return names.filter((name) => !installed.has(name));
}

/** Runs an apt command quietly; on failure, throws with the end of its output. */
function apt(args) {
  const r = spawnSync('apt-get', args, {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`\`apt-get ${args.join(' ')}\` failed (${r.error?.message ?? `exit ${r.status}`}):\n${tail}`);
  }
}

// Debian starts a service when its package is installed (nginx on port 80, haproxy); the tests
// start their own, with their own configuration. An absent policy-rc.d is put there for the
// install (101: "action not allowed", as Debian's container images have it) and removed after.
const POLICY_RC_D = '/usr/sbin/policy-rc.d';

function installPackages(names) {
  const start = Date.now();
  const policy = !fs.existsSync(POLICY_RC_D);
  if (policy) fs.writeFileSync(POLICY_RC_D, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    apt(['update', '-qq']);
    apt(['install', '-y', '-qq', '--no-install-recommends', ...names]);
  } finally {
    if (policy) fs.rmSync(POLICY_RC_D, { force: true });
  }
  say(`installed ${names.join(' ')} (apt-get, ${seconds(start)}; services not started)`);
}

/** Sets up what it can; says in one line each thing it cannot, and returns how many there were. */
function setUp({ fuzz }) {
  let cannot = 0;
  const tell = (line) => {
    say(line);
    cannot += 1;
  };
  const names = PACKAGES.filter((p) => p.usedBy === 'npm test' || fuzz).map((p) => p.name);
  if (process.platform !== 'linux' || !onPath('dpkg-query')) {
    tell(`not Debian (no dpkg-query): install ${names.join(' ')} or their equivalents yourself`);
  } else {
    const missing = missingPackages(names);
    const list = missing.join(' ');
    const root = process.getuid?.() === 0;
    const hasApt = onPath('apt-get') !== null;
    if (missing.length === 0) {
      // all there
    } else if (root && hasApt) {
      try {
        installPackages(missing);
      } catch (e) {
        tell(`could not install ${list}: ${e.message}`);
      }
    } else if (hasApt) {
      tell(`missing Debian packages ${list}: run \`sudo apt-get install --no-install-recommends ${list}\` (or \`npm test\` as root, which does)`);
    } else {
      tell(`missing Debian packages ${list}, and no apt-get here to install them: install them with this system's package manager`);
    }
  }

  const absent = matrix.absentMajors();
  if (absent.length === 0) {
    // all there
  } else if (process.platform !== 'linux' || process.arch !== 'x64') {
    tell(`no Node matrix: ${matrix.missingNode(absent[0])}`);
  } else {
    try {
      matrix.install(absent); // one line per binary
    } catch (e) {
      tell(`could not fetch the Node matrix into ${matrix.CACHE}: ${e.message.replace(/^node-matrix: /, '')}`);
    }
  }
  return cannot;
}

module.exports = { PACKAGES, missingPackages, setUp };

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args.some((a) => a !== '--fuzz')) {
    process.stderr.write('usage: node scripts/test-setup.js [--fuzz]\n');
    process.exit(2);
  }
  const cannot = setUp({ fuzz: args.includes('--fuzz') });
  // With CI=true a test that cannot run fails: fail here, once, with the reason, rather than in every
  // test that needed it. Elsewhere those tests skip, each with its reason.
  if (cannot > 0 && process.env.CI === 'true') process.exit(1);
}
