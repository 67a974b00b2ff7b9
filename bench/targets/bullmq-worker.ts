/** A BullMQ worker echoing its job's payload. */
import { Worker } from 'bullmq';

const [host = '127.0.0.1', port = '6379', queue = 'bench', slots = '16'] = process.argv.slice(2);
const worker = new Worker(queue, async (job) => job.data as unknown, { connection: { host, port: Number(port) }, concurrency: Number(slots) });
await worker.waitUntilReady();
console.log(JSON.stringify({ ready: true }));
process.on('SIGTERM', () => void worker.close().finally(() => process.exit(0)));
