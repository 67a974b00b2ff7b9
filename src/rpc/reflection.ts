import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import type { CallContext } from 'nice-grpc';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';
import type { ServerReflectionResponse } from 'nice-grpc-server-reflection/lib/proto/grpc/reflection/v1/reflection_pb.js';

type Definition = typeof ServerReflectionService;
type Implementation = ReturnType<typeof ServerReflection>;

/**
 * grpc.reflection.v1 from nice-grpc-server-reflection, and the same service
 * under grpc.reflection.v1alpha (its messages are the same on the wire), which
 * older grpcurl builds and many language clients still speak only. Every file
 * answer also carries the file's imports, transitively, as grpc-go's does, so
 * a client can build the descriptors from one answer.
 */
export function reflectionServices(descriptorSet: Uint8Array, serviceNames: readonly string[]): Array<[Definition, Implementation]> {
  const base = ServerReflection(descriptorSet, [...serviceNames]);
  const files = new Map(fromBinary(FileDescriptorSetSchema, descriptorSet).file.map((file) => [file.name, file]));
  const encoded = new Map<string, Uint8Array>();
  const bytesOf = (file: FileDescriptorProto) => {
    let bytes = encoded.get(file.name);
    if (bytes === undefined) encoded.set(file.name, (bytes = toBinary(FileDescriptorProtoSchema, file)));
    return bytes;
  };

  /** The imports of `name`, transitively, each once. */
  function importsOf(name: string, seen: Set<string>): FileDescriptorProto[] {
    const found: FileDescriptorProto[] = [];
    for (const dependency of files.get(name)?.dependency ?? []) {
      if (seen.has(dependency)) continue;
      seen.add(dependency);
      const file = files.get(dependency);
      if (file === undefined) continue;
      found.push(file, ...importsOf(dependency, seen));
    }
    return found;
  }

  function withImports(response: ServerReflectionResponse): ServerReflectionResponse {
    const answer = response.getFileDescriptorResponse();
    const first = answer?.getFileDescriptorProtoList_asU8()[0];
    if (answer === undefined || first === undefined) return response;
    const name = fromBinary(FileDescriptorProtoSchema, first).name;
    for (const file of importsOf(name, new Set([name]))) answer.addFileDescriptorProto(bytesOf(file));
    return response;
  }

  const implementation: Implementation = {
    async *serverReflectionInfo(requests, context: CallContext) {
      for await (const response of base.serverReflectionInfo(requests, context)) yield withImports(response);
    },
  };
  const v1alpha = Object.fromEntries(
    Object.entries(ServerReflectionService).map(([name, method]) => [
      name,
      { ...method, path: method.path.replace('/grpc.reflection.v1.', '/grpc.reflection.v1alpha.') },
    ]),
  ) as Definition;
  return [
    [ServerReflectionService, implementation],
    [v1alpha, implementation],
  ];
}
