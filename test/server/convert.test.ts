import { describe, expect, it } from 'vitest';
import { TaskState as S } from '../../gen/ts/taskwire/v1/task.js';
import type { QueueStatsRecord, WorkerSnapshot } from '../../src/broker/index.js';
import { Code, invalidArgument, notFound } from '../../src/errors.js';
import { notFoundOutcome, toQueueStats, toSubmitAck, toWorkerInfo } from '../../src/server/convert.js';
import type { InsertResult, KeyCounts } from '../../src/store/index.js';

describe('convert: task-service answers', () => {
  it('answers a follow of an unknown id with its lookup error and state UNSPECIFIED', () => {
    const outcome = notFoundOutcome('nope', notFound('no task with id "nope"'));
    expect(outcome).toMatchObject({ taskId: 'nope', state: S.TASK_STATE_UNSPECIFIED, attempt: 0, output: undefined });
    expect(outcome.error).toMatchObject({ code: Code.NOT_FOUND, message: 'no task with id "nope"', retryable: false, attempt: 0 });
    // Anything that is not a TaskwireError is INTERNAL.
    expect(notFoundOutcome('x', new Error('disk on fire')).error).toMatchObject({ code: Code.INTERNAL, message: 'disk on fire' });
  });

  it('acks a submit with its task, or with the error that refused it', () => {
    const accepted = { existing: true, task: { id: 't1' } } as unknown as InsertResult;
    expect(toSubmitAck(7, accepted)).toEqual({ ref: 7, taskId: 't1', existing: true });
    expect(toSubmitAck(8, invalidArgument('type is empty'))).toEqual({
      ref: 8,
      taskId: '',
      error: { code: Code.INVALID_ARGUMENT, message: 'type is empty' },
      existing: false,
    });
  });

  it('copies a worker, its times as dates', () => {
    const worker: WorkerSnapshot = {
      workerId: 'w',
      sessionId: 's',
      taskTypes: ['a'],
      slots: 4,
      running: 1,
      labels: { zone: 'x' },
      version: '1.0.0',
      peer: '127.0.0.1:1',
      connectedAt: 1_000,
      lastSeenAt: 2_000,
      replica: 'r',
    };
    const info = toWorkerInfo(worker);
    expect(info).toMatchObject({ workerId: 'w', sessionId: 's', taskTypes: ['a'], slots: 4, running: 1, replica: 'r' });
    expect(info.connectTime).toEqual(new Date(1_000));
    expect(info.lastSeenTime).toEqual(new Date(2_000));
    expect(info.labels).not.toBe(worker.labels);
  });

  it('gives each queue its counts (0 when absent) and its 20 busiest waiting keys', () => {
    const stats: QueueStatsRecord[] = [
      {
        queue: 'q',
        counts: { [S.TASK_STATE_QUEUED]: 5, [S.TASK_STATE_FAILED]: 2 },
        oldestQueuedMs: 1_500,
        rates: { submitted: 1, succeeded: 2, failed: 3 },
        paused: true,
      },
      { queue: 'empty', counts: {}, oldestQueuedMs: 0, rates: { submitted: 0, succeeded: 0, failed: 0 }, paused: false },
    ];
    const keys: KeyCounts[] = Array.from({ length: 25 }, (_, i) => ({ queue: 'q', key: `k${String(i).padStart(2, '0')}`, waiting: i % 5, running: 0 }));
    const [q, empty] = toQueueStats(stats, keys);
    expect(q).toMatchObject({ queue: 'q', queued: 5, failed: 2, scheduled: 0, running: 0, paused: true, waitingKeyCount: 25 });
    expect(q!.oldestQueuedAge).toEqual({ seconds: 1, nanos: 500_000_000 });
    expect(q!.waitingKeys).toHaveLength(20);
    // Most waiting first, then by key.
    expect(q!.waitingKeys.slice(0, 3).map((k) => k.key)).toEqual(['k04', 'k09', 'k14']);
    expect(empty).toMatchObject({ queue: 'empty', waitingKeys: [], waitingKeyCount: 0, paused: false });
  });
});
