import type { RateLimit } from './rate-limits.js';
import type { AttemptRef, BackoffPolicy, Lease, Payload, Retention, TaskOptionsRecord } from '../store/index.js';

/** Options a submitter may set; anything unset takes the task type's defaults, then the server's. */
export interface RequestedOptions {
  readonly queue?: string;
  readonly priority?: number;
  /** Epoch milliseconds. */
  readonly runAt?: number;
  readonly delayMs?: number;
  readonly maxAttempts?: number;
  readonly backoff?: Partial<BackoffPolicy>;
  readonly executionTimeoutMs?: number;
  readonly queueTimeoutMs?: number;
  readonly idempotencyKey?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly traceContext?: Readonly<Record<string, string>>;
  readonly concurrencyKey?: string;
  readonly concurrencyLimit?: number;
}

export interface SubmitRequest {
  readonly type: string;
  readonly input?: Payload;
  readonly options?: RequestedOptions;
}

/** A task type the server knows: the method path, its message types and its defaults. */
export interface TaskTypeInfo {
  readonly type: string;
  /** Type URL the input must carry (type.googleapis.com/<request message>); any when absent. */
  readonly inputTypeUrl?: string;
  readonly outputTypeUrl?: string;
  /** Parses an input; returns what is wrong with it, or undefined when it is a valid message. */
  readonly checkInput?: (value: Uint8Array) => string | undefined;
  /** Parses a worker's output the same way. */
  readonly checkOutput?: (value: Uint8Array) => string | undefined;
  /** The concurrency key of a task whose submit sets none: from a field of its input (TaskMethodOptions.concurrency_key_field). */
  readonly keyOf?: (input: Uint8Array) => string | undefined;
  /** Tasks of this type started per second, across all workers (TaskMethodOptions.rate_per_second). */
  readonly rateLimit?: RateLimit;
  readonly defaults?: Partial<Omit<TaskOptionsRecord, 'labels' | 'traceContext' | 'idempotencyKey' | 'retention'>> & {
    /** How long this type's finished tasks are kept, over the server's; 0 keeps them forever. */
    readonly retention?: Partial<Retention>;
  };
}

export interface WorkerHello {
  /**
   * The worker's id. With tokens on, the session's identity (what its leases
   * are held under, and what it shows as) is `<token name>/<worker id>`.
   */
  readonly workerId: string;
  /** The name of the token the worker presented, when tokens are on. */
  readonly principal?: string;
  readonly taskTypes: readonly string[];
  readonly slots: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly version: string;
  readonly peer: string;
  readonly resume: readonly AttemptRef[];
}

export interface CancelRef extends AttemptRef {
  readonly reason: string;
}

/** A worker's result, release or resume the server refused, and why. */
export interface Rejection extends AttemptRef {
  readonly reason: string;
}

/** Where the broker sends a worker's messages; the transport maps them to the wire. */
export interface WorkerSink {
  /** Acknowledgements are not urgent: the transport may hold them for the next message. */
  acknowledge(refs: readonly AttemptRef[]): void;
  send(message: {
    assignments?: readonly Lease[];
    cancels?: readonly CancelRef[];
    rejected?: readonly Rejection[];
  }): void;
  /** Ends the session from the server side (missed heartbeats, protocol error). */
  close(reason: Error): void;
}

export interface WorkerWelcome {
  readonly sessionId: string;
  readonly heartbeatMs: number;
  readonly leaseMs: number;
  readonly resumed: readonly AttemptRef[];
}

export interface WorkerSnapshot {
  /** The server replica the worker is connected to. */
  readonly replica: string;
  readonly sessionId: string;
  readonly workerId: string;
  readonly taskTypes: readonly string[];
  readonly slots: number;
  readonly running: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly version: string;
  readonly peer: string;
  readonly connectedAt: number;
  readonly lastSeenAt: number;
}
