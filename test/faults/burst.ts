/**
 * The fault suite's oversized turns: three `submitMany` calls, each made in
 * one turn of the event loop — 1,100 × 16 KB inputs, 3,000 × 6 KB and
 * 200,000 small ones — far past one 16 MiB message. Each must be
 * acknowledged whole, at the first try. Prints {"acked": [[key, id], …]} in
 * chunks, {"group": name, "ms": …} per call, then {"done": true}; exits 1 on
 * any refusal.
 *
 *   node --import tsx test/faults/burst.ts <server> <run-id>
 */
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { createClient } from '../../src/client/index.js';
import { pack } from '../../src/client/pack.js';

const [server = '', run = 'burst'] = process.argv.slice(2);
const client = createClient({ server });
const groups: Array<[string, number, number]> = [
  ['16k', 1_100, 16 * 1024],
  ['6k', 3_000, 6 * 1024],
  ['small', 200_000, 0],
];
let ending: { done: true } | { refused: string };
try {
  for (const [name, count, bytes] of groups) {
    const payload = Buffer.alloc(bytes, 0x2a);
    const keys = Array.from({ length: count }, (_, i) => `${run}-${name}-${i}`);
    const started = Date.now();
    const submitted = await client.submitMany(keys.map((key) => ({ type: '/demo.v1.DemoService/Echo', input: pack(EchoRequest, { text: key, payload }) })));
    process.stdout.write(`${JSON.stringify({ group: name, count, ms: Date.now() - started })}\n`);
    for (let i = 0; i < submitted.length; i += 10_000) {
      process.stdout.write(`${JSON.stringify({ acked: submitted.slice(i, i + 10_000).map((s, j) => [keys[i + j], s.id]) })}\n`);
    }
  }
  ending = { done: true };
} catch (error) {
  ending = { refused: error instanceof Error ? error.message : String(error) };
}
// Exit once stdout has taken everything: a pipe is written asynchronously.
process.stdout.write(`${JSON.stringify(ending)}\n`, () => process.exit('done' in ending ? 0 : 1));
