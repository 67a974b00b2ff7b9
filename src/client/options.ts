import type { TaskOptions } from '../../gen/ts/taskwire/v1/task.js';
import { msToDuration as duration } from '../contract.js';
import { injectTraceContext } from '../metrics/tracing.js';

/** Task options in milliseconds and Dates; unset fields take the server's defaults. */
export interface SubmitOptions {
  readonly queue?: string;
  /** 0..1000, higher first. */
  readonly priority?: number;
  readonly runAt?: Date;
  readonly delayMs?: number;
  readonly maxAttempts?: number;
  readonly backoff?: { initialMs?: number; maxMs?: number; multiplier?: number; jitter?: number };
  readonly executionTimeoutMs?: number;
  readonly queueTimeoutMs?: number;
  readonly idempotencyKey?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly traceContext?: Readonly<Record<string, string>>;
  /** Tasks of one key run at most `concurrencyLimit` (default 1) at once, in submission order. */
  readonly concurrencyKey?: string;
  readonly concurrencyLimit?: number;
}

/** The options with the caller's active trace context added, unless they carry one already. */
export function withTraceContext(options: SubmitOptions | undefined): SubmitOptions | undefined {
  if (options?.traceContext?.traceparent !== undefined) return options;
  const carrier = injectTraceContext();
  if (Object.keys(carrier).length === 0) return options;
  return { ...options, traceContext: { ...carrier, ...options?.traceContext } };
}

export function toTaskOptions(options: SubmitOptions | undefined): Partial<TaskOptions> | undefined {
  if (options === undefined) return undefined;
  const b = options.backoff;
  return {
    queue: options.queue ?? '',
    ...(options.priority === undefined ? {} : { priority: options.priority }),
    runAt: options.runAt,
    delay: duration(options.delayMs),
    maxAttempts: options.maxAttempts ?? 0,
    backoff:
      b === undefined
        ? undefined
        : { initial: duration(b.initialMs), max: duration(b.maxMs), multiplier: b.multiplier ?? 0, jitter: b.jitter },
    executionTimeout: duration(options.executionTimeoutMs),
    queueTimeout: duration(options.queueTimeoutMs),
    idempotencyKey: options.idempotencyKey ?? '',
    labels: { ...options.labels },
    traceContext: { ...options.traceContext },
    concurrencyKey: options.concurrencyKey ?? '',
    concurrencyLimit: options.concurrencyLimit ?? 0,
  };
}
