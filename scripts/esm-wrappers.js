// Writes dist/<entry>.mjs (and .d.mts where the default differs) beside each CommonJS entry point: `import` then gets real named exports
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
  if ('default' in require(cjs)) writeEsmTypes(entry);
}

// TypeScript (module nodenext) reads an import of a CommonJS .d.ts as Node does: the default is
// module.exports, not its `default`. Where the .mjs default is the factory (express, fastify, koa),
// its .d.mts says so; the rest re-exports the .d.ts.
function writeEsmTypes(entry) {
  // tsc wrote `export default <name>;` (the entry's own source says it so); fastify-plugin's extra
  // runtime names (nodeToa) have no types, so the name is taken from the .d.ts, not the module.
  const dts = fs.readFileSync(path.join(dist, `${entry}.d.ts`), 'utf8');
  const same = /^export default (\w+);$/m.exec(dts)?.[1];
  if (same === undefined) throw new Error(`esm-wrappers: dist/${entry}.d.ts has no \`export default <name>;\``);
  const lines = [
    `export * from './${entry}.js';`,
    `import { ${same} } from './${entry}.js';`,
    `export default ${same};`,
    '',
  ];
  fs.writeFileSync(path.join(dist, `${entry}.d.mts`), lines.join('\n'));
}
