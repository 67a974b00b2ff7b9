import { defineConfig } from 'vitest/config';

// The container test: builds the image from the Dockerfile and runs it with
// podman in a network namespace of its own. Needs root: `npm run test:containers`.
export default defineConfig({
  test: {
    include: ['test/containers/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 300_000,
    hookTimeout: 1_500_000,
    maxWorkers: 1,
  },
});
