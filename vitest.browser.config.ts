import { defineConfig } from 'vitest/config';

// The dashboard in a real browser: Debian's chromium (`apt-get install -y chromium`),
// driven by playwright-core. `npm run test:ui`, run by CI after .ci/packages.sh installs it.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
  },
});
