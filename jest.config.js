// Jest 30 + ts-jest ESM preset. Run with NODE_OPTIONS=--experimental-vm-modules (npm test does).
// Two projects so the integration tests' prerequisite check (root, the built CLI, the programs
// they drive) runs once before them, and only when one of them is selected.
const shared = {
  rootDir: '.',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
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
