import { BinaryReader } from '@bufbuild/protobuf/wire';
import { TaskMethodOptions } from '../../gen/ts/taskwire/v1/options.js';
import type { TaskTypeInfo } from '../broker/index.js';
import { durationToMs, typeUrl, type MethodDefinition, type ServiceDefinition } from '../contract.js';

/** A generated service whose unary methods are task types (see `contract.ts` for the shape). */
export type TaskServiceDefinition = ServiceDefinition;

export type TaskDefaults = NonNullable<TaskTypeInfo['defaults']>;

export interface TaskServiceOptions<Methods extends string = string> {
  /** Defaults for every method of the service. */
  readonly defaults?: TaskDefaults;
  /** Defaults per method (by its key in the definition, e.g. `resize`), over the service's. */
  readonly methods?: Partial<Readonly<Record<Methods, TaskDefaults>>>;
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
  };
}

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
    return {
      type: `/${definition.fullName}/${method.name}`,
      ...(request === undefined ? {} : { inputTypeUrl: typeUrl(request) }),
      ...(response === undefined ? {} : { outputTypeUrl: typeUrl(response) }),
      checkInput: (value: Uint8Array) => problemDecoding(() => method.requestType.decode(value)),
      checkOutput: (value: Uint8Array) => problemDecoding(() => method.responseType.decode(value)),
      defaults: { ...defaultsFromOption(optionOf(method)), ...options.defaults, ...options.methods?.[key] },
    };
  });
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
