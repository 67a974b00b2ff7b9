import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

export interface PythonPackage {
  /** The venv's interpreter, with the taskwire package installed. */
  readonly python: string;
  /** Environment for examples: the demo stubs (the user's own generated code) on PYTHONPATH. */
  readonly env: NodeJS.ProcessEnv;
  dispose(): void;
}

/**
 * Installs python/ as a user would (docs/python.md): a venv over Debian's
 * python3 and its grpcio, then `pip install --no-build-isolation --no-index`.
 * From a copy, so the build leaves nothing in the source tree.
 */
export async function installPythonPackage(): Promise<PythonPackage> {
  const dir = mkdtempSync(join(tmpdir(), 'taskwire-py-'));
  const source = join(dir, 'src');
  cpSync(join(root, 'python'), source, { recursive: true, filter: (path) => !/(__pycache__|\.egg-info|\/build)$/.test(path) });
  const venv = join(dir, 'venv');
  await run('/usr/bin/python3', ['-m', 'venv', '--system-site-packages', venv], { timeout: 60_000 });
  await run(join(venv, 'bin/pip'), ['install', '-q', '--no-build-isolation', '--no-index', source], { timeout: 120_000 });
  return {
    python: join(venv, 'bin/python'),
    env: { ...process.env, PYTHONPATH: join(root, 'gen/python'), PYTHONUNBUFFERED: '1' },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
