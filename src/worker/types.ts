import type { Logger } from 'pino';
import type { MessageOf, MethodDefinition, PartialOf, ServiceDefinition } from '../contract.js';

export type { MessageType, MethodDefinition, ServiceDefinition } from '../contract.js';

/** What a handler knows about the attempt it runs. */
export interface TaskContext {
  readonly taskId: string;
  /** 1-based; the task fails for good after `maxAttempts`. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly type: string;
  readonly queue: string;
  /** When the attempt must be done (execution timeout), if it has a limit. */
  readonly deadline: Date | undefined;
  /** Aborts when the task is cancelled, its deadline passes, its lease is lost or the worker stops. */
  readonly signal: AbortSignal;
  /** Labels and trace context of the task. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Reports progress (0..100) to watchers. Cheap: reports are coalesced. */
  progress(percent: number, message?: string): void;
  readonly log: Logger;
}

export type TaskHandler<M extends MethodDefinition> = (
  input: MessageOf<M['requestType']>,
  ctx: TaskContext,
) => Promise<PartialOf<M['responseType']>> | PartialOf<M['responseType']>;

/** One handler per method of the service: a missing or mistyped one is a compile error. */
export type TaskHandlers<D extends ServiceDefinition> = {
  readonly [K in keyof D['methods']]: TaskHandler<D['methods'][K]>;
};
