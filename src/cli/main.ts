#!/usr/bin/env node
import { Command, Option } from 'commander';
import { demoCommand } from './commands/demo.js';
import type { GlobalOptions } from './global-options.js';
import { serverCommand } from './commands/server.js';
import { taskCommands } from './commands/tasks.js';
import { scheduleCommands } from './commands/schedules.js';
import { queueCommands } from './commands/queues.js';
import { workerCommand } from './commands/worker.js';
import { BUNDLED_DESCRIPTOR } from './descriptors.js';
import { errorJson, errorLine } from './output.js';
import { clearEmptyVariables } from './env.js';
import { serverAddress } from './values.js';

clearEmptyVariables();

const program = new Command('taskwire')
  .description('durable, typed task queues over gRPC')
  .addOption(
    new Option('--server <address>', 'server: host:port, host (port 50051), a comma-separated list, or dns:///name:port')
      .env('TASKWIRE_SERVER')
      .default('127.0.0.1:50051')
      .argParser(serverAddress),
  )
  .addOption(new Option('--token <token>', 'bearer token').env('TASKWIRE_TOKEN'))
  .option('--json', 'print JSON, for scripts (errors too)')
  .option('--descriptor <file...>', 'FileDescriptorSets (buf build -o) with your task services', [])
  .addOption(new Option('--tls-ca <file>', 'CA that the server certificate must chain to (turns TLS on)').env('TASKWIRE_TLS_CA'))
  .addOption(new Option('--tls-cert <file>', 'client certificate, for mTLS').env('TASKWIRE_TLS_CERT'))
  .addOption(new Option('--tls-key <file>', 'client key, for mTLS').env('TASKWIRE_TLS_KEY'))
  .showSuggestionAfterError()
  .configureOutput({
    // A bad flag or variable is one line; with --json, a JSON line like every other error.
    outputError: (text, write) =>
      write(process.argv.includes('--json') ? `${JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message: text.trim().replace(/^error: /, '') } })}\n` : text),
  });

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
scheduleCommands(program, globals);
queueCommands(program, globals);
demoCommand(program, globals);

program.parseAsync(process.argv).catch((error: unknown) => {
  if (program.opts<{ json?: boolean }>().json) process.stderr.write(`${JSON.stringify(errorJson(error))}\n`);
  else process.stderr.write(`taskwire: ${errorLine(error, program.opts<{ server: string }>().server)}\n`);
  process.exit(1);
});
