import { invalidArgument } from '../errors.js';
import type { BackoffPolicy, NewTask, Retention, TaskOptionsRecord } from '../store/index.js';
import type { SubmitRequest, TaskTypeInfo } from './types.js';
import { MAX_CONCURRENCY_LIMIT } from '../store/keys.js';

export const LIMITS = {
  maxPriority: 1000,
  maxAttempts: 100,
  maxIdempotencyKey: 256,
  maxLabels: 32,
  maxLabelKey: 64,
  maxLabelValue: 256,
  maxConcurrencyKey: 256,
  maxConcurrencyLimit: MAX_CONCURRENCY_LIMIT,
} as const;

const QUEUE_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 300_000, multiplier: 2, jitter: 0.2 };
export const DEFAULT_MAX_ATTEMPTS = 3;
const DAY_MS = 86_400_000;
/** River's: succeeded and cancelled tasks kept a day, the dead letter a week. */
export const DEFAULT_RETENTION: Retention = { succeededMs: DAY_MS, failedMs: 7 * DAY_MS, cancelledMs: DAY_MS };

/** A type's retention over the server's; throws naming the field when one is not a duration. */
export function resolveRetention(server: Retention, type: Partial<Retention> | undefined, where: string): Retention {
  const retention = type === undefined ? server : { ...server, ...type };
  for (const [field, ms] of Object.entries(retention)) {
    if (!Number.isSafeInteger(ms) || ms < 0) {
      throw invalidArgument(`${where}: retention.${field} must be a whole number of ms, 0 (keep forever) or more; got ${ms}`);
    }
  }
  return retention;
}

function check(condition: boolean, message: string): void {
  if (!condition) throw invalidArgument(message);
}

function checkMap(map: Readonly<Record<string, string>> | undefined, field: string): Record<string, string> {
  const entries = Object.entries(map ?? {});
  check(entries.length <= LIMITS.maxLabels, `${field} has ${entries.length} entries; at most ${LIMITS.maxLabels} are allowed`);
  for (const [key, value] of entries) {
    check(key.length > 0 && key.length <= LIMITS.maxLabelKey, `${field} keys must be 1..${LIMITS.maxLabelKey} characters`);
    check(value.length <= LIMITS.maxLabelValue, `${field}["${key}"] is longer than ${LIMITS.maxLabelValue} characters`);
  }
  return Object.fromEntries(entries);
}

/** A queue name as submits accept it; `field` names it in the error. */
export function checkQueueName(queue: string, field: string): void {
  check(QUEUE_NAME.test(queue), `${field} "${queue.slice(0, 40)}" must be 1..128 characters of letters, digits and _ . : -`);
}

const isDuration = (value: number | undefined) => value === undefined || (Number.isFinite(value) && value >= 0);

/**
 * Checks one submit and resolves its options (request, then the type's
 * defaults, then the server's). Throws INVALID_ARGUMENT naming the field and
 * what to do.
 */
