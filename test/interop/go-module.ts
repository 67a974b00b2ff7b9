import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
export const GO_IMPORT_PATH = 'github.com/taskwire/taskwire/go';

export interface GoModule {
  /** The example worker and client, built from go/examples. */
  readonly worker: string;
  readonly client: string;
  /** gofmt, go vet, then the module's own `go test`; resolves with the test output. */
  test(): Promise<string>;
  dispose(): void;
}

/**
 * Builds go/ as CI does (docs/go.md): GOPATH mode over Debian's Go packages
 * (/usr/share/gocode), the module linked into a GOPATH of its own.
 */
export async function buildGoModule(): Promise<GoModule> {
  const dir = mkdtempSync(join(tmpdir(), 'taskwire-go-'));
  const gopath = join(dir, 'gopath');
  const pkg = join(gopath, 'src', GO_IMPORT_PATH);
  mkdirSync(resolve(pkg, '..'), { recursive: true });
  symlinkSync(join(root, 'go'), pkg);
  const env = { ...process.env, GO111MODULE: 'off', GOPATH: `${gopath}:/usr/share/gocode`, GOFLAGS: '', ...((process.env.GOCACHE ?? process.env.HOME) ? {} : { GOCACHE: join(tmpdir(), 'taskwire-go-cache') }) };
  const bin = join(dir, 'bin');
  await run('go', ['build', '-o', `${bin}/`, './examples/worker', './examples/client'], { cwd: pkg, env, timeout: 300_000 });
  return {
    worker: join(bin, 'worker'),
    client: join(bin, 'client'),
    test: async () => {
      const unformatted = (await run('gofmt', ['-l', join(root, 'go')], { timeout: 60_000 })).stdout.trim();
      if (unformatted !== '') throw new Error(`not gofmt-formatted (run gofmt -w go/): ${unformatted}`);
      await run('go', ['vet', GO_IMPORT_PATH, `${GO_IMPORT_PATH}/examples/...`], { env, timeout: 300_000 });
      return (await run('go', ['test', '-count=1', GO_IMPORT_PATH], { env, timeout: 300_000 })).stdout;
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
