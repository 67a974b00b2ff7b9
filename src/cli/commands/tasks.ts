import { Option, type Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { HealthCheckResponse_ServingStatus, HealthDefinition } from 'nice-grpc-server-health/lib/proto/grpc/health/v1/health.js';
import type { JsonValue } from '@bufbuild/protobuf';
import { TaskState, type Task } from '../../../gen/ts/taskwire/v1/task.js';
import type { QueueStats } from '../../../gen/ts/taskwire/v1/task_service.js';
import { createRpcChannel, createRpcClient } from '../../rpc/index.js';
import { isTerminal, stateName } from '../../store/index.js';
import { BULK_LIMITS, LIMITS } from '../../broker/index.js';
import { TaskOrder } from '../../../gen/ts/taskwire/v1/task_service.js';
import { addFilterFlags, filterOf, hasFilter, type FilterFlags } from '../filter-options.js';
import type { GlobalOptions } from '../global-options.js';
import { print, taskJson, taskLine, taskText } from '../output.js';
import { duration, integer, taskTypePath } from '../values.js';
import { clientAction } from '../client-action.js';

/** The submit command's own flags. */
interface SubmitFlags {
  input?: string;
  wait?: boolean;
  queue?: string;
  priority?: number;
  delayMs?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  idempotencyKey?: string;
}

const DAY = 86_400_000;

interface BulkFlags extends FilterFlags {
  dryRun?: boolean;
  limit: number;
}

/** A task that did not succeed makes the command exit non-zero, and says so on stderr. */
function endedBadly(task: Task, json: boolean): void {
  if (task.state === TaskState.TASK_STATE_SUCCEEDED) return;
  process.exitCode = 1;
  if (json) return; // the task printed on stdout says how it ended
  const last = task.errors.at(-1);
  const why = task.state === TaskState.TASK_STATE_CANCELLED ? task.cancelReason : last?.message;
  process.stderr.write(`task ${task.id} ${stateName(task.state)}${why ? `: ${why}` : ''}\n`);
}

export function taskCommands(program: Command, globals: () => GlobalOptions): void {
  const withClient = clientAction(globals);

  program
    .command('submit')
    .description('submit a task; its input is JSON in the proto3 JSON mapping')
    .argument('<type>', 'task type: the method, as /demo.v1.DemoService/Echo, demo.v1.DemoService/Echo or demo.v1.DemoService.Echo', taskTypePath)
    .argument('[input]', 'the input message as JSON (proto3 JSON mapping), e.g. \'{"text": "hi"}\'')
    .option('--input <json>', 'the input message as JSON, as an option')
    .option('--wait', 'wait for the result')
    .option('--queue <name>', 'queue')
    .addOption(new Option('--priority <n>', `priority, 0..${LIMITS.maxPriority}, higher first`).argParser(integer(0, LIMITS.maxPriority)))
    .addOption(new Option('--delay-ms <duration>', 'run no sooner than this long from now (0..365d; 1500, 30s, 5m, 1h)').argParser(duration(0, 365 * DAY)))
    .addOption(new Option('--max-attempts <n>', `attempts allowed, 1..${LIMITS.maxAttempts}`).argParser(integer(1, LIMITS.maxAttempts)))
    .addOption(new Option('--timeout-ms <duration>', 'execution timeout per attempt (1ms..365d)').argParser(duration(1, 365 * DAY)))
    .option('--idempotency-key <key>', 'returns the existing task if the key was used before')
    .action(
      withClient(async (client, d, g, type: string, inputText: string | undefined, o: SubmitFlags) => {
        const method = d.method(type);
        const text = o.input ?? inputText ?? '{}';
        let json: JsonValue;
        try {
          json = JSON.parse(text) as JsonValue;
        } catch {
          throw new Error(`the input is not JSON: ${text.slice(0, 60)}`);
        }
        const input = d.pack(method.input, json);
        const submitted = await client.submit(type, input, {
          ...(o.queue ? { queue: o.queue } : {}),
          ...(o.priority === undefined ? {} : { priority: o.priority }),
          ...(o.delayMs === undefined ? {} : { delayMs: o.delayMs }),
          ...(o.maxAttempts === undefined ? {} : { maxAttempts: o.maxAttempts }),
          ...(o.timeoutMs === undefined ? {} : { executionTimeoutMs: o.timeoutMs }),
          ...(o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {}),
        });
        if (!o.wait) return print(g.json, submitted, () => submitted.id);
        // stdout is for the result: the id goes to stderr at once, so a wait that takes long is not a mystery.
        // (With --json, stdout is one JSON document and stderr carries only JSON errors.)
        if (!g.json) {
          process.stderr.write(`task ${submitted.id}: waiting for its result (Ctrl-C stops waiting; the task goes on)\n`);
          const workers = await client.workers().catch(() => undefined); // best effort: a token may not allow it
          if (workers !== undefined && !workers.some((w) => w.taskTypes.includes(type))) {
            process.stderr.write(`no connected worker serves ${type}: the task waits until one connects (taskwire worker …)\n`);
          }
        }
        await client.result(submitted.id);
        const task = await client.get(submitted.id);
        print(g.json, taskJson(d, task), () => taskText(d, task));
        endedBadly(task, g.json);
      }),
    );

  program
    .command('get')
    .description('show a task')
    .argument('<id>')
    .action(
      withClient(async (client, d, g, id: string) => {
        const task = await client.get(id);
        print(g.json, taskJson(d, task), () => taskText(d, task));
      }),
    );

  program
    .command('watch')
    .description('follow a task until it ends: a progress bar on a terminal, else one line per state change')
    .argument('<id>')
    .action(
      withClient(async (client, d, g, id: string) => {
        const bar = g.json || !process.stdout.isTTY ? undefined : new SingleBar({ format: '{bar} {percentage}% | {state} {message}' });
        let last: TaskState = TaskState.TASK_STATE_UNSPECIFIED;
        bar?.start(100, 0, { state: '', message: '' });
        for await (const event of client.watch(id)) {
          if (event === undefined) continue;
          if (g.json) {
            const value = event.$case === 'task' ? { task: taskJson(d, event.value) } : { progress: { ...event.value } };
            process.stdout.write(`${JSON.stringify(value)}\n`);
          }
          if (event.$case === 'task') {
            const changed = event.value.state !== last;
            last = event.value.state;
            bar?.update(isTerminal(last) ? 100 : event.value.progressPercent, { state: stateName(last), message: event.value.progressMessage });
            if (bar === undefined && !g.json && changed && !isTerminal(last)) process.stdout.write(`${taskLine(event.value)}\n`);
          } else {
            bar?.update(event.value.percent, { state: 'RUNNING', message: event.value.message });
          }
        }
        bar?.stop();
        const task = await client.get(id);
        if (!g.json) process.stdout.write(`${taskText(d, task)}\n`);
        endedBadly(task, g.json);
      }),
    );

  /** The id, or the filter flags: one of them, never both. */
  const target = (command: string, id: string | undefined, flags: FilterFlags): 'one' | 'many' => {
    if (id !== undefined && hasFilter(flags)) throw new Error(`give a task id or filter flags (--state, --queue, …), not both: taskwire ${command} <id> or taskwire ${command} --state … --queue …`);
    if (id === undefined && !hasFilter(flags)) throw new Error(`give a task id or at least one filter flag (--state, --queue, --type, --since, --label, --error-code): taskwire ${command} --help`);
    return id === undefined ? 'many' : 'one';
  };
  const bulkFlags = (command: Command) =>
    addFilterFlags(command)
      .option('--dry-run', 'count the tasks that would change; change nothing')
      .addOption(new Option('--limit <n>', `most tasks to change in this call, 1..${BULK_LIMITS.maxLimit}`).default(BULK_LIMITS.defaultLimit).argParser(integer(1, BULK_LIMITS.maxLimit)));
  const bulkText = (verb: string, o: BulkFlags, r: { count: number; more: boolean }) =>
    `${o.dryRun ? `would ${verb}` : `${verb === 'retry' ? 'retried' : 'cancelled'}`} ${r.count} task${r.count === 1 ? '' : 's'}` +
    (r.more ? `; more match: run it again${o.dryRun ? ' (or raise --limit)' : ''}` : '');

  bulkFlags(
    program
      .command('cancel')
      .description('cancel a scheduled, queued or running task, or every such task matching the filter flags (admin)')
      .argument('[id]', 'the task; or leave it out and give filter flags')
      .option('--reason <text>', 'why', 'cancelled from the command line'),
  ).action(
    withClient(async (client, d, g, id: string | undefined, o: BulkFlags & { reason: string }) => {
      if (target('cancel', id, o) === 'one') {
        const task = await client.cancel(id!, o.reason);
        return print(g.json, taskJson(d, task), () => taskLine(task));
      }
      const result = await client.cancelMatching({ filter: filterOf(o), dryRun: o.dryRun ?? false, limit: o.limit, reason: o.reason });
      print(g.json, { ...result, dryRun: o.dryRun ?? false }, () => bulkText('cancel', o, result));
    }),
  );

  bulkFlags(
    program
      .command('retry')
      .description('re-queue a FAILED or CANCELLED task, or every such task matching the filter flags (admin)')
      .argument('[id]', 'the task; or leave it out and give filter flags'),
  ).action(
    withClient(async (client, d, g, id: string | undefined, o: BulkFlags) => {
      if (target('retry', id, o) === 'one') {
        const task = await client.retry(id!);
        return print(g.json, taskJson(d, task), () => taskLine(task));
      }
      const result = await client.retryMatching({ filter: filterOf(o), dryRun: o.dryRun ?? false, limit: o.limit });
      print(g.json, { ...result, dryRun: o.dryRun ?? false }, () => bulkText('retry', o, result));
    }),
  );

  addFilterFlags(program.command('list').description('list tasks, newest first (--oldest-first to reverse)'))
    .option('--oldest-first', 'oldest first')
    .addOption(new Option('--limit <n>', 'page size, 1..1000').default(20).argParser(integer(1, 1000)))
    .option('--page-token <token>', 'from a previous list (with the same order)')
    .action(
      withClient(async (client, d, g, o: FilterFlags & { oldestFirst?: boolean; limit: number; pageToken?: string }) => {
        const page = await client.list({
          ...filterOf(o),
          ...(o.oldestFirst ? { order: TaskOrder.TASK_ORDER_OLDEST_FIRST } : {}),
          pageSize: o.limit,
          ...(o.pageToken ? { pageToken: o.pageToken } : {}),
        });
        print(g.json, { tasks: page.tasks.map((t) => taskJson(d, t)), nextPageToken: page.nextPageToken }, () =>
          [...page.tasks.map(taskLine), ...(page.nextPageToken ? [`next page: --page-token ${page.nextPageToken}`] : [])].join('\n') ||
          'no tasks',
        );
      }),
    );

  program
    .command('workers')
    .description('list the workers connected to the server (on PostgreSQL, to every replica)')
    .action(
      withClient(async (client, _d, g) => {
        const workers = await client.workers();
        print(g.json, workers, () =>
          workers.map((w) => `${w.workerId}  ${w.running}/${w.slots} running  ${w.peer}  ${w.taskTypes.join(',')}  on ${w.replica}`).join('\n') ||
          'no workers connected',
        );
      }),
    );

  program
    .command('stats')
    .description('task counts per queue and state')
    .option('--queue <name>', 'only this queue')
    .action(
      withClient(async (client, _d, g, o: { queue?: string }) => {
        const queues = await client.stats(o.queue);
        print(g.json, queues, () =>
          queues
            .map(
              (q) =>
                `${q.queue}${q.paused ? ' PAUSED' : ''}: scheduled ${q.scheduled}, queued ${q.queued}, running ${q.running}, succeeded ${q.succeeded}, failed ${q.failed}, cancelled ${q.cancelled}` +
                `; oldest queued ${ageText(q.oldestQueuedAge)}; per second over the last minute: submitted ${rateText(q.submittedPerSecond)}, succeeded ${rateText(q.succeededPerSecond)}, failed ${rateText(q.failedPerSecond)}` +
                keysText(q),
            )
            .join('\n') || 'no tasks',
        );
      }),
    );

  program
    .command('health')
    .description('exit 0 when the server reports SERVING (for container health checks)')
    .option('--service <name>', 'a service name; the whole server when empty', '')
    .addOption(new Option('--timeout-ms <duration>', 'give up after (1ms..10m)').default(3000, '3s').argParser(duration(1, 600_000)))
    .action(async (o: { service: string; timeoutMs: number }) => {
      const g = globals();
      const channel = createRpcChannel(g.server, g.tls ? { tls: g.tls } : {});
      try {
        const health = createRpcClient(HealthDefinition, channel);
        const { status } = await health.check({ service: o.service }, { deadline: o.timeoutMs });
        const name = HealthCheckResponse_ServingStatus[status];
        print(g.json, { status: name }, () => String(name));
        if (status !== HealthCheckResponse_ServingStatus.SERVING) process.exitCode = 1;
      } finally {
        channel.close();
      }
    });
}

/** A duration for people: "0 s", "1.5 s", "3 m 20 s". */
function ageText(age: { seconds: number; nanos: number } | undefined): string {
  const seconds = (age?.seconds ?? 0) + (age?.nanos ?? 0) / 1e9;
  if (seconds < 60) return `${Number(seconds.toFixed(1))} s`;
  return `${Math.floor(seconds / 60)} m ${Math.round(seconds % 60)} s`;
}

const rateText = (perSecond: number) => String(Number(perSecond.toFixed(2)));

/** The concurrency keys with tasks waiting, most waiting first: "; 3 keys waiting: a 10/1, b 2/0, …" (waiting/running). */
function keysText(q: QueueStats): string {
  if (q.waitingKeyCount === 0) return '';
  const listed = q.waitingKeys.map((k) => `${k.key} ${k.waiting}/${k.running}`).join(', ');
  const more = q.waitingKeyCount > q.waitingKeys.length ? `, and ${q.waitingKeyCount - q.waitingKeys.length} more` : '';
  return `; ${q.waitingKeyCount} key${q.waitingKeyCount === 1 ? '' : 's'} waiting (waiting/running): ${listed}${more}`;
}
