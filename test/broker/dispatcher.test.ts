import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/broker/dispatcher.js';
import { WorkerSession } from '../../src/broker/session.js';
import type { WorkerSink } from '../../src/broker/types.js';
import { createSqliteStore, type Lease } from '../../src/store/index.js';
import { deferred } from '../helpers/wait.js';
import { ECHO, newTask } from '../store/conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'taskwire-dispatcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A session whose sink resolves `assigned` with the first assignments it is sent. */
function session(slots: number) {
  const assigned = deferred<readonly Lease[]>();
  const sink: WorkerSink = {
    acknowledge() {},
    send(message) {
      if (message.assignments !== undefined && message.assignments.length > 0) assigned.resolve(message.assignments);
    },
    close() {},
  };
  const hello = { workerId: 'w', taskTypes: [ECHO], slots, labels: {}, version: '', peer: '', resume: [] };
  return { session: new WorkerSession('s1', hello, sink, []), assigned: assigned.promise };
}

describe('Dispatcher', () => {
  it('dispatches a task queued in the same commit as a claim that came back empty before it', async () => {
    const store = createSqliteStore({ path: join(dir, 'same-commit.db') });
    const dispatcher = new Dispatcher({ store, logger: pino({ level: 'silent' }), leaseMs: 30_000, maxBatch: 256 });
    const unsubscribe = store.subscribe((events) => {
      for (const event of events) if (event.state === 2) dispatcher.markReady(event.type);
    });
    const { session: worker, assigned } = session(4);
    const task = newTask();
    // The dispatch pass (on the next turn) issues a claim; the insert is issued in the same turn
    // after it, so both share one commit, the claim first: it finds nothing, the insert queues a task.
    dispatcher.add(worker);
    setImmediate(() => void store.insert([task]));

    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the queued task was never dispatched')), 5_000));
    const leases = await Promise.race([assigned, timeout]);
    expect(leases.map((lease) => lease.id)).toEqual([task.id]);
    dispatcher.pause();
    unsubscribe();
    await store.close();
  });
});
