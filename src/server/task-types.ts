import type { TaskTypeInfo } from '../broker/index.js';

/** The shape of a ts-proto generic service definition, as far as task types need it. */
export interface TaskServiceDefinition {
  readonly fullName: string;
  readonly methods: Readonly<
    Record<
      string,
      {
        readonly name: string;
        readonly requestType: { readonly $type?: string; decode(input: Uint8Array): unknown };
        readonly responseType: { readonly $type?: string };
        readonly requestStream: boolean;
        readonly responseStream: boolean;
      }
    >
  >;
}

export type TaskDefaults = NonNullable<TaskTypeInfo['defaults']>;

export interface TaskServiceOptions<Methods extends string = string> {
  /** Defaults for every method of the service. */
  readonly defaults?: TaskDefaults;
  /** Defaults per method (by its key in the definition, e.g. `resize`), over the service's. */
  readonly methods?: Partial<Readonly<Record<Methods, TaskDefaults>>>;
}

export const typeUrl = (messageName: string) => `type.googleapis.com/${messageName}`;

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
      checkInput: (value: Uint8Array) => {
        try {
          method.requestType.decode(value);
          return undefined;
        } catch (error) {
          return error instanceof Error ? error.message : String(error);
        }
      },
      defaults: { ...options.defaults, ...options.methods?.[key] },
    };
  });
}
