import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Needs Python's grpcio: `npm run test:interop`.
    exclude: ['test/interop/**', 'node_modules/**'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores, and the end-to-end files start a dozen processes each: one file
    // at a time keeps their timing honest.
    maxWorkers: 1,
  },
});
