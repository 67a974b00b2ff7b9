import { Option, type Command } from 'commander';
import type { JsonValue } from '@bufbuild/protobuf';
import { Schedule } from '../../../gen/ts/taskwire/v1/schedule_service.js';
import type { ScheduleSpecInput } from '../../client/index.js';
import { LIMITS } from '../../broker/index.js';
import { Descriptors } from '../descriptors.js';
import type { GlobalOptions } from '../global-options.js';
import { print } from '../output.js';
import { choice, duration, integer, taskTypePath } from '../values.js';
import { clientAction } from '../client-action.js';

const DAY = 86_400_000;

interface SpecFlags {
  input?: string;
  cron?: string;
  timeZone?: string;
  every?: number;
  missed?: 'skip' | 'once' | 'all';
  missedLimit?: number;
  missedGraceMs?: number;
  overlap?: 'skip' | 'allow';
  queue?: string;
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  paused?: boolean;
}

/** The flags of create and update: when it fires, what it does with missed due times, the task's options. */
function specFlags(command: Command): Command {
  return command
    .argument('<type>', 'task type: the method, as /demo.v1.DemoService/Echo or demo.v1.DemoService.Echo', taskTypePath)
    .argument('[input]', 'the input message as JSON (proto3 JSON mapping), e.g. \'{"text": "hi"}\'')
    .option('--input <json>', 'the input message as JSON, as an option')
    .option('--cron <expression>', 'cron expression, 5 fields or 6 with seconds first: "*/5 * * * *", "0 9 * * MON-FRI"')
    .option('--time-zone <zone>', 'IANA time zone the cron expression is read in (default UTC)')
    .addOption(new Option('--every <duration>', 'fire at a fixed interval instead of cron (1s..366d: 30s, 5m, 1h)').argParser(duration(1000, 366 * DAY)))
    .addOption(new Option('--missed <policy>', 'due times missed while no server ran: skip, once (default) or all').argParser(choice(['skip', 'once', 'all'] as const)))
    .addOption(new Option('--missed-limit <n>', 'with --missed all, most missed due times fired (1..1000, default 10)').argParser(integer(1, 1000)))
    .addOption(new Option('--missed-grace-ms <duration>', 'a due time at most this late is on time (0..24h, default 5s)').argParser(duration(0, DAY)))
    .addOption(new Option('--overlap <policy>', 'while the last task still runs: skip (default) or allow').argParser(choice(['skip', 'allow'] as const)))
    .option('--queue <name>', 'queue of the tasks')
    .addOption(new Option('--priority <n>', `priority of the tasks, 0..${LIMITS.maxPriority}`).argParser(integer(0, LIMITS.maxPriority)))
    .addOption(new Option('--max-attempts <n>', `attempts allowed, 1..${LIMITS.maxAttempts}`).argParser(integer(1, LIMITS.maxAttempts)))
    .addOption(new Option('--timeout-ms <duration>', 'execution timeout per attempt (1ms..365d)').argParser(duration(1, 365 * DAY)));
}

function toSpec(d: Descriptors, type: string, inputText: string | undefined, o: SpecFlags): ScheduleSpecInput {
  const text = o.input ?? inputText ?? '{}';
  let json: JsonValue;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch {
    throw new Error(`the input is not JSON: ${text.slice(0, 60)}`);
  }
  if ((o.cron === undefined) === (o.every === undefined)) throw new Error('give --cron <expression> or --every <duration> (one of them)');
  return {
    type,
    input: d.pack(d.method(type).input, json),
    options: {
      ...(o.queue ? { queue: o.queue } : {}),
      ...(o.priority === undefined ? {} : { priority: o.priority }),
      ...(o.maxAttempts === undefined ? {} : { maxAttempts: o.maxAttempts }),
      ...(o.timeoutMs === undefined ? {} : { executionTimeoutMs: o.timeoutMs }),
    },
    ...(o.cron === undefined ? {} : { cron: o.cron }),
    ...(o.timeZone === undefined ? {} : { timeZone: o.timeZone }),
    ...(o.every === undefined ? {} : { intervalMs: o.every }),
    ...(o.missed === undefined ? {} : { missed: o.missed }),
    ...(o.missedLimit === undefined ? {} : { missedLimit: o.missedLimit }),
    ...(o.missedGraceMs === undefined ? {} : { missedGraceMs: o.missedGraceMs }),
    ...(o.overlap === undefined ? {} : { overlap: o.overlap }),
  };
}

