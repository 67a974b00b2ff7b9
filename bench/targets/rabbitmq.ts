import amqp from 'amqplib';
import { cpuMs, findPids, startScript, type BenchParams, type Producer, type Setup, type Target } from '../lib.js';

const URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

type QueueType = 'classic' | 'quorum';

/**
 * RabbitMQ as most would use it for durable tasks: a durable queue (classic,
 * or quorum: a replicated Raft log, one node here; both confirm a persistent
 * message once it is on disk),
 * persistent messages, publisher confirms, manual acks with prefetch = slots,
 * results over a reply queue. Nagle off (amqplib leaves it on).
 */
function rabbitTarget(type: QueueType): Target {
  return {
    async setup(params: BenchParams): Promise<Setup> {
      const connection = await amqp.connect(URL, { noDelay: true }).catch((error: unknown) => {
        throw new Error(`RabbitMQ is not reachable at ${URL} (${String(error)}); start it with: rabbitmq-server -detached`);
      });
      const queue = `bench-${process.pid}-${Date.now()}`;
      const channel = await connection.createChannel();
      await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': type } });
      const workers = Array.from({ length: params.workers }, (_, i) => startScript(`rabbit-worker-${i}`, 'targets/rabbitmq-worker.ts', [URL, queue, String(params.slots)]));
      await Promise.all(workers.map((w) => w.waitFor((l) => l.ready === true)));
      // The broker's VM: of the processes that match, the one that has used the most CPU (a short-lived
      // beam.smp, rabbitmqctl's, can match too).
      const broker = findPids(/beam\.smp.*rabbit/).sort((a, b) => cpuMs(b) - cpuMs(a))[0];
      return {
        children: workers,
        external: () => (broker === undefined ? [] : [{ name: 'rabbitmq-broker', pid: broker }]),
        info: { queue },
        async teardown() {
          await Promise.all(workers.map((w) => w.stop()));
          await channel.deleteQueue(queue);
          await connection.close();
        },
      };
    },

    async producer(_params, info): Promise<Producer> {
      const queue = String(info.queue);
      const connection = await amqp.connect(URL, { noDelay: true });
      const channel = await connection.createConfirmChannel();
      const { queue: replyTo } = await channel.assertQueue('', { exclusive: true });
      const waiting = new Map<string, () => void>();
      await channel.consume(
        replyTo,
        (message) => {
          if (message === null) return;
          const id = message.properties.correlationId as string;
          waiting.get(id)?.();
          waiting.delete(id);
        },
        { noAck: true },
      );
      let next = 0;
      return {
        run(payload) {
          const id = String(next++);
          const confirmed = new Promise<void>((resolve, reject) =>
            channel.sendToQueue(queue, payload, { persistent: true, replyTo, correlationId: id }, (error) => (error ? reject(error) : resolve())),
          );
          const replied = new Promise<void>((resolve) => waiting.set(id, resolve));
          return Promise.all([confirmed, replied]).then(() => undefined);
        },
        async close() {
          await connection.close();
        },
      };
    },
  };
}

export const rabbitmq = rabbitTarget('classic');
export const rabbitmqQuorum = rabbitTarget('quorum');
