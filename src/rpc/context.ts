import type { Logger } from 'pino';

/** What the built-in server middleware adds to every handler's CallContext. */
export interface TaskwireCallContext {
  /** A child logger bound to this call (method, peer, and the fields given to `logFields` before it was made). */
  readonly log: Logger;
  /**
   * Adds fields to this call's log line, such as the task the call concerns
   * (`task_id`, `trace_id`), so a task's calls can be found in the logs.
   */
  readonly logFields: (fields: Readonly<Record<string, unknown>>) => void;
  /**
   * The caller's deadline, if it sent one. `signal` aborts when it passes, so
   * a handler only needs the date to pass it on (to a task, a downstream call).
   */
  readonly deadline: Date | undefined;
  /** Aborted when the server begins to shut down: long-lived streams end themselves. */
  readonly draining: AbortSignal;
  /** Who is calling, as established by the auth hook; undefined when auth is off. */
  readonly principal: Principal | undefined;
}

/** The authenticated caller. */
export interface Principal {
  readonly name: string;
  readonly roles: readonly string[];
}
