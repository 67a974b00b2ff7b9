import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Needs Python's grpcio: `npm run test:interop`.
    exclude: ['test/interop/**', 'node_modules/**'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: more parallel files only add contention to the process tests.
    maxWorkers: 2,
  },
});
