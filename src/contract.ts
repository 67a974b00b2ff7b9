import type { Duration } from '../gen/ts/google/protobuf/duration.js';

/**
 * What every layer needs to know about the Protobuf contracts, written once:
 * the shape of ts-proto's generated types (as nice-grpc's
 * `service-definitions/ts-proto.ts` does), type URLs, durations, the key of
 * one attempt, and how queued stream messages merge into one.
 */

/** A ts-proto message type: `outputTypeAnnotations=static-only` gives it `$type`. */
export interface MessageType<T> {
  readonly $type?: string;
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
  fromPartial(object: never): T;
}

/** The message a ts-proto message type decodes to. */
export type MessageOf<M> = M extends MessageType<infer T> ? T : never;
/** What the message type's `fromPartial` accepts: every field optional, nested too. */
export type PartialOf<M> = M extends { fromPartial(object: infer P): unknown } ? P : never;

/** One method of a ts-proto generic service definition. */
export interface MethodDefinition {
  readonly name: string;
  readonly requestType: MessageType<unknown>;
  readonly responseType: MessageType<unknown>;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  /** The method's options; custom ones, such as `(taskwire.v1.task)`, stay as unknown fields. */
  readonly options?: { readonly _unknownFields?: Readonly<Record<number, readonly Uint8Array[]>> };
}

/** A ts-proto generic service definition (`outputServices=generic-definitions`). */
export interface ServiceDefinition {
  readonly fullName: string;
  readonly methods: Readonly<Record<string, MethodDefinition>>;
}

const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** The google.protobuf.Any type URL of a message, by its full name. */
export const typeUrl = (messageName: string): string => `${TYPE_URL_PREFIX}${messageName}`;

/** The type URL of a generated message type; it must carry its name (`$type`). */
export function typeUrlOf(type: { readonly $type?: string }): string {
  if (type.$type === undefined) throw new Error('message type has no $type: generate with outputTypeAnnotations=static-only');
  return typeUrl(type.$type);
}

/** Milliseconds in a google.protobuf.Duration; undefined when unset. */
export function durationToMs(duration: Duration | undefined): number | undefined {
  if (duration === undefined) return undefined;
  return duration.seconds * 1000 + Math.round(duration.nanos / 1e6);
}

/** A google.protobuf.Duration of whole milliseconds (a fraction of one is rounded); undefined when unset. */
export function msToDuration(ms: number | undefined): Duration | undefined {
  if (ms === undefined) return undefined;
  const whole = Math.round(ms);
  return { seconds: Math.floor(whole / 1000), nanos: (whole % 1000) * 1e6 };
}

/** The key of one attempt of a task: a lease, a result, a progress report. */
export const attemptKey = (id: string, attempt: number): string => `${id}#${attempt}`;

/**
 * Merges the partial messages queued on a stream into one complete message
 * (the stream skips `fromPartial`): repeated fields are concatenated in
 * order, numbers (credit) added, flags or-ed, and any other field set takes
 * the last value given. `empty` makes the complete message with every
 * repeated field a new array.
 */
export function mergeMessages<M extends object>(empty: () => M, parts: readonly Partial<M>[]): M {
  const merged = empty() as Record<string, unknown>;
  for (const part of parts) {
    for (const field in part) {
      const value = (part as Record<string, unknown>)[field];
      if (value === undefined) continue;
      const current = merged[field];
      if (Array.isArray(value) && Array.isArray(current)) {
        for (const item of value) current.push(item);
      } else if (typeof value === 'number' && typeof current === 'number') {
        merged[field] = current + value;
      } else if (typeof value === 'boolean') {
        merged[field] = current === true || value;
      } else {
        merged[field] = value;
      }
    }
  }
  return merged as M;
}
