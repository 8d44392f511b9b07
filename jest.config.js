// Jest 30 + ts-jest ESM preset. Run with NODE_OPTIONS=--experimental-vm-modules (npm test does).
// Two projects so the integration tests' prerequisite check (root, the built CLI, the programs
// they drive) runs once before them, and only when one of them is selected.
const shared = {
  rootDir: '.',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  // Jest 30's default 'soft' globals cleanup wraps what a test file left on shared objects (execa's
  // signal-exit emitter on `process`) in accessors whose setter recurses forever: the next write
  // from a later file in that worker fails the whole file with "Maximum call stack size exceeded"
  // (jestjs/jest#16044, #16443; hit by vpn-mesh in the fresh Debian 13 run). Off: Jest 29's behaviour.
  testEnvironmentOptions: { globalsCleanup: 'off' },
};
/** @type {import('jest').Config} */
export default {
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...shared,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/integration/prerequisites.ts',
    },
  ],
  reporters: ['default', '<rootDir>/test/summary-reporter.cjs'],
  maxWorkers: 2,
  testTimeout: 120000,
};