const time = (date: Date | undefined) => date?.toISOString() ?? '-';

/** One line a schedule: when it fires, next and last firing, what it did. */
export function scheduleLine(s: Schedule): string {
  const timing = s.spec?.timing;
  const when =
    timing?.$case === 'cron' ? `cron "${timing.value.expression}" ${timing.value.timeZone}` : `every ${timing?.value.seconds ?? '?'}s`;
  const st = s.state;
  return [
    s.id,
    s.spec?.type ?? '',
    when,
    s.paused ? 'paused' : `next ${time(st?.nextFireTime)}`,
    `last ${time(st?.lastFireTime)}${st?.lastTaskId ? ` (${st.lastTaskId})` : ''}`,
    `fired ${st?.fired ?? 0}`,
    `missed skipped ${st?.missedSkipped ?? 0}`,
    `overlap skipped ${st?.overlapSkipped ?? 0}`,
    ...(st?.lastMissed ? [`last missed: ${st.lastMissed}`] : []),
  ].join('  ');
}

export function scheduleCommands(program: Command, globals: () => GlobalOptions): void {
  const withClient = clientAction(globals);
  const show = (d: Descriptors, g: GlobalOptions, s: Schedule) =>
    print(g.json, d.toJson('taskwire.v1.Schedule', Schedule.encode(s).finish()), () => scheduleLine(s));

  const schedule = program.command('schedule').description('tasks submitted on a cron expression or an interval (admin role)');

  specFlags(schedule.command('create').description('create a schedule; it first fires at its next due time').argument('<id>', 'a name for it: 1..128 of A-Z a-z 0-9 _ . : -'))
    .option('--paused', 'create it paused')
    .action(
      withClient(async (client, d, g, id: string, type: string, input: string | undefined, o: SpecFlags) => {
        show(d, g, await client.schedules.create(id, toSpec(d, type, input, o), { paused: o.paused ?? false }));
      }),
    );

  specFlags(schedule.command('update').description('replace a schedule\'s spec; its next due time is computed anew').argument('<id>')).action(
    withClient(async (client, d, g, id: string, type: string, input: string | undefined, o: SpecFlags) => {
      show(d, g, await client.schedules.update(id, toSpec(d, type, input, o)));
    }),
  );

  for (const [name, description] of [
    ['pause', 'stop firing until resumed'],
    ['resume', 'fire again from the next due time'],
    ['get', 'show a schedule'],
  ] as const) {
    schedule
      .command(name)
      .description(description)
      .argument('<id>')
      .action(
        withClient(async (client, d, g, id: string) => {
          show(d, g, await client.schedules[name](id));
        }),
      );
  }

  schedule
    .command('delete')
    .description('delete a schedule (its tasks stay)')
    .argument('<id>')
    .action(
      withClient(async (client, _d, g, id: string) => {
        await client.schedules.delete(id);
        print(g.json, { deleted: id }, () => `deleted ${id}`);
      }),
    );

  schedule
    .command('list')
    .description('every schedule with its next and last firing')
    .addOption(new Option('--limit <n>', 'page size, 1..1000').default(100).argParser(integer(1, 1000)))
    .option('--page-token <token>', 'from a previous list')
    .action(
      withClient(async (client, d, g, o: { limit: number; pageToken?: string }) => {
        const page = await client.schedules.list({ pageSize: o.limit, ...(o.pageToken ? { pageToken: o.pageToken } : {}) });
        print(
          g.json,
          { schedules: page.schedules.map((s) => d.toJson('taskwire.v1.Schedule', Schedule.encode(s).finish())), nextPageToken: page.nextPageToken },
          () =>
            [...page.schedules.map(scheduleLine), ...(page.nextPageToken ? [`next page: --page-token ${page.nextPageToken}`] : [])].join('\n') ||
            'no schedules: create one with taskwire schedule create <id> <type> --cron "<expression>"',
        );
      }),
    );
}
