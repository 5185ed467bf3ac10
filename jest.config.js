// The tests, one folder per project, named by what its files need (see "Test projects" in
// test/helpers/README.md):
//   test/unit      no sockets, no child processes: seconds       npx jest --selectProjects unit
//   test/loopback  real sockets on 127.0.0.1 and ::1, child processes; no root
//   test/netns     root: network namespaces, the sock_ops cgroup, raw and packet sockets
//   test/build     compiles or packs something (tsc, cmake-js, npm pack, prebuilds): slow
// `npm test` (jest) runs all four, in one run, with one summary line.
const PROJECTS = ['unit', 'loopback', 'netns', 'build'];

/** @type {import('jest').Config} */
module.exports = {
  projects: PROJECTS.map((name) => ({
    displayName: name,
    rootDir: __dirname,
    testEnvironment: 'node',
    roots: [`<rootDir>/test/${name}`],
    testMatch: ['**/*.test.ts'],
    transform: {
      '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
    },
  })),
  // Which Node this run is meant to be on (NODE_TOA_EXPECT_NODE), for test/unit/engines.test.ts.
  globalSetup: '<rootDir>/test/helpers/jest/expect-node.js',
  testTimeout: 30000,
  // Network-namespace tests are heavy; two workers keep a 2-core machine responsive.
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/helpers/jest/summary-reporter.js'],
};
