import { Option, type Command } from 'commander';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import type { TaskFilter } from '../../gen/ts/taskwire/v1/task_service.js';
import { Code } from '../errors.js';
import { errorCode, label, taskStates, taskTypePath, timeOrAge } from './values.js';

/** State names as people type them: failed → TASK_STATE_FAILED. */
const STATES = Object.fromEntries(
  Object.entries(TaskState)
    .filter(([name, value]) => typeof value === 'number' && value > 0 && name.startsWith('TASK_STATE_'))
    .map(([name, value]) => [name.replace('TASK_STATE_', ''), value as number]),
);

/** The filter flags as commander parses them. */
export interface FilterFlags {
  state?: TaskState[];
  queue?: string;
  type?: string;
  since?: number;
  before?: number;
  finishedSince?: number;
  finishedBefore?: number;
  label?: Record<string, string>;
  errorCode?: number;
}

/** The names of the flags that select tasks, to tell a filter from none. */
export const FILTER_FLAGS = ['state', 'queue', 'type', 'since', 'before', 'finishedSince', 'finishedBefore', 'label', 'errorCode'] as const;

/**
 * Adds the flags that select tasks, the same for list, retry and cancel.
 * They have no TASKWIRE_* variables on purpose: a variable left set in a
 * shell would silently change which tasks a bulk cancel hits.
 */
export function addFilterFlags(command: Command): Command {
  return command
    .addOption(new Option('--state <states>', 'only these states, comma-separated: scheduled, queued, running, succeeded, failed, cancelled').argParser(taskStates(STATES)))
    .option('--queue <name>', 'only this queue')
    .addOption(new Option('--type <type>', 'only this task type (/pkg.Service/Method)').argParser(taskTypePath))
    .addOption(new Option('--since <age|time>', 'created at or after: an age (30s, 5m, 1h ago) or an ISO 8601 time').argParser((t) => timeOrAge(t)))
    .addOption(new Option('--before <age|time>', 'created before: an age or an ISO 8601 time').argParser((t) => timeOrAge(t)))
    .addOption(new Option('--finished-since <age|time>', 'finished at or after: an age or an ISO 8601 time').argParser((t) => timeOrAge(t)))
    .addOption(new Option('--finished-before <age|time>', 'finished before: an age or an ISO 8601 time').argParser((t) => timeOrAge(t)))
    .addOption(new Option('--label <key=value>', 'only tasks with this label; repeat for several').argParser(label))
    .addOption(new Option('--error-code <code>', 'only tasks whose last error has this status code (UNAVAILABLE or 14)').argParser(errorCode(Code)));
}

/** The flags as the contract's TaskFilter fields (ListTasksRequest has the same names). */
export function filterOf(flags: FilterFlags): Partial<TaskFilter> {
  return {
    ...(flags.state === undefined ? {} : { states: flags.state }),
    ...(flags.queue ? { queue: flags.queue } : {}),
    ...(flags.type ? { type: flags.type } : {}),
    ...(flags.since === undefined ? {} : { createdSince: new Date(flags.since) }),
    ...(flags.before === undefined ? {} : { createdBefore: new Date(flags.before) }),
    ...(flags.finishedSince === undefined ? {} : { finishedSince: new Date(flags.finishedSince) }),
    ...(flags.finishedBefore === undefined ? {} : { finishedBefore: new Date(flags.finishedBefore) }),
    ...(flags.label === undefined ? {} : { labels: flags.label }),
    ...(flags.errorCode === undefined ? {} : { errorCode: flags.errorCode }),
  };
}

/** Whether any flag that selects tasks was given. */
export const hasFilter = (flags: FilterFlags) => FILTER_FLAGS.some((name) => flags[name] !== undefined);
