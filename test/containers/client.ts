/**
 * The container test's client, run inside the test's network namespace
 * (`ip netns exec`), where the server container listens on 127.0.0.1.
 *
 *   node --import tsx test/containers/client.ts <server> echo <count> <prefix>
 *     submits <count> Echo tasks and waits for them; prints
 *     {"results": [[text, workerId, attempt], …]}
 *   node --import tsx test/containers/client.ts <server> sleep <count> <ms>
 *     submits <count> Sleep tasks and prints {"ids": […]} without waiting
 *   node --import tsx test/containers/client.ts <server> results <id>…
 *     waits for the tasks and prints {"states": […]}
 */
import { DemoServiceDefinition } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { createClient } from '../../src/client/index.js';

const [server = '', mode = '', ...args] = process.argv.slice(2);
const client = createClient({ server });
const demo = client.service(DemoServiceDefinition);
const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

try {
  if (mode === 'echo') {
    const [count = '0', prefix = ''] = args;
    const responses = await Promise.all(
      Array.from({ length: Number(count) }, (_, i) => demo.echo.call({ text: `${prefix}-${i}` }, { deadline: 60_000 })),
    );
    print({ results: responses.map((r) => [r.text, r.workerId, r.attempt]) });
  } else if (mode === 'sleep') {
    const [count = '0', ms = '0'] = args;
    const tasks = await Promise.all(Array.from({ length: Number(count) }, () => demo.sleep.submit({ durationMs: Number(ms), steps: 1 })));
    print({ ids: tasks.map((t) => t.id) });
  } else if (mode === 'results') {
    const outcomes = await Promise.all(args.map((id) => client.result(id)));
    print({ states: outcomes.map((o) => TaskState[o.state]) });
  } else {
    throw new Error(`unknown mode "${mode}"`);
  }
} finally {
  client.close();
}
