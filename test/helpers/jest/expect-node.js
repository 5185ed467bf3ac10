// jest globalSetup: the Node this run was meant to be on, for test/engines.test.ts. .ci/run names
// it (NODE_TOA_EXPECT_NODE: the Node it put first on PATH); otherwise it is the `node` on PATH,
// the one `npm test` and jest's own `#!/usr/bin/env node` start. Set here, in jest's first process,
// before the workers are forked with its environment.
'use strict';

const { spawnSync } = require('node:child_process');

module.exports = function expectNode() {
  if (process.env.NODE_TOA_EXPECT_NODE) return;
  const r = spawnSync('node', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  process.env.NODE_TOA_EXPECT_NODE =
    r.status === 0 ? r.stdout.trim() : `no working \`node\` on PATH (${r.error?.message ?? `exit ${r.status}`})`;
};
