#!/usr/bin/env node
// Writes the parser's unit-test vectors (test/helpers/vectors/parse-vectors.ts) to fuzz/seeds/ as the
// fuzzer's starting corpus: one file per packet, plus, for each vector that lists a TOA-shaped option, a copy
// prefixed with [kind, layouts] for the fuzz target's input-chosen table (see toa_parse_fuzz.cc).
// Usage: node scripts/fuzz-seeds.js [outDir]
'use strict';
const path = require('node:path');
require('./require-ts');
const { seedDir, slug } = require('./seed-dir');

const root = path.join(__dirname, '..');
const { ALL_VECTORS, FULL_SYN_V4, FULL_SYN_V6, TABLES } = require(path.join(root, 'test/helpers/vectors/parse-vectors.ts'));
const { compileKinds } = require(path.join(root, 'lib/core/kinds.ts'));

const { outDir, write } = seedDir(path.join(root, 'fuzz/seeds'));


let count = 0;
for (const vector of ALL_VECTORS) {
  write(slug(vector.name), vector.packet);
  count++;
  const [toa] = vector.expected.options ?? [];
  if (toa) {
    const table = compileKinds(TABLES[vector.table]);
    write(`${slug(vector.name)}.table`, [toa.kind, table[toa.kind], ...vector.packet]);
    count++;
  }
}
write('full-syn-v4', FULL_SYN_V4);
write('full-syn-v6', FULL_SYN_V6);
count += 2;
console.log(`fuzz-seeds: wrote ${count} seeds to ${path.relative(process.cwd(), outDir) || '.'}`);
