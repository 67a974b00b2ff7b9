/**
 * The fault suite's long tasks: `count` Sleep tasks of `duration-ms` each,
 * submitted once with idempotency keys (sleep-<run>-<i>) and at most 2
 * attempts, as in the report that a server restart failed them. Retries the
 * submit until acknowledged. Prints {"acked": [[key, id], …]}, then {"done": true}.
 *
 *   node --import tsx test/faults/sleeper.ts <server> <count> <run-id> <duration-ms>
 */
import { SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { createClient } from '../../src/client/index.js';
import { pack } from '../../src/client/pack.js';

const [server = '', countText = '8', run = 'run', durationText = '20000'] = process.argv.slice(2);
const keys = Array.from({ length: Number(countText) }, (_, i) => `sleep-${run}-${i}`);
const give = Date.now() + 60_000;

for (;;) {
  const client = createClient({ server });
  try {
    const submitted = await client.submitMany(
      keys.map((key) => ({
        type: '/demo.v1.DemoService/Sleep',
        input: pack(SleepRequest, { durationMs: Number(durationText) }),
        options: { idempotencyKey: key, maxAttempts: 2 },
      })),
    );
    process.stdout.write(`${JSON.stringify({ acked: submitted.map((s, i) => [keys[i], s.id]) })}\n`);
    break;
  } catch (error) {
    if (Date.now() > give) throw error;
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    client.close();
  }
}
process.stdout.write(`${JSON.stringify({ done: true })}\n`);
process.exit(0);
