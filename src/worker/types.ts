import type { Logger } from 'pino';

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

/** A ts-proto message type, as far as the worker needs it. */
export interface MessageType<T> {
  readonly $type?: string;
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
  fromPartial(object: never): T;
}

type Message<M> = M extends MessageType<infer T> ? T : never;
type Partial_<M> = M extends { fromPartial(object: infer P): unknown } ? P : never;

/** One method of a generated service definition. */
export interface MethodDefinition {
  readonly name: string;
  readonly requestType: MessageType<unknown>;
  readonly responseType: MessageType<unknown>;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

export interface ServiceDefinition {
  readonly fullName: string;
  readonly methods: Readonly<Record<string, MethodDefinition>>;
}

export type TaskHandler<M extends MethodDefinition> = (
  input: Message<M['requestType']>,
  ctx: TaskContext,
) => Promise<Partial_<M['responseType']>> | Partial_<M['responseType']>;

/** One handler per method of the service: a missing or mistyped one is a compile error. */
export type TaskHandlers<D extends ServiceDefinition> = {
  readonly [K in keyof D['methods']]: TaskHandler<D['methods'][K]>;
};
