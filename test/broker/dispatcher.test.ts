import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/broker/dispatcher.js';
import { WorkerSession } from '../../src/broker/session.js';
import type { CancelRef, WorkerSink } from '../../src/broker/types.js';
import { createSqliteStore, type Lease, type NewTask, type Store } from '../../src/store/index.js';
import { deferred, waitFor } from '../helpers/wait.js';
import { ECHO, newTask } from '../store/conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'taskwire-dispatcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A session whose sink resolves `assigned` with the first assignments it is sent, and keeps every one in `all`, every cancel in `cancels`. */
function session(slots: number) {
  const assigned = deferred<readonly Lease[]>();
  const all: Lease[] = [];
  const cancels: CancelRef[] = [];
  const sink: WorkerSink = {
    acknowledge() {},
    send(message) {
      if (message.assignments !== undefined && message.assignments.length > 0) {
        all.push(...message.assignments);
        assigned.resolve(message.assignments);
      }
      cancels.push(...(message.cancels ?? []));
    },
    close() {},
  };
  const hello = { workerId: 'w', taskTypes: [ECHO], slots, labels: {}, version: '', peer: '', resume: [] };
  return { session: new WorkerSession('s1', hello, sink, []), assigned: assigned.promise, all, cancels };
}

/**
 * A dispatcher on a real SQLite file, fed by the store's QUEUED events, and one
 * session of 4 slots; `claims` counts the claims that came back empty.
 */
