import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Suites with their own scripts: Python's grpcio and Go (`npm run test:interop`),
    // root with network namespaces (`npm run test:faults`), podman
    // (`npm run test:containers`) and Debian's chromium (`npm run test:ui`).
    exclude: ['test/interop/**', 'test/faults/**', 'test/containers/**', 'test/browser/**', 'node_modules/**'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores, and the end-to-end files start a dozen processes each: one file
    // at a time keeps their timing honest.
    maxWorkers: 1,
  },
});
