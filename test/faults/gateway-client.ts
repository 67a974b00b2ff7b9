/**
 * The fault suite's gateway caller, in its own namespace: `count` calls of
 * demo.v1.DemoService/Echo through the gateway and a WatchTask stream on each
 * task, retried after the server goes away (the same idempotency key, so the
 * same task) until each call returns. Prints {"acked": [[key, id]]} per call.
 *
 *   node --import tsx test/faults/gateway-client.ts <server> <count> <run-id>
 */
import { Metadata } from 'nice-grpc';
import { DemoServiceDefinition } from '../../gen/ts/demo/v1/demo.js';
import { TaskServiceDefinition } from '../../gen/ts/taskwire/v1/task_service.js';
import { createRpcChannel, createRpcClient } from '../../src/rpc/index.js';

const [server = '', countText = '20', run = 'gw'] = process.argv.slice(2);
const channel = createRpcChannel(server);
const demo = createRpcClient(DemoServiceDefinition, channel);
const tasks = createRpcClient(TaskServiceDefinition, channel);
const give = Date.now() + 120_000;

async function watch(id: string): Promise<void> {
  for (;;) {
    try {
      for await (const _ of tasks.watchTask({ id }, { deadline: 30_000 })) void _;
      return;
    } catch {
      if (Date.now() > give) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

await Promise.all(
  Array.from({ length: Number(countText) }, async (_, i) => {
    const key = `${run}-${i}`;
    const watches: Promise<void>[] = [];
    for (;;) {
      let id: string | undefined;
      try {
        await demo.echo(
          { text: key },
          {
            metadata: Metadata({ 'taskwire-idempotency-key': key }),
            deadline: 30_000,
            onHeader: (h) => {
              id = h.get('taskwire-task-id');
              if (id !== undefined) {
                process.stdout.write(`${JSON.stringify({ acked: [[key, id]] })}\n`);
                watches.push(watch(id));
              }
            },
          },
        );
        break;
      } catch (error) {
        if (Date.now() > give) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await Promise.all(watches);
  }),
);
process.stdout.write(`${JSON.stringify({ done: true })}\n`);
process.exit(0);
