import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * This package's version, from its own package.json: the nearest one named
 * "taskwire" above this file, in src/ (tests), dist/src/ and an installed
 * package alike.
 */
export const PACKAGE_VERSION: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 4; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'taskwire' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No package.json here: look one level up.
    }
    dir = dirname(dir);
  }
  return 'unknown';
})();
