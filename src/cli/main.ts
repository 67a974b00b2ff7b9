#!/usr/bin/env node
import { Command } from 'commander';
import type { TlsClientOptions } from '../rpc/index.js';
import { demoCommand } from './commands/demo.js';
import { serverCommand } from './commands/server.js';
import { taskCommands } from './commands/tasks.js';
import { workerCommand } from './commands/worker.js';
import { BUNDLED_DESCRIPTOR } from './descriptors.js';
import { errorLine } from './output.js';
import { env } from './env.js';

export interface GlobalOptions {
  readonly server: string;
  readonly token: string | undefined;
  readonly json: boolean;
  readonly descriptorPaths: readonly string[];
  readonly tls: TlsClientOptions | undefined;
}

const program = new Command('taskwire')
  .description('durable, typed task queues over gRPC')
  .option('--server <address>', 'server address (host:port or dns:///name:port)', env('TASKWIRE_SERVER') ?? '127.0.0.1:50051')
  .option('--token <token>', 'bearer token', env('TASKWIRE_TOKEN'))
  .option('--json', 'print JSON, for scripts')
  .option('--descriptor <file...>', 'FileDescriptorSets (buf build -o) with your task services', [])
  .option('--tls-ca <file>', 'CA that the server certificate must chain to (turns TLS on)', env('TASKWIRE_TLS_CA'))
  .option('--tls-cert <file>', 'client certificate, for mTLS', env('TASKWIRE_TLS_CERT'))
  .option('--tls-key <file>', 'client key, for mTLS', env('TASKWIRE_TLS_KEY'))
  .showHelpAfterError();

function globals(): GlobalOptions {
  const o = program.opts<{ server: string; token?: string; json?: boolean; descriptor: string[]; tlsCa?: string; tlsCert?: string; tlsKey?: string }>();
  return {
    server: o.server,
    token: o.token,
    json: o.json ?? false,
    descriptorPaths: [...o.descriptor, BUNDLED_DESCRIPTOR],
    tls:
      o.tlsCa === undefined
        ? undefined
        : { ca: o.tlsCa, ...(o.tlsCert === undefined ? {} : { cert: o.tlsCert }), ...(o.tlsKey === undefined ? {} : { key: o.tlsKey }) },
  };
}

serverCommand(program, globals);
workerCommand(program, globals);
taskCommands(program, globals);
demoCommand(program, globals);

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`taskwire: ${errorLine(error)}\n`);
  process.exit(1);
});
