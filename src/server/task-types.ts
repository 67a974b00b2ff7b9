import { BinaryReader } from '@bufbuild/protobuf/wire';
import { TaskMethodOptions } from '../../gen/ts/taskwire/v1/options.js';
import type { RateLimit, TaskTypeInfo } from '../broker/index.js';
import { durationToMs, typeUrl, type MethodDefinition, type ServiceDefinition } from '../contract.js';

/** A generated service whose unary methods are task types (see `contract.ts` for the shape). */
export type TaskServiceDefinition = ServiceDefinition;

export type TaskDefaults = NonNullable<TaskTypeInfo['defaults']>;

/** A method's defaults in code: its tasks' options, and the type's start rate (over the method option's). */
export type TaskTypeDefaults = TaskDefaults & { readonly rateLimit?: RateLimit };

export interface TaskServiceOptions<Methods extends string = string> {
  /** Defaults for every method of the service. */
  readonly defaults?: TaskTypeDefaults;
  /** Defaults per method (by its key in the definition, e.g. `resize`), over the service's. */
  readonly methods?: Partial<Readonly<Record<Methods, TaskTypeDefaults>>>;
}

/** The start rate of a method's `(taskwire.v1.task)` option; a burst without a rate is refused. */
export function rateFromOption(option: TaskMethodOptions | undefined, method: string): RateLimit | undefined {
  if (option === undefined || option.ratePerSecond === 0) {
    if (option?.rateBurst) throw new Error(`${method}: rate_burst needs rate_per_second`);
    return undefined;
  }
  return { perSecond: option.ratePerSecond, ...(option.rateBurst ? { burst: option.rateBurst } : {}) };
}

/** The wire tag of the (taskwire.v1.task) method option: field 51234, length-delimited. */
const TASK_OPTION_TAG = (51234 << 3) | 2;

/** Task defaults from a method's `(taskwire.v1.task)` option. */
export function defaultsFromOption(option: TaskMethodOptions | undefined): TaskDefaults {
  if (option === undefined) return {};
  const executionTimeoutMs = durationToMs(option.executionTimeout);
  const queueTimeoutMs = durationToMs(option.queueTimeout);
  return {
    ...(option.queue ? { queue: option.queue } : {}),
    ...(option.priority ? { priority: option.priority } : {}),
    ...(option.maxAttempts ? { maxAttempts: option.maxAttempts } : {}),
    ...(executionTimeoutMs ? { executionTimeoutMs } : {}),
    ...(queueTimeoutMs ? { queueTimeoutMs } : {}),
    ...retentionFromOption(option),
    ...(option.concurrencyLimit ? { concurrencyLimit: option.concurrencyLimit } : {}),
  };
}

/** retain_* of the option: a field set to zero keeps forever, an unset one takes the server's. */
function retentionFromOption(option: TaskMethodOptions): Pick<TaskDefaults, 'retention'> {
  const retention = {
    ...(option.retainSucceeded === undefined ? {} : { succeededMs: durationToMs(option.retainSucceeded) }),
    ...(option.retainFailed === undefined ? {} : { failedMs: durationToMs(option.retainFailed) }),
    ...(option.retainCancelled === undefined ? {} : { cancelledMs: durationToMs(option.retainCancelled) }),
  };
  return Object.keys(retention).length === 0 ? {} : { retention };
}

/**
 * The `keyOf` of a task type whose option names a concurrency key field:
 * the field's value in the decoded input (a string, or a number as text);
 * empty means no key. `fieldOf` maps the proto field name to the decoded
 * message's property, or undefined when the message has no such field.
 */
export function keyReader(
  option: TaskMethodOptions | undefined,
  method: string,
  decode: (input: Uint8Array) => Record<string, unknown>,
  fieldOf: (protoName: string) => string | undefined,
): ((input: Uint8Array) => string | undefined) | undefined {
  const name = option?.concurrencyKeyField;
  if (!name) return undefined;
  const property = fieldOf(name);
  if (property === undefined) throw new Error(`${method}: concurrency_key_field "${name}" is not a field of its input message`);
  return (input) => {
    const value = decode(input)[property];
    if (typeof value === 'string') return value || undefined;
    if (typeof value === 'number' || typeof value === 'bigint') return String(value);
    return undefined;
  };
}

const camel = (snake: string) => snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** ts-proto keeps custom options as unknown fields of the method's options; decode ours. */
function optionOf(method: MethodDefinition): TaskMethodOptions | undefined {
  const raw = method.options?._unknownFields?.[TASK_OPTION_TAG]?.[0];
  return raw === undefined ? undefined : TaskMethodOptions.decode(new BinaryReader(raw).bytes());
}

/** Each unary method of a service definition becomes a task type named by its full method path. */
export function taskTypesOf(
  definition: TaskServiceDefinition,
  options: TaskServiceOptions = {},
): TaskTypeInfo[] {
  return Object.entries(definition.methods).map(([key, method]) => {
    if (method.requestStream || method.responseStream) {
      throw new Error(`${definition.fullName}/${method.name} is a streaming method; task methods must be unary`);
    }
    const request = method.requestType.$type;
    const response = method.responseType.$type;
    const option = optionOf(method);
    const decode = (input: Uint8Array) => method.requestType.decode(input) as Record<string, unknown>;
    const empty = decode(new Uint8Array());
    const type = `/${definition.fullName}/${method.name}`;
    const { rateLimit: serviceRate, ...serviceDefaults } = options.defaults ?? {};
    const { rateLimit: methodRate, ...methodDefaults } = options.methods?.[key] ?? {};
    const rateLimit = methodRate ?? serviceRate ?? rateFromOption(option, type);
    const keyOf = keyReader(option, `/${definition.fullName}/${method.name}`, decode, (name) => (camel(name) in empty ? camel(name) : undefined));
    return {
      type,
      ...(request === undefined ? {} : { inputTypeUrl: typeUrl(request) }),
      ...(response === undefined ? {} : { outputTypeUrl: typeUrl(response) }),
      checkInput: (value: Uint8Array) => problemDecoding(() => method.requestType.decode(value)),
      checkOutput: (value: Uint8Array) => problemDecoding(() => method.responseType.decode(value)),
      ...(keyOf === undefined ? {} : { keyOf }),
      ...(rateLimit === undefined ? {} : { rateLimit }),
      defaults: mergeDefaults(defaultsFromOption(option), serviceDefaults, methodDefaults),
    };
  });
}

/** Later defaults win, field by field (retention's fields too). */
function mergeDefaults(...layers: ReadonlyArray<TaskDefaults | undefined>): TaskDefaults {
  let merged: TaskDefaults = {};
  for (const layer of layers) {
    if (layer === undefined) continue;
    const retention = merged.retention === undefined || layer.retention === undefined ? (layer.retention ?? merged.retention) : { ...merged.retention, ...layer.retention };
    merged = { ...merged, ...layer, ...(retention === undefined ? {} : { retention }) };
  }
  return merged;
}

/** What is wrong with a message, by decoding it; undefined when it decodes. */
export function problemDecoding(decode: () => unknown): string | undefined {
  try {
    decode();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