export function resolveSubmit(
  request: SubmitRequest,
  types: ReadonlyMap<string, TaskTypeInfo>,
  id: string,
  now: number,
  retention: (info: TaskTypeInfo) => Retention = () => DEFAULT_RETENTION,
): NewTask {
  check(request.type !== '', 'type is required: the full method path of a task, e.g. "/demo.v1.DemoService/Echo"');
  const info = types.get(request.type);
  if (info === undefined) {
    const known = [...types.keys()].slice(0, 10).join(', ');
    throw invalidArgument(`unknown task type "${request.type}"; this server knows: ${known || 'none (register a task service)'}`);
  }
  check(request.input !== undefined, `input is required: pack a ${info.inputTypeUrl?.split('/').pop() ?? 'message'} into a google.protobuf.Any`);
  const input = request.input!;
  if (info.inputTypeUrl !== undefined) {
    check(
      input.typeUrl === info.inputTypeUrl,
      `input has type "${input.typeUrl}" but ${request.type} takes "${info.inputTypeUrl}"`,
    );
  }
  const problem = info.checkInput?.(input.value);
  check(problem === undefined, `input is not a valid ${info.inputTypeUrl?.split('/').pop() ?? 'message'}: ${problem}`);

  // What the submit asked for, then the task type's defaults, then the server's.
  const asked = request.options ?? {};
  const typeDefaults = info.defaults ?? {};
  const queue = asked.queue || typeDefaults.queue || 'default';
  checkQueueName(queue, 'options.queue');
  // 0 is a priority one may ask for: unset arrives as undefined (the field has presence on the wire).
  const priority = asked.priority ?? typeDefaults.priority ?? 0;
  check(
    Number.isInteger(priority) && priority >= 0 && priority <= LIMITS.maxPriority,
    `options.priority must be an integer in 0..${LIMITS.maxPriority} (higher runs first); got ${priority}`,
  );
  const maxAttempts = asked.maxAttempts || typeDefaults.maxAttempts || DEFAULT_MAX_ATTEMPTS;
  check(
    Number.isInteger(maxAttempts) && maxAttempts >= 1 && maxAttempts <= LIMITS.maxAttempts,
    `options.max_attempts must be in 1..${LIMITS.maxAttempts}; got ${maxAttempts}`,
  );
  check(asked.runAt === undefined || asked.delayMs === undefined, 'set options.run_at or options.delay, not both');
  check(isDuration(asked.delayMs), 'options.delay must not be negative');
  check(asked.runAt === undefined || Number.isFinite(asked.runAt), 'options.run_at is not a valid time');

  const backoff: BackoffPolicy = {
    initialMs: asked.backoff?.initialMs || typeDefaults.backoff?.initialMs || DEFAULT_BACKOFF.initialMs,
    maxMs: asked.backoff?.maxMs || typeDefaults.backoff?.maxMs || DEFAULT_BACKOFF.maxMs,
    multiplier: asked.backoff?.multiplier || typeDefaults.backoff?.multiplier || DEFAULT_BACKOFF.multiplier,
    jitter: asked.backoff?.jitter ?? typeDefaults.backoff?.jitter ?? DEFAULT_BACKOFF.jitter,
  };
  check(isDuration(backoff.initialMs) && isDuration(backoff.maxMs), 'options.backoff durations must not be negative');
  check(backoff.multiplier >= 1 && Number.isFinite(backoff.multiplier), 'options.backoff.multiplier must be at least 1');
  check(backoff.jitter >= 0 && backoff.jitter <= 1, 'options.backoff.jitter must be in [0, 1]');

  const executionTimeoutMs = asked.executionTimeoutMs || typeDefaults.executionTimeoutMs || undefined;
  const queueTimeoutMs = asked.queueTimeoutMs || typeDefaults.queueTimeoutMs || undefined;
  check(isDuration(executionTimeoutMs) && isDuration(queueTimeoutMs), 'options timeouts must not be negative');
  const idempotencyKey = asked.idempotencyKey || undefined;
  check(
    idempotencyKey === undefined || idempotencyKey.length <= LIMITS.maxIdempotencyKey,
    `options.idempotency_key is longer than ${LIMITS.maxIdempotencyKey} characters`,
  );

  const concurrencyKey = asked.concurrencyKey || info.keyOf?.(input.value) || typeDefaults.concurrencyKey || undefined;
  check(
    concurrencyKey === undefined || concurrencyKey.length <= LIMITS.maxConcurrencyKey,
    `options.concurrency_key is longer than ${LIMITS.maxConcurrencyKey} characters`,
  );
  const concurrencyLimit = asked.concurrencyLimit || typeDefaults.concurrencyLimit || 1;
  check(
    Number.isInteger(concurrencyLimit) && concurrencyLimit >= 1 && concurrencyLimit <= LIMITS.maxConcurrencyLimit,
    `options.concurrency_limit must be in 1..${LIMITS.maxConcurrencyLimit}; got ${concurrencyLimit}`,
  );

  const options: TaskOptionsRecord = {
    queue,
    priority,
    maxAttempts,
    backoff,
    ...(executionTimeoutMs === undefined ? {} : { executionTimeoutMs }),
    ...(queueTimeoutMs === undefined ? {} : { queueTimeoutMs }),
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    labels: checkMap(asked.labels, 'options.labels'),
    traceContext: checkMap(asked.traceContext, 'options.trace_context'),
    retention: retention(info),
    ...(concurrencyKey === undefined ? {} : { concurrencyKey, concurrencyLimit }),
  };
  const runAt = asked.runAt ?? (asked.delayMs ? now + asked.delayMs : now);
  return { id, type: request.type, input, options, runAt };
}
