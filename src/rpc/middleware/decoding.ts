import { ServerError, Status, type CompatServiceDefinition, type ServerMiddleware } from 'nice-grpc';

/**
 * A request whose bytes did not decode. grpc-js answers a throwing
 * deserializer with INTERNAL ("Error deserializing request"), which says the
 * server broke; the contract promises INVALID_ARGUMENT. So every method's
 * deserializer hands this marker on instead of throwing, and
 * `decodingMiddleware` turns it into that status.
 */
class Undecodable {
  constructor(readonly reason: string) {}
}

const invalid = (method: string, marker: Undecodable) =>
  new ServerError(Status.INVALID_ARGUMENT, `the request is not a valid message for ${method}: ${marker.reason}`);

function guard<T>(decode: (bytes: Uint8Array) => T): (bytes: Uint8Array) => T | Undecodable {
  return (bytes) => {
    try {
      return decode(bytes);
    } catch (error) {
      return new Undecodable(error instanceof Error ? error.message : String(error));
    }
  };
}

type TsProtoDefinition = { methods: Record<string, { requestType: { decode(bytes: Uint8Array): unknown } }> };
type GrpcJsDefinition = Record<string, { requestDeserialize(bytes: Buffer): unknown }>;

/** The definition with each method's request decoding guarded (ts-proto and grpc-js shapes). */
export function withGuardedDecoding<D extends CompatServiceDefinition>(definition: D): D {
  if ('methods' in definition && typeof definition.methods === 'object') {
    const tsProto = definition as unknown as TsProtoDefinition;
    const methods = Object.fromEntries(
      Object.entries(tsProto.methods).map(([name, method]) => [
        name,
        { ...method, requestType: { ...method.requestType, decode: guard((b) => method.requestType.decode(b)) } },
      ]),
    );
    return { ...definition, methods } as D;
  }
  const grpcJs = definition as unknown as GrpcJsDefinition;
  return Object.fromEntries(
    Object.entries(grpcJs).map(([name, method]) => [name, { ...method, requestDeserialize: guard((b) => method.requestDeserialize(b as Buffer)) }]),
  ) as unknown as D;
}

async function* checked(requests: AsyncIterable<unknown>, method: string): AsyncIterable<unknown> {
  for await (const request of requests) {
    if (request instanceof Undecodable) throw invalid(method, request);
    yield request;
  }
}

/** The request of a unary call, or INVALID_ARGUMENT if it did not decode (see `withGuardedDecoding`). */
export function decoded(method: string, request: unknown): unknown {
  if (request instanceof Undecodable) throw invalid(method, request);
  return request;
}

/** Answers a request that did not decode with INVALID_ARGUMENT (see `withGuardedDecoding`). */
export const decodingMiddleware: ServerMiddleware = async function* decoding(call, context) {
  const method = call.method.path;
  if (call.method.requestStream) {
    return yield* call.next(checked(call.request as AsyncIterable<unknown>, method) as never, context);
  }
  return yield* call.next(decoded(method, call.request) as never, context);
};
