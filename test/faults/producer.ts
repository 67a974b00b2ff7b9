/**
 * The fault suite's client, run inside its own network namespace. Submits
 * `count` Echo tasks in batches, each with an idempotency key, retrying a
 * batch (same keys, so the same tasks) until the server acknowledges it.
 * Prints {"acked": [[key, id], …]} per batch, {"refused": "<error>"} per
 * failed try, and {"done": true} at the end. With payload-bytes, each input
 * carries that many bytes (the Echo output too).
 *
 *   node --import tsx test/faults/producer.ts <server> <count> <run-id> [payload-bytes]
 */
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { createClient } from '../../src/client/index.js';
import { pack } from '../../src/client/pack.js';
import { codeName, TaskwireError } from '../../src/errors.js';

const [server = '', countText = '1000', run = 'run', payloadText = '0'] = process.argv.slice(2);
const count = Number(countText);
const payload = Buffer.alloc(Number(payloadText), 0x2a);
const give = Date.now() + 120_000;

for (let start = 0; start < count; start += 100) {
  const keys = Array.from({ length: Math.min(100, count - start) }, (_, i) => `${run}-${start + i}`);
  for (;;) {
    const client = createClient({ server });
    try {
      const submitted = await client.submitMany(
        keys.map((key) => ({ type: '/demo.v1.DemoService/Echo', input: pack(EchoRequest, { text: key, payload }), options: { idempotencyKey: key, maxAttempts: 20, backoff: { initialMs: 100, maxMs: 1_000 } } })),
      );
      process.stdout.write(`${JSON.stringify({ acked: submitted.map((s, i) => [keys[i], s.id]) })}\n`);
      break;
    } catch (error) {
      process.stdout.write(`${JSON.stringify({ refused: refusal(error) })}\n`);
      if (Date.now() > give) throw error;
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      client.close();
    }
  }
}
process.stdout.write(`${JSON.stringify({ done: true })}\n`);
process.exit(0);

/** "CODE: message" for the client's TaskwireError, so the test reads the status as well as the reason. */
function refusal(error: unknown): string {
  if (error instanceof TaskwireError) return `${codeName(error.code)}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
