import { defineConfig } from 'vitest/config';

// Tests that need other languages' toolchains (Debian's python3 with grpcio,
// protobuf and setuptools; Go 1.19 with grpc-go): `npm run test:interop`, run
// by CI after .ci/packages.sh installs them.
export default defineConfig({
  test: {
    include: ['test/interop/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
    maxWorkers: 1,
  },
});
