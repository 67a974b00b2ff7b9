/**
 * nice-grpc serializes a ts-proto message as `encode(fromPartial(value))`,
 * and fromPartial copies the whole message first. On the hot streams, whose
 * messages are always built complete, that copy is pure cost: this returns a
 * definition whose given methods encode as they are.
 */
interface MessageFns {
  fromPartial(value: never): unknown;
}

interface Definition {
  readonly methods: Record<string, { readonly requestType: MessageFns; readonly responseType: MessageFns }>;
}

const identity = (value: never) => value;

export function withExactMessages<D extends Definition>(definition: D, methods: readonly (keyof D['methods'] & string)[]): D {
  const copy = { ...definition, methods: { ...definition.methods } };
  for (const name of methods) {
    const method = definition.methods[name]!;
    copy.methods[name] = {
      ...method,
      requestType: { ...method.requestType, fromPartial: identity },
      responseType: { ...method.responseType, fromPartial: identity },
    };
  }
  return copy as D;
}
