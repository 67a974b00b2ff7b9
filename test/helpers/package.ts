import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

const exec = promisify(execFile);

/**
 * npm as a user runs it, but from the local cache first (the registry is
 * asked only for what the cache lacks) and quiet.
 */
export const NPM_ENV = {
  ...process.env,
  npm_config_prefer_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};

/** Runs a shell command line in `cwd` with a bound; rejects with its output if it fails. */
export async function sh(command: string, cwd: string, timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout, stderr } = await exec('sh', ['-c', command], { cwd, env: NPM_ENV, timeout: timeoutMs, maxBuffer: 16 << 20 });
    return stdout + stderr;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`\`${command}\` in ${cwd} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** `npm pack` of this repository (dist/ built by `npm test`) into `destination`; the tarball's path. */
export async function packTaskwire(destination: string): Promise<string> {
  mkdirSync(destination, { recursive: true });
  const out = await sh(`npm pack --ignore-scripts --silent --pack-destination ${JSON.stringify(destination)}`, REPO);
  return join(destination, out.trim().split('\n').pop()!);
}
