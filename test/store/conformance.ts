import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { Code, TaskwireError } from '../../src/errors.js';
import { firstLease, leaseOf, type Deletion, type NewTask, type Store, type TaskEvent, type TaskOptionsRecord } from '../../src/store/index.js';

const S = TaskState;
export const ECHO = '/demo.v1.DemoService/Echo';
const SLEEP = '/demo.v1.DemoService/Sleep';

export function options(overrides: Partial<TaskOptionsRecord> = {}): TaskOptionsRecord {
  return {
    queue: 'default',
    priority: 0,
    maxAttempts: 3,
    backoff: { initialMs: 1000, maxMs: 60_000, multiplier: 2, jitter: 0 },
    labels: {},
    traceContext: {},
    ...overrides,
  };
}

export function newTask(overrides: Omit<Partial<NewTask>, 'options'> & { options?: Partial<TaskOptionsRecord> } = {}): NewTask {
  return {
    id: randomUUID(),
    type: ECHO,
    input: { typeUrl: 'type.googleapis.com/demo.v1.EchoRequest', value: Buffer.from('in') },
    runAt: 0,
    ...overrides,
    options: options(overrides.options),
  };
}

const output = { typeUrl: 'type.googleapis.com/demo.v1.EchoResponse', value: Buffer.from('out') };

async function expectCode(promise: Promise<unknown>, code: Code) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskwireError);
  expect((error as TaskwireError).code).toBe(code);
  return error as TaskwireError;
}

/**
 * The behaviour every store must have: the transitions of
 * src/store/transitions.ts, fencing by attempt, and events after commit.
 */