function started(name: string, wrap: (store: Store) => Store = (store) => store) {
  const store = createSqliteStore({ path: join(dir, `${name}.db`) });
  const counted = { empty: 0 };
  const watched: Store = {
    ...store,
    claim: async (request) => {
      const leases = await store.claim(request);
      if (leases.length === 0) counted.empty++;
      return leases;
    },
  };
  const dispatcher = new Dispatcher({ store: wrap(watched), logger: pino({ level: 'silent' }), leaseMs: 30_000, maxBatch: 256 });
  const unsubscribe = store.subscribe((events) => {
    for (const event of events) if (event.state === 2) dispatcher.markReady(event.type);
  });
  const worker = session(4);
  dispatcher.add(worker.session);
  const stop = async () => {
    dispatcher.pause();
    unsubscribe();
    await store.close();
  };
  return { store, dispatcher, claims: counted, ...worker, stop };
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

  /**
   * One task through a claim, then a claim that finds nothing (the first may
   * have counted the task it took as still waiting): afterwards the
   * dispatcher knows that nothing of the type waits.
   */
  async function primed(name: string, wrap?: (store: Store) => Store) {
    const world = started(name, wrap);
    await world.store.insert([newTask()]);
    await world.assigned;
    const empty = world.claims.empty;
    world.dispatcher.recheck();
    await waitFor(() => world.claims.empty > empty && world.session.credit === 3, { what: 'an empty claim to settle' });
    return world;
  }

  it('leases a task due now to a free worker in its insert, and sends it', async () => {
    const { store, dispatcher, session: worker, all, stop } = await primed('direct');
    const task = newTask();
    const [result] = await dispatcher.insert([task], (tasks) => store.insert(tasks));
    expect(result!.task.leaseOwner).toBe(worker.id);
    expect(all.map((lease) => lease.id)).toContain(task.id);
    expect(worker.credit).toBe(2);
    expect(worker.running).toBe(2);
    await stop();
  });

  it('gives the slot back when the insert of a task it sends after the commit fails', async () => {
    const { dispatcher, session: worker, all, stop } = await primed('insert-fails');
    let during = -1;
    const insert = dispatcher.insert([newTask({ options: { idempotencyKey: 'fails' } })], async () => {
      during = worker.credit;
      throw new Error('the disk is full');
    });
    await expect(insert).rejects.toThrow('the disk is full');
    expect(during).toBe(2);
    expect(worker.credit).toBe(3);
    expect(all).toHaveLength(1);
    await stop();
  });

  it('sends a task to its worker before its insert commits, as the insert then stores it', async () => {
    const { store, dispatcher, session: worker, all, stop } = await primed('early');
    const commit = deferred();
    const task = newTask({ options: { executionTimeoutMs: 60_000, labels: { team: 'a' } } });
    const inserting = dispatcher.insert([task], async (tasks) => {
      await commit.promise;
      return store.insert(tasks);
    });
    // Sent, and held by the session, while the insert has not even begun.
    const sent = all.find((lease) => lease.id === task.id);
    expect(sent).toMatchObject({ id: task.id, attempt: 1, type: ECHO, queue: 'default', metadata: { team: 'a' } });
    expect(worker.holds(task.id, 1)).toBe(true);
    const stored = worker.held().find((lease) => lease.id === task.id)!.early?.stored;
    expect(stored).toBeDefined();
    expect(await store.get(task.id)).toBeUndefined();
    expect(worker.credit).toBe(2);

    commit.resolve();
    const [result] = await inserting;
    expect(await stored).toBe(true);
    // Stored as sent: attempt 1, this session's lease, the deadline the worker was given.
    expect(result!.task).toMatchObject({ state: 3, attempt: 1, leaseOwner: worker.id, deadlineAt: sent!.deadlineAt });
    expect(result!.task.startedAt! + 60_000).toBe(sent!.deadlineAt);
    expect(all.filter((lease) => lease.id === task.id)).toHaveLength(1);
    await stop();
  });

  it('tells the worker to stop a task sent before an insert that failed, and says it was never stored', async () => {
    const { dispatcher, session: worker, all, cancels, stop } = await primed('early-fails');
    const task = newTask();
    let stored: Promise<boolean> | undefined;
    const insert = dispatcher.insert([task], async () => {
      stored = worker.held().find((lease) => lease.id === task.id)?.early?.stored;
      throw new Error('the disk is full');
    });
    await expect(insert).rejects.toThrow('the disk is full');
    expect(all.map((lease) => lease.id)).toContain(task.id);
    expect(await stored).toBe(false);
    expect(worker.holds(task.id, 1)).toBe(false);
    expect(cancels).toEqual([{ id: task.id, attempt: 1, reason: expect.stringContaining('the disk is full') }]);
    // The slot was the worker's from the moment it got the task: it comes back when the worker says so.
    expect(worker.credit).toBe(2);
    worker.grant(1);
    expect(worker.credit).toBe(3);
    await stop();
  });

  it('sends a task with an idempotency key only once its insert committed', async () => {
    const { store, dispatcher, all, stop } = await primed('keyed-late');
    const commit = deferred();
    const task = newTask({ options: { idempotencyKey: 'late' } });
    const inserting = dispatcher.insert([task], async (tasks) => {
      await commit.promise;
      return store.insert(tasks);
    });
    expect(all.map((lease) => lease.id)).not.toContain(task.id);
    commit.resolve();
    await inserting;
    expect(all.map((lease) => lease.id)).toContain(task.id);
    await stop();
  });

  it('gives the slot back when the insert finds the task already there (an idempotent resubmit)', async () => {
    const { store, dispatcher, session: worker, stop } = await primed('idempotent');
    const insert = (tasks: NewTask[]) => store.insert(tasks);
    const [first] = await dispatcher.insert([newTask({ options: { idempotencyKey: 'once' } })], insert);
    expect(first!.task.leaseOwner).toBe(worker.id);
    const [again] = await dispatcher.insert([newTask({ options: { idempotencyKey: 'once' } })], insert);
    expect(again!.existing).toBe(true);
    expect(worker.credit).toBe(2);
    expect(worker.running).toBe(2);
    await stop();
  });

  it('hands a claim back to the queue when its worker left while the claim ran', async () => {
    let closeDuringClaim = false;
    const world = await primed('left', (store) => ({
      ...store,
      claim: async (request) => {
        const leases = await store.claim(request);
        if (closeDuringClaim) world.session.close();
        return leases;
      },
    }) as Store);
    const { store, session: worker, all, stop } = world;
    closeDuringClaim = true;
    const task = newTask();
    await store.insert([task]);
    await waitFor(async () => (await store.get(task.id))?.attempt === 1 && (await store.get(task.id))?.state === 2, { what: 'the task handed back' });
    expect(all.map((lease) => lease.id)).not.toContain(task.id);
    expect(worker.running).toBe(1);
    await stop();
  });
});
