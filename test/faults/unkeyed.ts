/**
 * The fault suite's client for tasks without an idempotency key, which the
 * server may send to a worker before their insert commits: `count` Echo tasks
 * (text <run-id>-<i>) in submits of `batch`, each input carrying
 * `payload-bytes`. A batch refused is submitted again as new tasks when
 * `retry` is "retry" (no key: those of the refused try may exist too,
 * unacknowledged), or ends the script when "once". Prints {"acked": [[text, id], …]}
 * per batch, {"refused": "<error>"} per failed try, and {"done": true} at the end.
 *
 *   node --import tsx test/faults/unkeyed.ts <server> <count> <run-id> <batch> <payload-bytes> <retry|once>
 */
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { createClient } from '../../src/client/index.js';
import { pack } from '../../src/client/pack.js';
import { codeName, TaskwireError } from '../../src/errors.js';

const [server = '', countText = '1000', run = 'run', batchText = '100', payloadText = '0', retry = 'retry'] = process.argv.slice(2);
const count = Number(countText);
const batch = Number(batchText);
const payload = Buffer.alloc(Number(payloadText), 0x2a);
const give = Date.now() + 120_000;

const print = (line: object) => new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(line)}\n`, () => resolve()));

for (let start = 0; start < count; start += batch) {
  const texts = Array.from({ length: Math.min(batch, count - start) }, (_, i) => `${run}-${start + i}`);
  for (;;) {
    const client = createClient({ server });
    try {
      const submitted = await client.submitMany(texts.map((text) => ({ type: '/demo.v1.DemoService/Echo', input: pack(EchoRequest, { text, payload }) })));
      await print({ acked: submitted.map((s, i) => [texts[i], s.id]) });
      break;
    } catch (error) {
      await print({ refused: error instanceof TaskwireError ? `${codeName(error.code)}: ${error.message}` : String(error) });
      if (retry !== 'retry' || Date.now() > give) process.exit(1);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      client.close();
    }
  }
}
await print({ done: true });
process.exit(0);