export function describeStoreConformance(name: string, open: () => Promise<Store>) {
  describe(`${name} store conformance`, () => {
    let store: Store;
    let events: TaskEvent[];
    const claim = (limit = 10, types = [ECHO], owner = 'session-1') =>
      store.claim({ types, limit, owner, workerId: 'worker-1', leaseMs: 10_000, now: Date.now() });

    beforeEach(async () => {
      store = await open();
      events = [];
      store.subscribe((batch) => events.push(...batch));
    });
    afterEach(async () => {
      await store.close();
    });

    it('inserts queued and scheduled tasks and reads them back', async () => {
      const now = Date.now();
      const [a, b] = await store.insert([newTask(), newTask({ runAt: now + 60_000 })]);
      expect(a!.existing).toBe(false);
      expect((await store.get(a!.task.id))?.state).toBe(S.TASK_STATE_QUEUED);
      expect((await store.get(b!.task.id))?.state).toBe(S.TASK_STATE_SCHEDULED);
      expect(Buffer.from((await store.get(a!.task.id))!.input.value)).toEqual(Buffer.from('in'));
      expect(await store.get('nope')).toBeUndefined();
      expect(events.map((e) => e.state)).toEqual([S.TASK_STATE_QUEUED, S.TASK_STATE_SCHEDULED]);
    });

    it('inserts a task dispatched at once as RUNNING, attempt 1, leased to its session', async () => {
      const task = newTask({ lease: { owner: 'session-9', workerId: 'worker-9', leaseMs: 10_000 }, options: { executionTimeoutMs: 5_000 } });
      const [inserted] = await store.insert([task]);
      expect(inserted!.task).toMatchObject({ state: S.TASK_STATE_RUNNING, attempt: 1, leaseOwner: 'session-9', workerId: 'worker-9' });
      expect(inserted!.task.deadlineAt).toBeGreaterThan(Date.now());
      const stored = await store.get(task.id);
      expect(stored).toMatchObject({ state: S.TASK_STATE_RUNNING, attempt: 1, leaseOwner: 'session-9' });
      expect(await claim()).toEqual([]);
      expect(events.at(-1)).toMatchObject({ id: task.id, state: S.TASK_STATE_RUNNING, previous: S.TASK_STATE_UNSPECIFIED });
      expect(await store.complete([{ id: task.id, attempt: 1, output }], Date.now())).toEqual([{ applied: true, state: S.TASK_STATE_SUCCEEDED }]);
    });

    it('stores a task sent before its insert as it was sent: started then, its deadline from then, due by then', async () => {
      const startedAt = Date.now() - 1_000;
      // Due at the start of its attempt, though a clock that stepped back would call it future now.
      const task = newTask({ runAt: startedAt, lease: { owner: 'session-9', workerId: 'worker-9', leaseMs: 10_000, startedAt }, options: { executionTimeoutMs: 5_000 } });
      const [inserted] = await store.insert([task]);
      expect(inserted!.task).toMatchObject({ state: S.TASK_STATE_RUNNING, attempt: 1, startedAt, deadlineAt: startedAt + 5_000 });
      expect(await store.get(task.id)).toMatchObject({ state: S.TASK_STATE_RUNNING, attempt: 1, startedAt, deadlineAt: startedAt + 5_000 });
      expect(leaseOf(inserted!.task)).toEqual(firstLease(task, startedAt));
      const ahead = newTask({ runAt: Date.now() + 60_000, lease: { owner: 'session-9', workerId: 'worker-9', leaseMs: 10_000, startedAt: Date.now() + 60_000 } });
      expect((await store.insert([ahead]))[0]!.task).toMatchObject({ state: S.TASK_STATE_RUNNING, attempt: 1 });
    });

    it('returns the existing task for a used idempotency key', async () => {
      const [first] = await store.insert([newTask({ options: { idempotencyKey: 'k1' } })]);
      const [again] = await store.insert([newTask({ options: { idempotencyKey: 'k1' } })]);
      expect(again!.existing).toBe(true);
      expect(again!.task.id).toBe(first!.task.id);
      expect((await store.list({}, 10, undefined)).tasks).toHaveLength(1);
    });

    it('claims by priority, then FIFO, only the asked types, up to the limit', async () => {
      const low = newTask();
      const high = newTask({ options: { priority: 10 } });
      const low2 = newTask();
      const other = newTask({ type: SLEEP });
      await store.insert([low, high, low2, other]);
      const leases = await claim(2);
      expect(leases.map((l) => l.id).sort()).toEqual([high.id, low.id].sort());
      expect(leases.every((l) => l.attempt === 1 && l.type === ECHO)).toBe(true);
      expect((await claim(10)).map((l) => l.id)).toEqual([low2.id]);
      expect(await claim(10)).toEqual([]);
      const running = await store.get(low.id);
      expect(running?.state).toBe(S.TASK_STATE_RUNNING);
      expect(running?.leaseOwner).toBe('session-1');
      expect(running?.workerId).toBe('worker-1');
    });

    it('never gives one task to two concurrent claims', async () => {
      await store.insert(Array.from({ length: 50 }, () => newTask()));
      const batches = await Promise.all([claim(20, [ECHO], 'a'), claim(20, [ECHO], 'b'), claim(20, [ECHO], 'c')]);
      const ids = batches.flat().map((l) => l.id);
      expect(ids).toHaveLength(50);
      expect(new Set(ids).size).toBe(50);
    });

    it('applies a result once, for the current attempt only', async () => {
      const task = newTask();
      await store.insert([task]);
      const [lease] = await claim();
      expect(await store.complete([{ id: task.id, attempt: lease!.attempt + 1, output }], Date.now())).toEqual([{ applied: false }]);
      expect(await store.complete([{ id: task.id, attempt: lease!.attempt, output }], Date.now())).toEqual([
        { applied: true, state: S.TASK_STATE_SUCCEEDED },
      ]);
      expect(await store.complete([{ id: task.id, attempt: lease!.attempt, output }], Date.now())).toEqual([{ applied: false }]);
      const done = await store.get(task.id);
      expect(done?.state).toBe(S.TASK_STATE_SUCCEEDED);
      expect(Buffer.from(done!.output!.value)).toEqual(Buffer.from('out'));
      expect(events.at(-1)).toMatchObject({ id: task.id, state: S.TASK_STATE_SUCCEEDED, owner: 'session-1' });
      expect(await store.outcome(task.id)).toMatchObject({ id: task.id, state: S.TASK_STATE_SUCCEEDED, attempt: 1, output: { typeUrl: expect.any(String) } });
    });

    it('retries after the backoff, then fails with every error kept', async () => {
      // The task's own backoff decides the delay: 5 s, no jitter.
      const task = newTask({ options: { maxAttempts: 2, backoff: { initialMs: 5_000, maxMs: 60_000, multiplier: 2, jitter: 0 } } });
      await store.insert([task]);
      const fail = (attempt: number) =>
        store.fail([{ id: task.id, attempt, message: `boom ${attempt}`, code: Code.UNAVAILABLE, retryable: true }], Date.now());

      const [first] = await claim();
      const before = Date.now();
      expect(await fail(first!.attempt)).toEqual([{ applied: true, state: S.TASK_STATE_SCHEDULED }]);
      const waiting = await store.get(task.id);
      expect(waiting?.runAt).toBeGreaterThanOrEqual(before + 5_000);
      expect(waiting?.runAt).toBeLessThan(Date.now() + 5_000 + 1);
      expect(await claim()).toEqual([]);

      expect(await store.promoteDue(Date.now() + 6_000)).toBe(1);
      const [second] = await claim();
      expect(second!.attempt).toBe(2);
      expect(await fail(second!.attempt)).toEqual([{ applied: true, state: S.TASK_STATE_FAILED }]);
      const dead = await store.get(task.id);
      expect(dead?.errors.map((e) => [e.attempt, e.message])).toEqual([
        [1, 'boom 1'],
        [2, 'boom 2'],
      ]);
      expect(dead?.failures).toBe(2);
      expect(await store.outcome(task.id)).toEqual({
        id: task.id,
        state: S.TASK_STATE_FAILED,
        attempt: 2,
        error: dead!.errors[1],
      });
      expect(await fail(second!.attempt)).toEqual([{ applied: false }]);
    });

    it('fails a non-retryable error at once', async () => {
      const task = newTask({ options: { maxAttempts: 5 } });
      await store.insert([task]);
      const [lease] = await claim();
      const result = await store.fail(
        [{ id: task.id, attempt: lease!.attempt, message: 'bad input', code: Code.INVALID_ARGUMENT, retryable: false }],
        Date.now(),
      );
      expect(result).toEqual([{ applied: true, state: S.TASK_STATE_FAILED }]);
    });

    it('releases an attempt without counting a failure, and fences the old attempt', async () => {
      const task = newTask();
      await store.insert([task]);
      const [first] = await claim();
      expect(await store.outcome(task.id)).toBe('live');
      expect(await store.outcome(newTask().id)).toBeUndefined();
      expect(await store.release([{ id: task.id, attempt: first!.attempt }], Date.now())).toEqual([
        { applied: true, state: S.TASK_STATE_QUEUED },
      ]);
      expect((await store.get(task.id))?.failures).toBe(0);
      const [second] = await claim();
      expect(second!.attempt).toBe(first!.attempt + 1);
      expect(await store.complete([{ id: task.id, attempt: first!.attempt, output }], Date.now())).toEqual([{ applied: false }]);
    });

    it('cancels scheduled, queued and running tasks, and refuses terminal or unknown ones', async () => {
      const queued = newTask();
      const running = newTask();
      await store.insert([running]);
      await claim();
      await store.insert([queued]);
      expect((await store.cancel(queued.id, 'not needed', Date.now())).state).toBe(S.TASK_STATE_CANCELLED);
      const cancelled = await store.cancel(running.id, 'stop', Date.now());
      expect(cancelled.state).toBe(S.TASK_STATE_CANCELLED);
      expect(cancelled.cancelReason).toBe('stop');
      expect(events.at(-1)).toMatchObject({ id: running.id, previous: S.TASK_STATE_RUNNING, owner: 'session-1' });
      await expectCode(store.cancel(running.id, 'again', Date.now()), Code.FAILED_PRECONDITION);
      await expectCode(store.cancel('missing', 'x', Date.now()), Code.NOT_FOUND);
      expect(await store.complete([{ id: running.id, attempt: 1, output }], Date.now())).toEqual([{ applied: false }]);
    });

    it('revives failed and cancelled tasks with a fresh budget, and nothing else', async () => {
      const task = newTask({ options: { maxAttempts: 1 } });
      await store.insert([task]);
      const [lease] = await claim();
      await store.fail([{ id: task.id, attempt: lease!.attempt, message: 'x', code: 2, retryable: true }], Date.now());
      const revived = await store.revive(task.id, Date.now());
      expect(revived.state).toBe(S.TASK_STATE_QUEUED);
      expect(revived.failures).toBe(0);
      expect(revived.errors).toHaveLength(1);
      const [again] = await claim();
      expect(again!.attempt).toBe(2);
      await expectCode(store.revive(task.id, Date.now()), Code.FAILED_PRECONDITION);
      await expectCode(store.revive('missing', Date.now()), Code.NOT_FOUND);
    });

    it('expires tasks past their queue timeout, but not once started', async () => {
      const late = newTask({ options: { queueTimeoutMs: 1_000 } });
      const started = newTask({ type: SLEEP, options: { queueTimeoutMs: 1_000 } });
      await store.insert([late, started]);
      await claim(10, [SLEEP]);
      expect(await store.expireQueued(Date.now() + 2_000)).toBe(1);
      const expired = await store.get(late.id);
      expect(expired?.state).toBe(S.TASK_STATE_FAILED);
      expect(expired?.errors[0]?.message).toMatch(/queue timeout/);
      expect((await store.get(started.id))?.state).toBe(S.TASK_STATE_RUNNING);
    });

    it('finds expired leases and passed deadlines; renewal and resume move them', async () => {
      const plain = newTask();
      const timed = newTask({ options: { executionTimeoutMs: 1_000 } });
      await store.insert([plain, timed]);
      const leases = await claim();
      const timedLease = leases.find((l) => l.id === timed.id)!;
      expect(timedLease.deadlineAt).toBeGreaterThan(Date.now());

      const soon = Date.now() + 2_000;
      expect((await store.overdue(soon, 10)).map((o) => [o.id, o.reason])).toEqual([[timed.id, 'deadline']]);
      const later = Date.now() + 11_000;
      expect((await store.overdue(later, 10)).filter((o) => o.reason === 'lease')).toHaveLength(2);

      const held = leases.map((l) => ({ id: l.id, attempt: l.attempt }));
      expect(await store.renewLeases('someone-else', held, Date.now() + 60_000)).toBe(0);
      expect(await store.renewLeases('session-1', held, Date.now() + 60_000)).toBe(2);
      expect((await store.overdue(later, 10)).filter((o) => o.reason === 'lease')).toHaveLength(0);

      // Only the worker the attempt was leased to may take it over, and only its current attempt.
      const intruder = await store.resume('session-x', 'worker-2', [{ id: plain.id, attempt: 1 }], Date.now() + 10_000);
      expect(intruder).toEqual([]);
      expect((await store.get(plain.id))?.leaseOwner).toBe('session-1');
      const kept = await store.resume('session-2', 'worker-1', [
        { id: plain.id, attempt: 1 },
        { id: timed.id, attempt: 7 },
      ], Date.now() + 10_000);
      expect(kept).toEqual([{ id: plain.id, attempt: 1, type: plain.type }]);
      expect((await store.get(plain.id))?.leaseOwner).toBe('session-2');
      expect((await store.get(plain.id))?.workerId).toBe('worker-1');
    });

    it('extends, at a server start, the leases that would end too soon, and only those', async () => {
      const tasks = [newTask(), newTask()];
      await store.insert(tasks);
      const [early, late] = await claim();
      await store.renewLeases('session-1', [{ id: late!.id, attempt: late!.attempt }], Date.now() + 60_000);
      const until = Date.now() + 30_000;
      expect(await store.extendLeases(until)).toBe(1);
      expect((await store.get(early!.id))?.leaseExpiresAt).toBe(until);
      expect((await store.get(late!.id))?.leaseExpiresAt).toBeGreaterThan(until);
      expect(await store.overdue(until - 1, 10)).toEqual([]);
    });

    it('publishes events with the queue and the attempt times, and finds each queue’s oldest queued task', async () => {
      const before = Date.now();
      const [a, b] = await store.insert([newTask({ runAt: before - 5_000, options: { queue: 'q1' } }), newTask({ options: { queue: 'q2' } })]);
      const oldest = new Map((await store.oldestQueued()).map((row) => [row.queue, row.dueAt]));
      expect(oldest.get('q1')).toBe(before - 5_000);
      expect(oldest.has('q2')).toBe(true);
      const commits: number[] = [];
      store.onCommit((seconds, writes) => {
        expect(seconds).toBeGreaterThanOrEqual(0);
        commits.push(writes);
      });
      const leases = await claim();
      expect(leases).toHaveLength(2);
      const started = events.filter((e) => e.state === S.TASK_STATE_RUNNING);
      const startA = started.find((e) => e.id === a!.task.id)!;
      expect(startA).toMatchObject({ queue: 'q1', dueAt: before - 5_000 });
      expect(startA.startedAt).toBeGreaterThanOrEqual(before);
      await store.complete([{ id: a!.task.id, attempt: 1, output }], startA.startedAt! + 250);
      await store.fail([{ id: b!.task.id, attempt: 1, message: 'no', code: 2, retryable: true }], startA.startedAt! + 100);
      const ended = events.filter((e) => e.previous === S.TASK_STATE_RUNNING);
      expect(ended.find((e) => e.id === a!.task.id)).toMatchObject({ queue: 'q1', startedAt: startA.startedAt, finishedAt: startA.startedAt! + 250 });
      expect(ended.find((e) => e.id === b!.task.id)).toMatchObject({ queue: 'q2', state: S.TASK_STATE_SCHEDULED, finishedAt: startA.startedAt! + 100 });
      expect(events.every((e) => e.queue === 'q1' || e.queue === 'q2')).toBe(true);
      expect(commits.reduce((sum, n) => sum + n, 0)).toBe(3);
      expect(await store.oldestQueued()).toEqual([]);
    });

    it('finds each queue’s oldest QUEUED task by when it became due, whatever order it was stored in', async () => {
      const t0 = Date.now() - 60_000;
      const at = (queue: string, ms: number) => newTask({ runAt: t0 + ms, options: { queue } });
      // The earliest due of all, but RUNNING: it waits no more.
      await store.insert([at('a', 0)]);
      expect(await claim(1)).toHaveLength(1);
      // Stored newest due first, and a SCHEDULED task in a queue of its own.
      await store.insert([at('b', 9_000), at('a', 7_000), at('b', 3_000), at('a', 5_000), at('c', 4_000), at('a', 6_000)]);
      await store.insert([newTask({ runAt: Date.now() + 60_000, options: { queue: 'z' } })]);
      const oldest = await store.oldestQueued();
      expect(Object.fromEntries(oldest.map((row) => [row.queue, row.dueAt]))).toEqual({ a: t0 + 5_000, b: t0 + 3_000, c: t0 + 4_000 });
    });

    it('records progress of the current attempt only', async () => {
      const task = newTask();
      await store.insert([task]);
      await claim();
      await store.progress([{ id: task.id, attempt: 1, percent: 40, message: 'working' }], Date.now());
      await store.progress([{ id: task.id, attempt: 9, percent: 90, message: 'stale' }], Date.now());
      const running = await store.get(task.id);
      expect([running?.progressPercent, running?.progressMessage]).toEqual([40, 'working']);
      expect(events.filter((e) => e.progress).map((e) => e.progress)).toEqual([{ percent: 40, message: 'working' }]);
    });

    it('deletes finished tasks past their retention by end state, oldest first, and publishes the deletions', async () => {
      const deletions: Deletion[] = [];
      store.onDeleted((batch) => deletions.push(...batch));
      const keep = { succeededMs: 1_000, failedMs: 5_000, cancelledMs: 2_000 };
      const done = newTask({ options: { retention: keep, queue: 'r', idempotencyKey: 'kept-until-deleted' } });
      const dead = newTask({ options: { retention: keep, queue: 'r', maxAttempts: 1 } });
      const cancelled = newTask({ options: { retention: keep, queue: 'r' } });
      const forever = newTask({ options: { retention: { succeededMs: 0, failedMs: 0, cancelledMs: 0 }, queue: 'r' } });
      const unset = newTask({ options: { queue: 'r' } }); // stored before retention: no expiry
      const waiting = newTask({ options: { retention: keep, queue: 'r' } });
      await store.insert([done, dead, forever, unset]);
      const t0 = Date.now();
      await claim(4);
      await store.complete([done, forever, unset].map((t) => ({ id: t.id, attempt: 1, output })), t0);
      await store.fail([{ id: dead.id, attempt: 1, message: 'boom', code: 2, retryable: false }], t0);
      await store.insert([cancelled, waiting]);
      await store.cancel(cancelled.id, 'no', t0);

      expect(await store.deleteExpired(t0 + 999, 100)).toMatchObject({ deleted: 0 });
      const first = await store.deleteExpired(t0 + 2_000, 100);
      expect(first.deleted).toBe(2);
      expect(first.busyMs).toBeGreaterThanOrEqual(0);
      expect(await store.get(done.id)).toBeUndefined();
      expect(await store.get(cancelled.id)).toBeUndefined();
      expect(await store.get(dead.id)).toMatchObject({ state: S.TASK_STATE_FAILED });
      expect(deletions.sort((x, y) => x.state - y.state)).toEqual([
        { queue: 'r', state: S.TASK_STATE_SUCCEEDED, count: 1, cause: 'retention' },
        { queue: 'r', state: S.TASK_STATE_CANCELLED, count: 1, cause: 'retention' },
      ]);
      // The idempotency key went with its task: it names a new task now.
      const [reused] = await store.insert([newTask({ options: { idempotencyKey: 'kept-until-deleted' } })]);
      expect(reused!.existing).toBe(false);

      // A revived task is live again: no expiry until it ends again.
      await store.revive(dead.id, t0 + 2_000);
      expect(await store.deleteExpired(t0 + 60_000, 100)).toMatchObject({ deleted: 0 });
      expect(await store.get(dead.id)).toMatchObject({ state: S.TASK_STATE_QUEUED });
      for (const task of [forever, unset, waiting]) expect(await store.get(task.id)).toBeDefined();
      expect(await store.stats('r')).toEqual([
        { queue: 'r', counts: { [S.TASK_STATE_QUEUED]: 2, [S.TASK_STATE_SUCCEEDED]: 2 } },
      ]);
    });

    it('deletes at most the limit per call, and concurrent calls never delete a task twice', async () => {
      const tasks = Array.from({ length: 30 }, () => newTask({ options: { retention: { succeededMs: 1, failedMs: 1, cancelledMs: 1 } } }));
      await store.insert(tasks);
      const t0 = Date.now();
      for (const task of tasks) await store.cancel(task.id, 'x', t0);
      expect((await store.deleteExpired(t0 + 10, 7)).deleted).toBe(7);
      const counts: number[] = [];
      store.onDeleted((batch) => counts.push(...batch.map((d) => d.count)));
      const results = await Promise.all([1, 2, 3].map(() => store.deleteExpired(t0 + 10, 10)));
      expect(results.reduce((sum, r) => sum + r.deleted, 0)).toBe(23);
      expect(counts.reduce((sum, n) => sum + n, 0)).toBe(23);
      expect((await store.list({}, 100, undefined)).tasks).toHaveLength(0);
    });

    it('lists newest first with filters and page tokens, and counts per queue', async () => {
      const tasks = Array.from({ length: 5 }, (_, i) => newTask({ options: { queue: i < 3 ? 'a' : 'b' } }));
      for (const task of tasks) await store.insert([task]);
      const first = await store.list({}, 2, undefined);
      expect(first.tasks.map((t) => t.id)).toEqual([tasks[4]!.id, tasks[3]!.id]);
      const second = await store.list({}, 2, first.next);
      expect(second.tasks.map((t) => t.id)).toEqual([tasks[2]!.id, tasks[1]!.id]);
      const third = await store.list({}, 2, second.next);
      expect(third.tasks.map((t) => t.id)).toEqual([tasks[0]!.id]);
      expect(third.next).toBeUndefined();
      expect((await store.list({ queue: 'b' }, 10, undefined)).tasks).toHaveLength(2);
      expect((await store.list({ state: S.TASK_STATE_RUNNING }, 10, undefined)).tasks).toHaveLength(0);
      await expectCode(store.list({}, 2, 'garbage'), Code.INVALID_ARGUMENT);

      await claim(1);
      const stats = await store.stats(undefined);
      expect(stats).toEqual([
        { queue: 'a', counts: { [S.TASK_STATE_QUEUED]: 2, [S.TASK_STATE_RUNNING]: 1 } },
        { queue: 'b', counts: { [S.TASK_STATE_QUEUED]: 2 } },
      ]);
      expect(await store.stats('b')).toEqual([{ queue: 'b', counts: { [S.TASK_STATE_QUEUED]: 2 } }]);
    });
  });
}
