import { readFileSync } from 'node:fs';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

/**
 * package.json promises a Node.js range (`engines.node`); every package in the
 * lock file must run on its oldest version, or `npm ci` warns and the package may not
 * work on the oldest Node.js we claim (connect-node 2.2+ and protoc-gen-es
 * 2.14+ ask for Node.js 22, so they are held back).
 */
describe('engines', () => {
  const own = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
    packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean }>;
  };

  it('every locked package supports the Node.js range taskwire declares', () => {
    const oldest = semver.minVersion(own.engines.node);
    expect(oldest, `engines.node ${own.engines.node} has no lowest version`).not.toBeNull();
    const tooNew: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path === '' || entry.optional) continue;
      const node = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      if (node && !semver.satisfies(oldest, node)) tooNew.push(`${path} wants node ${node}`);
    }
    expect(tooNew).toEqual([]);
  });
});
