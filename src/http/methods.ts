import type { CompatServiceDefinition } from 'nice-grpc';

/**
 * One method of a nice-grpc service implementation, as the HTTP listener
 * calls it: bytes in, bytes out, through the implementation the gRPC server
 * runs. The codec is the method's own (ts-proto's, or the gateway's identity).
 */
export interface ServedMethod {
  /** "/package.Service/Method" */
  readonly path: string;
  readonly responseStream: boolean;
  readonly decode: (bytes: Uint8Array) => unknown;
  readonly encode: (message: unknown) => Uint8Array;
  /** The implementation function, called with the decoded request and a call context. */
  readonly implementation: (request: unknown, context: never) => unknown;
}

type TsProtoMethod = {
  name: string;
  requestType: { decode(bytes: Uint8Array): unknown };
  responseType: { encode(message: never): { finish(): Uint8Array }; fromPartial?(value: never): unknown };
  requestStream: boolean;
  responseStream: boolean;
};
type GrpcJsMethod = {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(message: never): Uint8Array;
};

/**
 * The methods HTTP can carry of a service (unary and server streams: a
 * request stream needs full duplex, which gRPC has and HTTP/1.1 has not).
 * Accepts the two shapes nice-grpc takes: ts-proto's generic definitions and
 * grpc-js definitions (the gateway's).
 */
export function servedMethods(definition: CompatServiceDefinition, implementation: object): ServedMethod[] {
  const impl = implementation as Record<string, ServedMethod['implementation']>;
  if ('methods' in definition && 'fullName' in definition) {
    const tsProto = definition as unknown as { fullName: string; methods: Record<string, TsProtoMethod> };
    return Object.entries(tsProto.methods)
      .filter(([key, method]) => !method.requestStream && impl[key] !== undefined)
      .map(([key, method]) => ({
        path: `/${tsProto.fullName}/${method.name}`,
        responseStream: method.responseStream,
        decode: (bytes) => method.requestType.decode(bytes),
        // nice-grpc's own serializer: implementations may answer partial messages.
        encode: (message) => {
          const type = method.responseType;
          return type.encode((type.fromPartial === undefined ? message : type.fromPartial(message as never)) as never).finish();
        },
        implementation: impl[key]!.bind(implementation),
      }));
  }
  const grpcJs = definition as unknown as Record<string, GrpcJsMethod>;
  return Object.entries(grpcJs)
    .filter(([key, method]) => !method.requestStream && impl[key] !== undefined)
    .map(([key, method]) => ({
      path: method.path,
      responseStream: method.responseStream,
      decode: (bytes) => method.requestDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
      encode: (message) => method.responseSerialize(message as never),
      implementation: impl[key]!.bind(implementation),
    }));
}
