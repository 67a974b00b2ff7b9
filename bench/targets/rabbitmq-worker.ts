/** A RabbitMQ worker: manual ack, prefetch = slots, the echo sent to the message's reply queue. */
import amqp from 'amqplib';

const [url = 'amqp://guest:guest@127.0.0.1:5672', queue = 'bench', slots = '16'] = process.argv.slice(2);
const connection = await amqp.connect(url, { noDelay: true });
const channel = await connection.createChannel();
// The queue is declared by the bench (classic or quorum); the worker only checks it is there.
await channel.checkQueue(queue);
await channel.prefetch(Number(slots));
await channel.consume(queue, (message) => {
  if (message === null) return;
  channel.sendToQueue(message.properties.replyTo as string, message.content, { correlationId: message.properties.correlationId as string });
  channel.ack(message);
});
console.log(JSON.stringify({ ready: true }));
process.on('SIGTERM', () => void connection.close().finally(() => process.exit(0)));
