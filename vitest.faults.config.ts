import { defineConfig } from 'vitest/config';

// The fault suite: processes in network namespaces of the suite's own, packet
// drops with nftables. Needs root, iproute2 and nftables: `npm run test:faults`.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
  },
});
