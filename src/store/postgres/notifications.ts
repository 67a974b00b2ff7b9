import pg from 'pg';
import type { Deletion, Payload, TaskEvent } from '../types.js';
import { pgTypes } from './statements.js';

const CHANNEL = 'taskwire_events';
/** Schedules created, changed or deleted: wakes every replica's scheduler. */
const SCHEDULES_CHANNEL = 'taskwire_schedules';
/** NOTIFY payloads must stay under 8,000 bytes; outputs larger than this are read back by the listener. */
const MAX_INLINE_OUTPUT = 2_000;
/** Events per NOTIFY are added until the payload reaches this many characters. */
const MAX_PAYLOAD = 7_000;

/** An event as it travels in a NOTIFY payload. */
interface WireEvent extends Omit<TaskEvent, 'output'> {
  readonly output?: { readonly typeUrl: string; readonly value: string };
  /** The output was too large to inline: read it back. */
  readonly outputElided?: true;
}

export interface NotificationOptions {
  readonly connectionString: string;
  readonly schema: string;
  /** This replica: its own notifications are not delivered back to it. */
  readonly replica: string;
  /** Reads back an output too large to travel inline. */
  readonly readOutput: (id: string) => Promise<Payload | undefined>;
  /** Receives other replicas' committed events (a batch may be empty). */
  readonly deliver: (events: readonly TaskEvent[]) => void;
  /** Receives other replicas' committed deletions. */
  readonly deliverDeletions: (deletions: readonly Deletion[]) => void;
  /** Receives other replicas' committed pauses and resumes. */
  readonly deliverPause: (queue: string, paused: boolean) => void;
}

export interface Notifications {
  /** NOTIFYs a commit's events from inside its transaction, so they go out only if it commits. */
  send(client: pg.PoolClient, events: readonly TaskEvent[]): Promise<void>;
  /** NOTIFYs a commit's deletions from inside its transaction (one per queue and state: always small). */
  sendDeletions(client: pg.PoolClient, deletions: readonly Deletion[]): Promise<void>;
  /** NOTIFYs that schedules changed, from inside the transaction that changed them. */
  schedulesChanged(client: pg.PoolClient): Promise<void>;
  /** Calls `listener` when another replica changed schedules. */
  onSchedulesChanged(listener: () => void): void;
  /** NOTIFYs a queue paused or resumed, from inside the transaction that stores it. */
  sendPause(client: pg.PoolClient, queue: string, paused: boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * Every replica's committed events, over LISTEN/NOTIFY on a channel per
 * schema: a task queued on one replica wakes workers connected to another,
 * and a result reaches watchers anywhere.
 */
export async function listenForEvents(options: NotificationOptions): Promise<Notifications> {
  const channel = `${CHANNEL}_${options.schema}`;
  const listener = new pg.Client({ connectionString: options.connectionString, types: pgTypes });
  await listener.connect();
  const scheduleChannel = `${SCHEDULES_CHANNEL}_${options.schema}`;
  await listener.query(`LISTEN ${channel}`);
  await listener.query(`LISTEN ${scheduleChannel}`);
  const scheduleListeners: Array<() => void> = [];
  listener.on('notification', (message) => {
    if (message.payload === undefined) return;
    if (message.channel === scheduleChannel) {
      if (message.payload !== options.replica) for (const l of scheduleListeners) l();
      return;
    }
    const { r, e, d, q } = JSON.parse(message.payload) as { r: string; e?: WireEvent[]; d?: Deletion[]; q?: [string, boolean] };
    if (r === options.replica) return;
    if (q !== undefined) options.deliverPause(q[0], q[1]);
    if (d !== undefined) options.deliverDeletions(d.map((deletion) => ({ ...deletion, remote: true })));
    if (e !== undefined) void fromWire(e).then(options.deliver);
  });

  function fromWire(events: readonly WireEvent[]): Promise<TaskEvent[]> {
    return Promise.all(
      events.map(async ({ output, outputElided, ...rest }) => {
        const event: TaskEvent = { ...rest, remote: true };
        if (output !== undefined) return { ...event, output: { typeUrl: output.typeUrl, value: Buffer.from(output.value, 'base64') } };
        if (outputElided) {
          const read = await options.readOutput(event.id);
          return read === undefined ? event : { ...event, output: read };
        }
        return event;
      }),
    );
  }

  return {
    async send(client, events) {
      let chunk: WireEvent[] = [];
      let size = 0;
      const flush = async () => {
        if (chunk.length === 0) return;
        await client.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ r: options.replica, e: chunk })]);
        chunk = [];
        size = 0;
      };
      for (const event of events) {
        const wire = toWire(event);
        const length = JSON.stringify(wire).length;
        if (size + length > MAX_PAYLOAD) await flush();
        chunk.push(wire);
        size += length;
      }
      await flush();
    },
    async sendDeletions(client, deletions) {
      for (let i = 0; i < deletions.length; i += 50) {
        await client.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ r: options.replica, d: deletions.slice(i, i + 50) })]);
      }
    },
    async schedulesChanged(client) {
      await client.query('SELECT pg_notify($1, $2)', [scheduleChannel, options.replica]);
    },
    onSchedulesChanged(l) {
      scheduleListeners.push(l);
    },
    async sendPause(client, queue, paused) {
      await client.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ r: options.replica, q: [queue, paused] })]);
    },
    async close() {
      await listener.end();
    },
  };
}

function toWire(event: TaskEvent): WireEvent {
  const { output, ...rest } = event;
  if (output === undefined) return rest;
  if (output.value.byteLength > MAX_INLINE_OUTPUT) return { ...rest, outputElided: true };
  return { ...rest, output: { typeUrl: output.typeUrl, value: Buffer.from(output.value).toString('base64') } };
}
