import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createFileRegistry,
  fromBinary,
  fromJson,
  getOption,
  hasOption,
  toBinary,
  toJson,
  type DescMessage,
  type DescMethod,
  type FileRegistry,
  type JsonValue,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import type { Any } from '../../gen/ts/google/protobuf/any.js';
import { TaskMethodOptions } from '../../gen/ts/taskwire/v1/options.js';
import type { TaskTypeInfo } from '../broker/index.js';
import { typeUrl } from '../contract.js';
import { defaultsFromOption, keyReader, problemDecoding } from '../server/index.js';

/** The descriptor set this package ships (taskwire.v1 and the demo). */
export const BUNDLED_DESCRIPTOR = join(dirname(fileURLToPath(import.meta.url)), '../../../gen/descriptor.binpb');

/**
 * Message types known at run time, from a FileDescriptorSet (`buf build -o`):
 * the CLI turns JSON into task inputs and task records into JSON with it, and
 * the server registers task services from it.
 */
export class Descriptors {
  readonly registry: FileRegistry;

  constructor(paths: readonly string[]) {
    const sets = paths.map((path) => fromBinary(FileDescriptorSetSchema, readFileSync(path)));
    this.registry = createFileRegistry(...sets.map((set) => createFileRegistry(set)));
  }

  method(type: string): DescMethod {
    const match = /^\/([^/]+)\/([^/]+)$/.exec(type);
    if (match === null) throw new Error(`"${type}" is not a method path like /demo.v1.DemoService/Echo`);
    const service = this.registry.getService(match[1]!);
    const method = service?.methods.find((m) => m.name === match[2]);
    if (method === undefined) throw new Error(`no method ${type} in the descriptor set; pass --descriptor with the set that defines it`);
    return method;
  }

  /** Every method of the named services as task types. */
  taskTypes(serviceNames: readonly string[]): TaskTypeInfo[] {
    return serviceNames.flatMap((name) => {
      const service = this.registry.getService(name);
      if (service === undefined) throw new Error(`no service ${name} in the descriptor set`);
      const extension = this.registry.getExtension('taskwire.v1.task');
      return service.methods.map((m) => {
        const type = `/${service.typeName}/${m.name}`;
        const option =
          extension?.message === undefined || !hasOption(m, extension)
            ? undefined
            : TaskMethodOptions.decode(toBinary(extension.message!, getOption(m, extension) as never));
        const keyOf = keyReader(
          option,
          type,
          (input) => fromBinary(m.input, input) as unknown as Record<string, unknown>,
          (name) => m.input.fields.find((f) => f.name === name)?.localName,
        );
        return {
          type,
          ...(keyOf === undefined ? {} : { keyOf }),
          defaults: defaultsFromOption(option),
          inputTypeUrl: typeUrl(m.input.typeName),
          outputTypeUrl: typeUrl(m.output.typeName),
          checkInput: (value: Uint8Array) => problemDecoding(() => fromBinary(m.input, value)),
          checkOutput: (value: Uint8Array) => problemDecoding(() => fromBinary(m.output, value)),
        };
      });
    });
  }

  /** JSON (proto3 JSON mapping) → an Any of the message type. */
  pack(schema: DescMessage, json: JsonValue): Any {
    const message = fromJson(schema, json, { registry: this.registry });
    return { typeUrl: typeUrl(schema.typeName), value: Buffer.from(toBinary(schema, message)) };
  }

  /** Bytes of a message (as ts-proto encodes it) → proto3 JSON, Any fields expanded where their type is known. */
  toJson(typeName: string, bytes: Uint8Array): JsonValue {
    const schema = this.registry.getMessage(typeName);
    if (schema === undefined) throw new Error(`no message ${typeName} in the descriptor set`);
    return toJson(schema, fromBinary(schema, bytes), { registry: this.registry });
  }
}
