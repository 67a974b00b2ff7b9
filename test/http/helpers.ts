import { startStack } from '../helpers/inprocess.js';

/** A stack whose server also listens for HTTP on 127.0.0.1, port 0. */
export async function startHttpStack(options: Parameters<typeof startStack>[0] = {}) {
  const stack = await startStack({ httpListen: '127.0.0.1:0', ...options });
  const port = stack.server.httpPort;
  if (port === undefined) throw new Error('the HTTP listener did not start');
  return { ...stack, httpPort: port, baseUrl: `http://127.0.0.1:${port}` };
}

/** POSTs a Connect unary call with a JSON body; returns the status, headers and parsed JSON. */
export async function postJson(baseUrl: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}

/** The envelopes of a Connect stream or gRPC-Web body: a flags byte, a 4-byte length, the data. */
export function envelopes(body: Uint8Array): Array<{ flags: number; data: Uint8Array }> {
  const out: Array<{ flags: number; data: Uint8Array }> = [];
  let at = 0;
  while (at + 5 <= body.length) {
    const flags = body[at]!;
    const length = new DataView(body.buffer, body.byteOffset + at + 1, 4).getUint32(0);
    out.push({ flags, data: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}

/** One envelope around `data`. */
export function envelope(data: Uint8Array, flags = 0): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}
