import type { Any } from '../../gen/ts/google/protobuf/any.js';
import { typeUrlOf, type MessageOf, type MessageType, type PartialOf } from '../contract.js';

/** Packs a generated message into a google.protobuf.Any. */
export function pack<M extends MessageType<unknown>>(type: M, value: PartialOf<M>): Any {
  return { typeUrl: typeUrlOf(type), value: Buffer.from(type.encode(type.fromPartial(value as never)).finish()) };
}

/** Unpacks an Any, checking that it holds the expected message type. */
export function unpack<M extends MessageType<unknown>>(type: M, any: Any | undefined): MessageOf<M> {
  const expected = typeUrlOf(type);
  if (any === undefined) throw new Error(`expected a ${type.$type}, got nothing`);
  if (any.typeUrl !== expected) throw new Error(`expected ${expected}, got ${any.typeUrl}`);
  return type.decode(any.value) as MessageOf<M>;
}
