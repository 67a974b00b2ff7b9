import { ClientError, Status } from 'nice-grpc';
import { Any } from '../../gen/ts/google/protobuf/any.js';
import { Task, TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { stateName } from '../store/index.js';
import type { Descriptors } from './descriptors.js';

/** Prints a value as JSON (for --json) or as text. */
export function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

export function taskJson(descriptors: Descriptors, task: Task) {
  return descriptors.toJson('taskwire.v1.Task', Task.encode(task).finish());
}

export function taskLine(task: Task): string {
  const progress = task.state === TaskState.TASK_STATE_RUNNING ? ` ${Math.round(task.progressPercent)}%` : '';
  return `${task.id}  ${stateName(task.state).padEnd(9)}${progress}  ${task.type}  attempt ${task.attempt}  queue ${task.options?.queue ?? ''}`;
}

export function taskText(descriptors: Descriptors, task: Task): string {
  const lines = [taskLine(task)];
  if (task.output) lines.push(`output: ${JSON.stringify(descriptors.toJson('google.protobuf.Any', Any.encode(task.output).finish()))}`);
  for (const error of task.errors) lines.push(`error (attempt ${error.attempt}, ${Status[error.code] ?? error.code}): ${error.message}`);
  if (task.cancelReason) lines.push(`cancelled: ${task.cancelReason}`);
  return lines.join('\n');
}

/** One line for any error: the status name and what the server said. */
export function errorLine(error: unknown): string {
  if (error instanceof ClientError) return `${Status[error.code]}: ${error.details}`;
  return error instanceof Error ? error.message : String(error);
}
