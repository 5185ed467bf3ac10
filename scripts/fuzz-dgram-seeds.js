#!/usr/bin/env node
// Writes the UDP parsers' unit-test vectors (test/helpers/vectors/udp-vectors.ts) as the fuzzers' starting
// corpora: datagrams to fuzz/dgram_seeds/ (each prefixed with the two bytes that pick its formats
// and max_size, see dgram_header_fuzz.cc), and UOA packets to fuzz/uoa_seeds/.
// Usage: node scripts/fuzz-dgram-seeds.js [dgramDir [uoaDir]]
'use strict';
const path = require('node:path');
require('./require-ts');
const { seedDir, slug } = require('./seed-dir');

const root = path.join(__dirname, '..');
const { DGRAM_VECTORS, UOA_VECTORS } = require(path.join(root, 'test/helpers/vectors/udp-vectors.ts'));

const { outDir, write } = seedDir(path.join(root, 'fuzz/dgram_seeds'));

for (const v of DGRAM_VECTORS) {
  // max_size = byte * 4: the vector's own bound, or 1020 (well above any vector's header).
  const bound = Math.min(255, Math.ceil((v.maxSize ?? 1020) / 4));
  write(`${v.kind}-${slug(v.name)}`, [v.formats, bound, ...v.bytes]);
}
console.log(`fuzz-dgram-seeds: wrote ${DGRAM_VECTORS.length} seeds to ${path.relative(process.cwd(), outDir) || '.'}`);

// seedDir() reads its folder from argv[2]: the UOA corpus's comes third.
process.argv[2] = process.argv[3];
const uoa = seedDir(path.join(root, 'fuzz/uoa_seeds'));
for (const v of UOA_VECTORS) uoa.write(`${v.status}-${slug(v.name)}`, v.bytes);
console.log(`fuzz-dgram-seeds: wrote ${UOA_VECTORS.length} seeds to ${path.relative(process.cwd(), uoa.outDir) || '.'}`);
