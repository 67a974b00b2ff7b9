import { failedPrecondition, invalidArgument } from '../errors.js';
import type { TaskTypeInfo, WorkerHello } from './types.js';

/** Bounds on what a worker may say about itself (docs/PROTOCOL.md, "Hello"). */
export const HELLO_LIMITS = {
  workerIdLength: 256,
  versionLength: 128,
  labels: 64,
  labelLength: 256,
  /**
   * Attempts named in Hello.resume: those it runs plus results not yet
   * acknowledged, which can outnumber its slots while the store cannot commit.
   */
  resume: 100_000,
} as const;

/** Letters, digits, punctuation and spaces: no control characters, and no U+FFFD left by invalid UTF-8. */
const PRINTABLE = /^[^\p{Cc}\p{Cs}\uFFFD]*$/u;

function checkText(value: string, field: string, max: number): void {
  if (value.length > max) throw invalidArgument(`${field} is ${value.length} characters long; the most allowed is ${max}`);
  if (!PRINTABLE.test(value)) {
    throw invalidArgument(`${field} must be valid UTF-8 without control characters; got ${JSON.stringify(value.slice(0, 64))}`);
  }
}

/**
 * Checks a worker's Hello before a session opens. Every task type it names
 * must be one this server serves: a replica answers only for the types it was
 * started with, so every replica of a deployment serves the same services and
 * a worker for a new type is deployed after the servers that know it.
 */
export function checkHello(hello: WorkerHello, types: ReadonlyMap<string, TaskTypeInfo>, maxSlots: number): void {
  if (hello.workerId === '') throw invalidArgument('hello.worker_id is required: a stable id of the worker process, e.g. host-pid');
  checkText(hello.workerId, 'hello.worker_id', HELLO_LIMITS.workerIdLength);
  checkText(hello.version, 'hello.version', HELLO_LIMITS.versionLength);
  if (!Number.isInteger(hello.slots) || hello.slots < 1 || hello.slots > maxSlots) {
    throw invalidArgument(`hello.slots must be in 1..${maxSlots}; got ${hello.slots}`);
  }
  if (hello.taskTypes.length === 0) throw invalidArgument('hello.task_types must name at least one task type');
  const seen = new Set<string>();
  const unknown: string[] = [];
  for (const type of hello.taskTypes) {
    if (seen.has(type)) throw invalidArgument(`hello.task_types names "${type}" twice; name each type once`);
    seen.add(type);
    if (!types.has(type)) unknown.push(type);
  }
  if (unknown.length > 0) {
    // The worker is fine; this server is not set up for it (FAILED_PRECONDITION, not INVALID_ARGUMENT).
    const known = [...types.keys()].slice(0, 10).join(', ') || 'none';
    throw failedPrecondition(
      `this server does not serve ${unknown.slice(0, 5).map((t) => `"${t}"`).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}; ` +
        `it serves ${known}. Start the server with the task service (addTaskService, or --services) before workers that implement it`,
    );
  }
  const labels = Object.entries(hello.labels);
  if (labels.length > HELLO_LIMITS.labels) throw invalidArgument(`hello.labels has ${labels.length} entries; the most allowed is ${HELLO_LIMITS.labels}`);
  for (const [key, value] of labels) {
    checkText(key, 'a hello.labels key', HELLO_LIMITS.labelLength);
    checkText(value, `hello.labels["${key}"]`, HELLO_LIMITS.labelLength);
  }
  if (hello.resume.length > HELLO_LIMITS.resume) {
    throw invalidArgument(`hello.resume names ${hello.resume.length} attempts; the most allowed is ${HELLO_LIMITS.resume}`);
  }
}
