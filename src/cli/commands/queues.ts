import { InvalidArgumentError, Option, type Command } from 'commander';
import { TaskState } from '../../../gen/ts/taskwire/v1/task.js';
import { clientAction } from '../client-action.js';
import type { GlobalOptions } from '../global-options.js';
import { print } from '../output.js';
import { duration } from '../values.js';

const END_STATES: Readonly<Record<string, TaskState>> = {
  succeeded: TaskState.TASK_STATE_SUCCEEDED,
  failed: TaskState.TASK_STATE_FAILED,
  cancelled: TaskState.TASK_STATE_CANCELLED,
};

/** `--state succeeded,failed` (repeatable): end states only. */
function endStates(text: string, previous: TaskState[] = []): TaskState[] {
  const states = text.split(',').map((word) => {
    const state = END_STATES[word.trim().toLowerCase()];
    if (state === undefined) throw new InvalidArgumentError('give succeeded, failed or cancelled (comma-separated or repeated).');
    return state;
  });
  return [...previous, ...states];
}

/** Queue controls (admin role): pause, resume, delete a task, purge a queue. */
export function queueCommands(program: Command, globals: () => GlobalOptions): void {
  const withClient = clientAction(globals);

  program
    .command('pause')
    .description('pause a queue on every server: submits still queue, nothing new is dispatched, running tasks finish')
    .argument('<queue>')
    .action(
      withClient(async (client, _d, g, queue: string) => {
        const changed = await client.pauseQueue(queue);
        print(g.json, { queue, paused: true, changed }, () => `queue ${queue} ${changed ? 'paused' : 'was already paused'}`);
      }),
    );

  program
    .command('resume')
    .description('resume a paused queue: its waiting tasks are dispatched at once')
    .argument('<queue>')
    .action(
      withClient(async (client, _d, g, queue: string) => {
        const changed = await client.resumeQueue(queue);
        print(g.json, { queue, paused: false, changed }, () => `queue ${queue} ${changed ? 'resumed' : 'was not paused'}`);
      }),
    );

  program
    .command('delete')
    .description('delete a SUCCEEDED, FAILED or CANCELLED task (its idempotency key is freed)')
    .argument('<id>')
    .action(
      withClient(async (client, _d, g, id: string) => {
        await client.deleteTask(id);
        print(g.json, { id, deleted: true }, () => `task ${id} deleted`);
      }),
    );

  program
    .command('purge')
    .description("delete a queue's finished tasks")
    .argument('<queue>')
    .addOption(new Option('--state <states>', 'succeeded, failed, cancelled (comma-separated or repeated); default all three').argParser(endStates))
    .addOption(new Option('--older-than <duration>', 'only tasks that finished at least this long ago (30s, 5m, 24h)').argParser(duration(0, 3_650 * 86_400_000)))
    .action(
      withClient(async (client, _d, g, queue: string, o: { state?: TaskState[]; olderThan?: number }) => {
        const deleted = await client.purgeQueue(queue, {
          ...(o.state === undefined ? {} : { states: o.state }),
          ...(o.olderThan === undefined ? {} : { finishedBefore: new Date(Date.now() - o.olderThan) }),
        });
        print(g.json, { queue, deleted }, () => `${deleted} tasks deleted from ${queue}`);
      }),
    );
}
