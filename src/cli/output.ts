import { CommanderError } from 'commander';
import { ClientError } from 'nice-grpc';
import { Any } from '../../gen/ts/google/protobuf/any.js';
import { Task, TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { Code, codeName, TaskwireError } from '../errors.js';
import { stateName } from '../store/index.js';
import type { Descriptors } from './descriptors.js';

/** Prints a value as JSON (for --json) or as text. */
export function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

export function taskJson(descriptors: Descriptors, task: Task) {
  return descriptors.toJson('taskwire.v1.Task', Task.encode(task).finish());
}

const time = (date: Date | undefined) => (date === undefined ? undefined : date.toISOString());

/** One line per task, for list, cancel and retry: state, type, attempts, priority, queue, when. */
export function taskLine(task: Task): string {
  const progress = task.state === TaskState.TASK_STATE_RUNNING ? ` ${Math.round(task.progressPercent)}%` : '';
  const o = task.options;
  return [
    task.id,
    `${stateName(task.state).padEnd(9)}${progress}`,
    task.type,
    `attempt ${task.attempt}/${o?.maxAttempts ?? '?'}`,
    `priority ${o?.priority ?? 0}`,
    `queue ${o?.queue ?? ''}`,
    `created ${time(task.createTime) ?? '-'}`,
  ].join('  ');
}

/** A task in full, for get, watch and submit --wait. */
export function taskText(descriptors: Descriptors, task: Task): string {
  const o = task.options;
  const lines = [
    `${task.id}  ${stateName(task.state)}${task.state === TaskState.TASK_STATE_RUNNING ? ` ${Math.round(task.progressPercent)}%` : ''}  ${task.type}`,
    `  queue ${o?.queue ?? ''}  priority ${o?.priority ?? 0}  attempt ${task.attempt} of ${o?.maxAttempts ?? '?'}${task.workerId ? `  worker ${task.workerId}` : ''}`,
  ];
  const times = [
    ['created', task.createTime],
    ['runs', task.state === TaskState.TASK_STATE_SCHEDULED ? task.runTime : undefined],
    ['started', task.startTime],
    ['finished', task.finishTime],
  ] as const;
  lines.push(`  ${times.flatMap(([name, at]) => (at === undefined ? [] : [`${name} ${time(at)}`])).join('  ')}`);
  if (task.progressMessage && task.state === TaskState.TASK_STATE_RUNNING) lines.push(`  progress: ${task.progressMessage}`);
  if (task.output) lines.push(`  output: ${JSON.stringify(descriptors.toJson('google.protobuf.Any', Any.encode(task.output).finish()))}`);
  for (const error of task.errors) lines.push(`  error (attempt ${error.attempt}, ${codeName(error.code)}): ${error.message}`);
  if (task.cancelReason) lines.push(`  cancelled: ${task.cancelReason}`);
  return lines.join('\n');
}

/** What went wrong in a connection error, in words, when grpc-js's details say it. */
function unreachable(details: string): string | undefined {
  if (/ECONNREFUSED/.test(details)) return 'connection refused (is the server running, on that port?)';
  if (/ENOTFOUND|EAI_AGAIN|Name resolution failed/i.test(details)) return 'no such host';
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(details)) return 'no route to the host';
  if (/certificate|SSL|TLS|handshake/i.test(details)) return `TLS failed: ${details}`;
  if (/No connection established|Connection dropped|ECONNRESET|failed to connect/i.test(details)) return details;
  return undefined;
}

/** One line for any error: the status name and what the server said; a server out of reach in plain words. */
export function errorLine(error: unknown, server?: string): string {
  const status = statusOf(error);
  if (status !== undefined) {
    const reason = status.code === Code.UNAVAILABLE ? unreachable(status.message) : undefined;
    if (reason !== undefined) return `cannot reach taskwire at ${server ?? 'the server'}: ${reason}`;
    return `${codeName(status.code)}: ${status.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** The status a call ended with: the client's TaskwireError, or a raw call's ClientError (health). */
function statusOf(error: unknown): { code: number; message: string } | undefined {
  if (error instanceof TaskwireError) return { code: error.code, message: error.message };
  if (error instanceof ClientError) return { code: error.code, message: error.details };
  return undefined;
}

/** The same, for --json: `{"error": {"code": "NOT_FOUND", "message": "…"}}`. */
export function errorJson(error: unknown): { error: { code: string; message: string } } {
  const status = statusOf(error);
  if (status !== undefined) return { error: { code: codeName(status.code), message: status.message } };
  const code = error instanceof CommanderError ? 'INVALID_ARGUMENT' : 'UNKNOWN';
  return { error: { code, message: (error instanceof Error ? error.message : String(error)).replace(/^error: /, '') } };
}
