// The tests, laid out by what they need (see "Test projects" in test/helpers/README.md):
//   unit      no sockets, no child processes: seconds   npx jest --selectProjects unit
//   build     compiles or packs something (tsc, cmake-js, npm pack): slow, no root
//   netns     root: the network-namespace harness (describeE2E, useToaNet, ToaNet) or the sock_ops cgroup (ToaCgroup)
//   loopback  everything else: real sockets on 127.0.0.1 and ::1 (the catch-all)
// `npm test` (jest) runs all four, in one run, with one summary line.
const fs = require('node:fs');
const path = require('node:path');

const TEST_DIR = path.join(__dirname, 'test');
const SEP = '[/\\\\]';
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A regular expression for test/<name>.test.ts, as jest matches it against absolute paths. */
const file = (name) => `${SEP}test${SEP}${name.split('/').map(escape).join(SEP)}\\.test\\.ts$`;

// Listed by name: a new file goes to loopback unless it is added here.
const UNIT = ['arguments', 'decide', 'engines', 'options', 'parse', 'proxy-options', 'proxy-parse', 'test-setup', 'udp-parse'];
const BUILD = ['cmake-build', 'consumer-types', 'package', 'prebuilds', 'types'];

// netns: the name e2e-*.test.ts, or a file that uses the harness (read, not run, here).
const NETNS_NAME = `${SEP}e2e-[^/\\\\]*\\.test\\.ts$`;
const USES_NETNS = /\b(describeE2E|useToaNet|ToaNet|describeSockops|ToaCgroup)\b|helpers\/(toa-net|framework-e2e|sockops)['"]/;

function testFiles(dir, rel = '') {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const r = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory() && entry.name !== 'node_modules') found.push(...testFiles(path.join(dir, entry.name), r));
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) found.push(r.slice(0, -'.test.ts'.length));
  }
  return found;
}

const listed = new Set([...UNIT, ...BUILD]);
const NETNS = testFiles(TEST_DIR).filter(
  (name) => !listed.has(name) && USES_NETNS.test(fs.readFileSync(path.join(TEST_DIR, `${name}.test.ts`), 'utf8')),
);

const common = {
  rootDir: __dirname,
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
};

const unit = UNIT.map(file);
const build = BUILD.map(file);
const netns = [NETNS_NAME, ...NETNS.map(file)];

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testRegex: unit },
    { ...common, displayName: 'build', testRegex: build },
    // A name in UNIT or BUILD wins over the netns rules; every project is disjoint from the others.
    { ...common, displayName: 'netns', testRegex: netns, testPathIgnorePatterns: ['/node_modules/', ...unit, ...build] },
    { ...common, displayName: 'loopback', testRegex: ['\\.test\\.ts$'], testPathIgnorePatterns: ['/node_modules/', ...unit, ...build, ...netns] },
  ],
  // Which Node this run is meant to be on (NODE_TOA_EXPECT_NODE), for test/engines.test.ts.
  globalSetup: '<rootDir>/test/helpers/expect-node.js',
  testTimeout: 30000,
  // Network-namespace tests are heavy; two workers keep a 2-core machine responsive.
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/helpers/summary-reporter.js'],
};
