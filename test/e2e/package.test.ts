/**
 * taskwire used from a project of one's own, not from a clone: a fresh app
 * directory outside the repository installs the packed package (`npm pack`),
 * generates its own task service with buf and ts-proto (its proto imports
 * taskwire/v1/options.proto from the package), compiles, and runs a worker
 * and a client against a real server. The app installs no store driver: a
 * client or worker never needs better-sqlite3 or pg.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NPM_ENV, packTaskwire, sh } from '../helpers/package.js';
import { killAll, Proc, startServerProcess } from '../helpers/processes.js';

const root = mkdtempSync(join(tmpdir(), 'taskwire-package-'));
const procs: Proc[] = [];

afterAll(async () => {
  await killAll(procs);
  rmSync(root, { recursive: true, force: true });
});

const files: Record<string, string> = {
  'proto/shop/v1/invoices.proto': `syntax = "proto3";
package shop.v1;

import "taskwire/v1/options.proto";

service InvoiceService {
  rpc Render(RenderRequest) returns (RenderResponse) {
    option (taskwire.v1.task) = {priority: 40, max_attempts: 4};
  }
}
message RenderRequest { string order_id = 1; }
message RenderResponse { string pdf_url = 1; uint32 attempt = 2; }
`,
  'buf.yaml': `version: v2
modules:
  - path: proto
  - path: node_modules/taskwire/proto
`,
  'buf.gen.yaml': `version: v2
inputs:
  - directory: proto
plugins:
  - local: protoc-gen-ts_proto
    out: gen/ts
    strategy: all
    opt: [outputServices=generic-definitions, outputTypeAnnotations=static-only, useExactTypes=false, esModuleInterop=true, importSuffix=.js, env=node, oneof=unions-value]
`,
  'tsconfig.json': `{ "compilerOptions": { "target": "es2022", "module": "nodenext", "strict": true, "skipLibCheck": true, "outDir": "dist" }, "include": ["*.ts", "gen/ts"] }
`,
  'worker.ts': `import { createWorker } from 'taskwire/worker';
import { InvoiceServiceDefinition } from './gen/ts/shop/v1/invoices.js';

const worker = createWorker({ server: process.env.SHOP_SERVER!, concurrency: 2 });
worker.implement(InvoiceServiceDefinition, {
  async render(request, ctx) {
    ctx.progress(50, 'rendering');
    return { pdfUrl: \`/invoices/\${request.orderId}.pdf\`, attempt: ctx.attempt };
  },
});
process.once('SIGTERM', () => void worker.stop());
await worker.start();
console.log('worker connected');
`,
  'client.ts': `import { createClient } from 'taskwire/client';
import { TaskState, type Task } from 'taskwire/proto';
import { InvoiceServiceDefinition } from './gen/ts/shop/v1/invoices.js';

const client = createClient({ server: process.env.SHOP_SERVER! });
const invoices = client.service(InvoiceServiceDefinition);
const handle = await invoices.render.submit({ orderId: 'o-17' }, { idempotencyKey: 'invoice-o-17' });
const result = await handle.result();
const task: Task = await client.get(handle.id);
console.log(JSON.stringify({ pdfUrl: result.pdfUrl, state: TaskState[task.state], priority: task.options?.priority, maxAttempts: task.options?.maxAttempts }));
client.close();
`,
};

describe('taskwire from a project of its own', () => {
  it('installs from the packed package without store drivers, generates its own service, runs a worker and a client', { timeout: 120_000 }, async () => {
    const tarball = await packTaskwire(join(root, 'pack'));
    const app = join(root, 'shop');
    mkdirSync(app);
    await sh('npm init -y && npm pkg set type=module', app);
    await sh(`npm install ${JSON.stringify(tarball)} @bufbuild/protobuf`, app, 90_000);
    // A client-only install compiles nothing: the store drivers are optional peers.
    expect(existsSync(join(app, 'node_modules/taskwire/proto/taskwire/v1/options.proto'))).toBe(true);
    expect(existsSync(join(app, 'node_modules/better-sqlite3'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/pg'))).toBe(false);
    await sh('npm install --save-dev @bufbuild/buf ts-proto typescript @types/node', app, 90_000);

    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(app, path, '..'), { recursive: true });
      writeFileSync(join(app, path), text);
    }
    await sh('npx buf generate && npx buf build -o gen/descriptor.binpb && npx tsc', app, 60_000);

    // The package's CLI says what a server needs when its driver is missing.
    const noDriver = await sh('npx taskwire server --listen 127.0.0.1:0 --db data/x.db; echo "exit $?"', app).catch((e: Error) => e.message);
    expect(noDriver).toMatch(/better-sqlite3 package: npm install better-sqlite3/);
    expect(noDriver).toMatch(/exit [1-9]/);

    // A real server (this repository's, which has the driver) serving the app's service from its descriptor set.
    const server = await startServerProcess(join(root, 'tasks.db'), '127.0.0.1:0', [
      '--descriptor', join(app, 'gen/descriptor.binpb'), '--services', 'shop.v1.InvoiceService',
    ]);
    procs.push(server.proc);
    const env = { ...NPM_ENV, SHOP_SERVER: server.address };
    const start = (script: string) => {
      const proc = new Proc(spawn(process.execPath, [script], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] }));
      procs.push(proc);
      return proc;
    };
    const worker = start('dist/worker.js');
    await worker.waitForLine((l) => l.msg === 'worker connected', 20_000);
    const client = start('dist/client.js');
    const line = await client.waitForLine((l) => l.pdfUrl !== undefined, 20_000);
    expect(line).toEqual({ pdfUrl: '/invoices/o-17.pdf', state: 'TASK_STATE_SUCCEEDED', priority: 40, maxAttempts: 4 });
    expect(await client.exited).toBe(0);
    worker.signal('SIGTERM');
    expect(await worker.exited).toBe(0);
  });
});
