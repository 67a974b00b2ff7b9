import { defineConfig } from 'vitest/config';

// Tests that need other languages' toolchains (Debian's python3-grpcio and
// python3-protobuf): `npm run test:interop`, run by CI after installing them.
export default defineConfig({
  test: {
    include: ['test/interop/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
    maxWorkers: 1,
  },
});
