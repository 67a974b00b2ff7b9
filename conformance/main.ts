import { parseArgs } from 'node:util';
import { runConformance } from './kit.js';

/**
 * npm run conformance -- --worker "<command that starts the worker>"
 *
 * Checks a worker written in any language against docs/PROTOCOL.md: the
 * command is run with TASKWIRE_SERVER, TASKWIRE_CONCURRENCY and
 * TASKWIRE_GRACE_MS set, and must serve demo.v1.DemoService Echo and Sleep.
 */
const { values } = parseArgs({ options: { worker: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help || values.worker === undefined) {
  console.error('usage: npm run conformance -- --worker "<command that starts the worker>"');
  console.error('  e.g. --worker "node dist/src/cli/main.js worker --demo"');
  process.exit(values.help ? 0 : 2);
}
const results = await runConformance({
  worker: values.worker,
  onResult: (r) => console.log(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.name}\n      ${r.detail.replace(/\n/g, '\n      ')}`),
});
const failed = results.filter((r) => !r.ok).length;
console.log(`\n${results.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
