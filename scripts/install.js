// npm's `install` script. In a clone of the repository (lib/ is there): node-gyp-build as before,
// which builds from source and fails the install when it cannot (CI relies on build/Release).
// In an installed package: a prebuild that loads is enough; else a build from source when a
// compiler is there; else one line that says what to install, and success: the package then
// answers with the socket's own peer (support().addon === false) and `doctor` says why.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const nodeGypBuildBin = require.resolve('node-gyp-build/bin.js');

function nodeGypBuild(stdio) {
  return spawnSync(process.execPath, [nodeGypBuildBin], { cwd: root, stdio, env: process.env }).status;
}

function onPath(tool) {
  return (process.env.PATH || '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir || '.', tool), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

if (fs.existsSync(path.join(root, 'lib'))) {
  process.exit(nodeGypBuild('inherit') ?? 1);
}

// dist/ ships in the package; its loader applies the same choice (and the musl check) as at run time.
const { binding, loadError } = require(path.join(root, 'dist', 'addon', 'binding.js'));
if (binding !== null) process.exit(0);

const { missingAddonMessage } = require(path.join(root, 'dist', 'addon', 'build-hint.js'));
const reason = (loadError && loadError.message.split('\n')[0]) || 'unknown';
const missing = ['python3', 'make'].filter((t) => !onPath(t));
if (!['c++', 'g++', 'clang++'].some(onPath)) missing.push('a C++ compiler');
if (missing.length > 0) {
  console.warn(missingAddonMessage(`${reason}; no ${missing.join(', ')} to build one`));
  process.exit(0);
}
if (nodeGypBuild('inherit') !== 0) console.warn(missingAddonMessage(`${reason}; building from source failed (above)`));
process.exit(0);
