#!/usr/bin/env node
// Writes the PROXY parser's unit-test vectors (test/helpers/vectors/proxy-vectors.ts) to fuzz/proxy_seeds/
// as the fuzzer's starting corpus: one file per header, plus, for each whole header, a copy
// prefixed with two bytes that pick a small max_size (see proxy_parse_fuzz.cc).
// Usage: node scripts/fuzz-proxy-seeds.js [outDir]
'use strict';
const path = require('node:path');
require('./require-ts');
const { seedDir, slug } = require('./seed-dir');

const root = path.join(__dirname, '..');
const { OK_VECTORS, BAD_VECTORS, NOT_PROXY } = require(path.join(root, 'test/helpers/vectors/proxy-vectors.ts'));

const { outDir, write } = seedDir(path.join(root, 'fuzz/proxy_seeds'));


let count = 0;
for (const [prefix, vectors] of [['ok', OK_VECTORS], ['bad', BAD_VECTORS], ['not', NOT_PROXY]]) {
  for (const v of vectors) {
    write(`${prefix}-${slug(v.name)}`, v.bytes);
    count++;
    if (prefix === 'ok') {
      // max_size = 16 + (u16 % 512): just the header's own length, when that is small enough.
      const pick = Math.max(0, v.bytes.length - 16);
      if (pick < 512) {
        write(`${prefix}-${slug(v.name)}.max`, [pick >> 8, pick & 0xff, ...v.bytes]);
        count++;
      }
    }
  }
}
console.log(`fuzz-proxy-seeds: wrote ${count} seeds to ${path.relative(process.cwd(), outDir) || '.'}`);
