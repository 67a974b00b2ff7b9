import type { Any } from '../../gen/ts/google/protobuf/any.js';
import type { MessageType } from '../worker/types.js';

type PartialOf<M> = M extends { fromPartial(object: infer P): unknown } ? P : never;
type MessageOf<M> = M extends MessageType<infer T> ? T : never;

const urlOf = (type: { readonly $type?: string }) => {
  if (type.$type === undefined) throw new Error('message type has no $type: generate with outputTypeAnnotations=static-only');
  return `type.googleapis.com/${type.$type}`;
};

/** Packs a generated message into a google.protobuf.Any. */
export function pack<M extends MessageType<unknown>>(type: M, value: PartialOf<M>): Any {
  return { typeUrl: urlOf(type), value: Buffer.from(type.encode(type.fromPartial(value as never)).finish()) };
}

/** Unpacks an Any, checking that it holds the expected message type. */
export function unpack<M extends MessageType<unknown>>(type: M, any: Any | undefined): MessageOf<M> {
  const expected = urlOf(type);
  if (any === undefined) throw new Error(`expected a ${type.$type}, got nothing`);
  if (any.typeUrl !== expected) throw new Error(`expected ${expected}, got ${any.typeUrl}`);
  return type.decode(any.value) as MessageOf<M>;
}
