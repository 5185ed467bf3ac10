// The fuzz seed scripts' common part: an output folder (argv[2] or the default) emptied of its
// old .bin seeds, and a writer that names each seed after its vector.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const slug = (name) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80);

function seedDir(defaultDir) {
  const outDir = path.resolve(process.argv[2] || defaultDir);
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of fs.readdirSync(outDir)) {
    if (name.endsWith('.bin')) fs.unlinkSync(path.join(outDir, name));
  }
  const write = (name, bytes) => fs.writeFileSync(path.join(outDir, `${name}.bin`), Buffer.from(bytes));
  return { outDir, write };
}

module.exports = { seedDir, slug };
