import { readFileSync } from 'node:fs';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

/**
 * package.json promises a Node.js range (`engines.node`); every package in the
 * lock file must run on its oldest version, or `npm ci` warns and the package may not
 * work on the oldest Node.js we claim (protoc-gen-es 2.14+ asks for Node.js 22,
 * so it is held back). The one exception is named here with its reason.
 */
const EXCEPTIONS: Readonly<Record<string, string>> = {
  // Since 2.2 it declares Node.js 22. taskwire needs its `requestGate` (tokens are
  // checked before a request body is read) and every suite runs it on Node.js 20.
  'node_modules/@connectrpc/connect-node': 'the HTTP listener, tested on Node.js 20',
};
describe('engines', () => {
  const own = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
    packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean }>;
  };

  it('every locked package supports the Node.js range taskwire declares', () => {
    const oldest = semver.minVersion(own.engines.node);
    if (oldest === null) throw new Error(`engines.node ${own.engines.node} has no lowest version`);
    const tooNew: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path === '' || entry.optional || path in EXCEPTIONS) continue;
      const node = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      if (node && !semver.satisfies(oldest, node)) tooNew.push(`${path} wants node ${node}`);
    }
    expect(tooNew).toEqual([]);
  });
});
