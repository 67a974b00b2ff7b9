import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { create, createFileRegistry, fromBinary, type FileRegistry } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt';

/** gen/descriptor.binpb, from the sources (src/http) or the build (dist/src/http). */
function bundledDescriptor(): Uint8Array {
  for (const relative of ['../../gen/descriptor.binpb', '../../../gen/descriptor.binpb']) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(path)) return readFileSync(path);
  }
  throw new Error('gen/descriptor.binpb is missing from the taskwire package: run npm run generate');
}

const LABEL_OPTIONAL = FieldDescriptorProto_Label.OPTIONAL;
const TYPE_STRING = FieldDescriptorProto_Type.STRING;
const TYPE_ENUM = FieldDescriptorProto_Type.ENUM;

/**
 * grpc/health/v1/health.proto, as far as the listener serves it (Check):
 * nice-grpc-server-health ships ts-proto code, not a descriptor.
 */
const healthFile = create(FileDescriptorProtoSchema, {
  name: 'grpc/health/v1/health.proto',
  package: 'grpc.health.v1',
  syntax: 'proto3',
  messageType: [
    { name: 'HealthCheckRequest', field: [{ name: 'service', number: 1, label: LABEL_OPTIONAL, type: TYPE_STRING, jsonName: 'service' }] },
    {
      name: 'HealthCheckResponse',
      field: [
        { name: 'status', number: 1, label: LABEL_OPTIONAL, type: TYPE_ENUM, typeName: '.grpc.health.v1.HealthCheckResponse.ServingStatus', jsonName: 'status' },
      ],
      enumType: [
        {
          name: 'ServingStatus',
          value: [
            { name: 'UNKNOWN', number: 0 },
            { name: 'SERVING', number: 1 },
            { name: 'NOT_SERVING', number: 2 },
            { name: 'SERVICE_UNKNOWN', number: 3 },
          ],
        },
      ],
    },
  ],
  service: [
    {
      name: 'Health',
      method: [{ name: 'Check', inputType: '.grpc.health.v1.HealthCheckRequest', outputType: '.grpc.health.v1.HealthCheckResponse' }],
    },
  ],
});

/**
 * The message and service types the listener knows: taskwire's own, the
 * demo's, grpc.health.v1, and those of the server's descriptor sets (the
 * CLI's `--descriptor`). Connect's router takes its services from here, and
 * JSON names `google.protobuf.Any` contents ("@type") with it.
 */
export function createRegistry(descriptorSets: readonly Uint8Array[]): FileRegistry {
  const sets = [bundledDescriptor(), ...descriptorSets].map((bytes) => createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes)));
  return createFileRegistry(...sets, createFileRegistry(healthFile, () => undefined));
}
