import { Queue, QueueEvents } from 'bullmq';
import { findPid, startScript, waitForPort, type BenchParams, type Producer, type Setup, type Target } from '../lib.js';

const HOST = process.env.REDIS_HOST ?? '127.0.0.1';
const PORT = Number(process.env.REDIS_PORT ?? 6379);
const connection = { host: HOST, port: PORT };

/** BullMQ on Redis: Queue.add per task, results seen through QueueEvents (read from the start of the stream). */
export const bullmq: Target = {
  async setup(params: BenchParams): Promise<Setup> {
    await waitForPort(PORT, 2_000).catch(() => {
      throw new Error(
        `Redis is not reachable at ${HOST}:${PORT}; start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`,
      );
    });
    const name = `bench-${process.pid}-${Date.now()}`;
    const workers = Array.from({ length: params.workers }, (_, i) => startScript(`bull-worker-${i}`, 'targets/bullmq-worker.ts', [HOST, String(PORT), name, String(params.slots)]));
    await Promise.all(workers.map((w) => w.waitFor((l) => l.ready === true)));
    const redis = findPid(/^redis-server/);
    return {
      children: workers,
      external: () => (redis === undefined ? [] : [{ name: 'redis', pid: redis }]),
      info: { name },
      async teardown() {
        await Promise.all(workers.map((w) => w.stop()));
        const queue = new Queue(name, { connection });
        await queue.obliterate({ force: true });
        await queue.close();
      },
    };
  },

  async producer(_params, info): Promise<Producer> {
    const name = String(info.name);
    const queue = new Queue(name, { connection });
    const events = new QueueEvents(name, { connection, lastEventId: '0-0' });
    await events.waitUntilReady();
    const waiting = new Map<string, () => void>();
    const early = new Set<string>();
    events.on('completed', ({ jobId }) => {
      const done = waiting.get(jobId);
      if (done === undefined) early.add(jobId);
      else {
        waiting.delete(jobId);
        done();
      }
    });
    return {
      async run(payload) {
        const job = await queue.add('echo', { p: payload.toString('base64') }, { removeOnComplete: true });
        const id = job.id!;
        if (early.delete(id)) return;
        await new Promise<void>((resolve) => waiting.set(id, resolve));
      },
      async close() {
        await events.close();
        await queue.close();
      },
    };
  },
};
