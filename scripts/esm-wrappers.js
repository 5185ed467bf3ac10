// Writes dist/<entry>.mjs beside each CommonJS entry point: `import` then gets real named exports
// and the very same module instance as `require` (one cache, one set of defaults).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const entries = ['index', 'register', 'express', 'fastify', 'koa'];
// Entry points that only do something when loaded (no exports): the wrapper imports them, and
// this script must not load them itself (the preload would install node-toa in the build).
const sideEffectOnly = ['preload'];

for (const entry of sideEffectOnly) {
  if (!fs.existsSync(path.join(dist, `${entry}.js`))) continue;
  fs.writeFileSync(path.join(dist, `${entry}.mjs`), `import './${entry}.js';\n`);
}

for (const entry of entries) {
  const cjs = path.join(dist, `${entry}.js`);
  if (!fs.existsSync(cjs)) continue;
  const names = Object.keys(require(cjs)).filter((n) => n !== 'default' && n !== '__esModule');
  const lines = [`import mod from './${entry}.js';`];
  if (names.length > 0) lines.push(`export const { ${names.join(', ')} } = mod;`);
  lines.push(`export default ${'default' in require(cjs) ? 'mod.default' : 'mod'};`, '');
  fs.writeFileSync(path.join(dist, `${entry}.mjs`), lines.join('\n'));
}
