import { fromBinary } from '@bufbuild/protobuf';
import { createContextKey } from '@connectrpc/connect';
import type { UniversalHandler, UniversalServerRequest } from '@connectrpc/connect/protocol';

/**
 * Why a binary request did not decode. connect-es answers a binary body that
 * does not parse with INTERNAL ("parse binary: …"), which says the server
 * broke; the contract promises INVALID_ARGUMENT, as on gRPC
 * (src/rpc/middleware/decoding.ts). So each handler checks binary requests
 * first, and hands an empty message on with the reason here; the call then
 * fails INVALID_ARGUMENT through the usual middleware (see call.ts).
 */
export const undecodableKey = createContextKey<string | undefined>(undefined, { description: 'taskwire undecodable request' });

/** Binary content types, and whether their messages come in envelopes (flags, length, data). */
function binaryKind(contentType: string | null): 'plain' | 'enveloped' | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  if (type === 'application/proto') return 'plain';
  if (type === 'application/connect+proto' || type === 'application/grpc' || type === 'application/grpc+proto') return 'enveloped';
  if (type === 'application/grpc-web' || type === 'application/grpc-web+proto') return 'enveloped';
  return undefined;
}

const compressed = (request: UniversalServerRequest) =>
  ['content-encoding', 'connect-content-encoding', 'grpc-encoding'].some((h) => {
    const value = request.header.get(h);
    return value !== null && value !== 'identity';
  });

/** The whole body, or undefined past `limit` bytes (then `rest` replays what was read and the remainder). */
async function readUpTo(body: AsyncIterable<Uint8Array>, limit: number) {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const iterator = body[Symbol.asyncIterator]();
  for (;;) {
    const next = await iterator.next();
    if (next.done) break;
    chunks.push(next.value);
    size += next.value.byteLength;
    if (size > limit) {
      async function* rest() {
        yield* chunks;
        for (let n = await iterator.next(); !n.done; n = await iterator.next()) yield n.value;
      }
      return { bytes: undefined, rest: rest() };
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return { bytes, rest: undefined };
}

async function* once(bytes: Uint8Array) {
  yield bytes;
}

/** An empty message, or an envelope holding one, in place of the bytes that did not decode. */
const EMPTY_ENVELOPE = new Uint8Array(5);

/**
 * The handler, checking that a binary request decodes as the method's input
 * before connect-es parses it. Reads the body at most once, only for binary,
 * uncompressed requests up to `maxBytes` (larger ones go on untouched, for
 * connect-es to refuse as too large).
 */
export function withCheckedDecoding(
  handler: UniversalHandler,
  maxBytes: number,
  /** Whether the caller may make the server read its body (the auth check); if not, connect-es's gate refuses it unread. */
  mayRead: (request: UniversalServerRequest) => Promise<boolean>,
): UniversalHandler {
  const input = handler.method.input;
  const checked = async (request: UniversalServerRequest) => {
    const kind = binaryKind(request.header.get('content-type'));
    const body = request.body;
    const declared = Number(request.header.get('content-length') ?? 0);
    if (kind === undefined || compressed(request) || body === null || typeof body !== 'object' || !(Symbol.asyncIterator in body)) {
      return handler(request);
    }
    if (declared > maxBytes + 5 || !(await mayRead(request))) return handler(request);
    const { bytes, rest } = await readUpTo(body as AsyncIterable<Uint8Array>, maxBytes + 5);
    if (bytes === undefined) return handler({ ...request, body: rest! });
    let problem: string | undefined;
    if (kind === 'plain') {
      problem = decodeProblem(() => fromBinary(input, bytes));
    } else {
      // Each data envelope (flag 0; 1 is compressed, 0x80 and 2 end a stream) must hold a message.
      for (let at = 0; problem === undefined && at + 5 <= bytes.length; ) {
        const flags = bytes[at]!;
        const length = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getUint32(0);
        const data = bytes.subarray(at + 5, at + 5 + length);
        if (flags === 0 && data.length === length) problem = decodeProblem(() => fromBinary(input, data));
        at += 5 + length;
      }
    }
    if (problem === undefined) return handler({ ...request, body: once(bytes) });
    request.contextValues?.set(undecodableKey, problem);
    const empty = kind === 'plain' ? new Uint8Array(0) : EMPTY_ENVELOPE;
    const header = new Headers(request.header);
    if (header.has('content-length')) header.set('content-length', String(empty.length));
    return handler({ ...request, header, body: once(empty) });
  };
  return Object.assign(checked, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

function decodeProblem(decode: () => unknown): string | undefined {
  try {
    decode();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
