#!/usr/bin/env node
// Writes the UDP datagram parser's unit-test vectors (test/helpers/udp-vectors.ts) to
// fuzz/dgram_seeds/ as the fuzzer's starting corpus: each datagram prefixed with the two bytes that
// pick its formats and max_size (see dgram_header_fuzz.cc).
// Usage: node scripts/fuzz-dgram-seeds.js [outDir]
'use strict';
const path = require('node:path');
require('./require-ts');
const { seedDir, slug } = require('./seed-dir');

const root = path.join(__dirname, '..');
const { DGRAM_VECTORS } = require(path.join(root, 'test/helpers/udp-vectors.ts'));

const { outDir, write } = seedDir(path.join(root, 'fuzz/dgram_seeds'));

for (const v of DGRAM_VECTORS) {
  // max_size = byte * 4: the vector's own bound, or 1020 (well above any vector's header).
  const bound = Math.min(255, Math.ceil((v.maxSize ?? 1020) / 4));
  write(`${v.kind}-${slug(v.name)}`, [v.formats, bound, ...v.bytes]);
}
console.log(`fuzz-dgram-seeds: wrote ${DGRAM_VECTORS.length} seeds to ${path.relative(process.cwd(), outDir) || '.'}`);
