import { describe, expect, it } from 'vitest';
import { TaskState as S } from '../../gen/ts/taskwire/v1/task.js';
import { Code, TaskwireError } from '../../src/errors.js';
import {
  decideCancel,
  decideFail,
  decideRevive,
  queueTimeoutError,
  refusal,
  retentionExpiry,
  retentionExpirySql,
  type FailingRow,
} from '../../src/store/decisions.js';
import type { TaskRecord } from '../../src/store/types.js';

const NOW = 1_700_000_000_000;
const backoff = { initialMs: 1_000, maxMs: 8_000, multiplier: 2, jitter: 0 };
const row = (over: Partial<FailingRow> = {}): FailingRow => ({
  failures: 0,
  max_attempts: 3,
  backoff: JSON.stringify(backoff),
  retain_failed_ms: 60_000,
  ...over,
});
const failure = (over: { retryable?: boolean; attempt?: number; workerId?: string } = {}) => ({
  attempt: over.attempt ?? 1,
  message: 'boom',
  code: Code.INTERNAL,
  retryable: over.retryable ?? true,
  ...(over.workerId === undefined ? {} : { workerId: over.workerId }),
});

function task(state: S, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: 't1',
    type: 'demo.v1.DemoService/Echo',
    state,
    input: { typeUrl: 'type.googleapis.com/demo.v1.EchoRequest', value: new Uint8Array() },
    options: { queue: 'q', priority: 0, maxAttempts: 3, backoff, labels: {}, traceContext: {} },
    attempt: 2,
    failures: 1,
    errors: [],
    createdAt: NOW - 10_000,
    updatedAt: NOW - 1_000,
    runAt: NOW - 10_000,
    progressPercent: 0,
    progressMessage: '',
    ...over,
  };
}

describe('retention expiry', () => {
  it('is now plus the retention, or never when it is 0 or unset', () => {
    expect(retentionExpiry(NOW, 5_000)).toBe(NOW + 5_000);
    expect(retentionExpiry(NOW, 0)).toBeNull();
    expect(retentionExpiry(NOW, null)).toBeNull();
    expect(retentionExpiry(NOW, undefined)).toBeNull();
  });

  it('is the same rule in SQL, on the end state’s own column', () => {
    expect(retentionExpirySql('?', S.TASK_STATE_SUCCEEDED)).toBe('? + NULLIF(retain_succeeded_ms, 0)');
    expect(retentionExpirySql('$3', S.TASK_STATE_CANCELLED)).toBe('$3 + NULLIF(retain_cancelled_ms, 0)');
    expect(retentionExpirySql('@now', S.TASK_STATE_FAILED)).toBe('@now + NULLIF(retain_failed_ms, 0)');
  });
});

describe('decideFail', () => {
  it('retries a retryable failure with attempts left after the task’s own backoff, growing per failure', () => {
    const first = decideFail(failure(), row(), NOW);
    expect(first).toEqual({
      state: S.TASK_STATE_SCHEDULED,
      error: { attempt: 1, message: 'boom', code: Code.INTERNAL, retryable: true, time: NOW },
      runAt: NOW + 1_000,
      finishedAt: null,
      expiresAt: null,
    });
    expect(decideFail(failure({ attempt: 2 }), row({ failures: 1 }), NOW).runAt).toBe(NOW + 2_000);
    // Capped at maxMs.
    expect(decideFail(failure(), row({ failures: 8, max_attempts: 20 }), NOW).runAt).toBe(NOW + 8_000);
  });

  it('takes the jitter off the delay, never adds to it', () => {
    const jittered = row({ backoff: JSON.stringify({ ...backoff, jitter: 0.5 }) });
    for (let i = 0; i < 200; i++) {
      const { runAt } = decideFail(failure(), jittered, NOW);
      expect(runAt).toBeGreaterThanOrEqual(NOW + 500);
      expect(runAt).toBeLessThanOrEqual(NOW + 1_000);
    }
  });

  it('dead-letters the failure that uses the last attempt, with its retention expiry', () => {
    const last = decideFail(failure({ attempt: 3, workerId: 'w1' }), row({ failures: 2 }), NOW);
    expect(last).toEqual({
      state: S.TASK_STATE_FAILED,
      error: { attempt: 3, message: 'boom', code: Code.INTERNAL, retryable: true, workerId: 'w1', time: NOW },
      runAt: null,
      finishedAt: NOW,
      expiresAt: NOW + 60_000,
    });
  });

  it('dead-letters a non-retryable failure at once, whatever attempts are left', () => {
    const decision = decideFail(failure({ retryable: false }), row({ max_attempts: 100 }), NOW);
    expect(decision.state).toBe(S.TASK_STATE_FAILED);
    expect(decision.runAt).toBeNull();
    expect(decision.error.retryable).toBe(false);
  });

  it('keeps a dead letter forever when its failed retention is 0 or unset', () => {
    expect(decideFail(failure({ retryable: false }), row({ retain_failed_ms: 0 }), NOW).expiresAt).toBeNull();
    expect(decideFail(failure({ retryable: false }), row({ retain_failed_ms: null }), NOW).expiresAt).toBeNull();
  });

  it('dead-letters a task of one attempt on its first failure (failures ≥ max_attempts)', () => {
    expect(decideFail(failure(), row({ max_attempts: 1 }), NOW).state).toBe(S.TASK_STATE_FAILED);
  });
});

describe('the queue timeout error', () => {
  it('is DEADLINE_EXCEEDED, not retryable, for the attempt given', () => {
    expect(queueTimeoutError(0, NOW)).toEqual({
      attempt: 0,
      message: 'queue timeout: the task did not start in time',
      code: Code.DEADLINE_EXCEEDED,
      retryable: false,
      time: NOW,
    });
  });
});

describe('decideCancel', () => {
  it('cancels a running task, naming its lease owner and start for the broker', () => {
    const running = task(S.TASK_STATE_RUNNING, { leaseOwner: 'session-1', startedAt: NOW - 500 });
    expect(decideCancel(running, NOW)).toEqual({
      id: 't1',
      type: 'demo.v1.DemoService/Echo',
      queue: 'q',
      state: S.TASK_STATE_CANCELLED,
      attempt: 2,
      previous: S.TASK_STATE_RUNNING,
      owner: 'session-1',
      startedAt: NOW - 500,
      finishedAt: NOW,
    });
  });

  it('names no owner for a task that was not running, and carries its concurrency key', () => {
    const queued = task(S.TASK_STATE_QUEUED, {
      leaseOwner: 'stale',
      startedAt: NOW - 900,
      options: { ...task(S.TASK_STATE_QUEUED).options, concurrencyKey: 'k', concurrencyLimit: 1 },
    });
    const event = decideCancel(queued, NOW);
    expect(event).not.toHaveProperty('owner');
    expect(event).not.toHaveProperty('startedAt');
    expect(event).toMatchObject({ previous: S.TASK_STATE_QUEUED, concurrencyKey: 'k', finishedAt: NOW });
    expect(decideCancel(task(S.TASK_STATE_SCHEDULED), NOW).previous).toBe(S.TASK_STATE_SCHEDULED);
  });

  it.each([S.TASK_STATE_SUCCEEDED, S.TASK_STATE_FAILED, S.TASK_STATE_CANCELLED])('refuses a task in state %s, naming the states it may', (state) => {
    const refused = () => decideCancel(task(state), NOW);
    expect(refused).toThrow(TaskwireError);
    expect(refused).toThrow(/^task t1 is [A-Z]+; only SCHEDULED, QUEUED or RUNNING tasks can be cancelled$/);
    try {
      refused();
    } catch (error) {
      expect((error as TaskwireError).code).toBe(Code.FAILED_PRECONDITION);
    }
  });
});

describe('decideRevive', () => {
  it.each([S.TASK_STATE_FAILED, S.TASK_STATE_CANCELLED])('queues a task in state %s again', (state) => {
    expect(decideRevive(task(state))).toEqual({
      id: 't1',
      type: 'demo.v1.DemoService/Echo',
      queue: 'q',
      state: S.TASK_STATE_QUEUED,
      attempt: 2,
      previous: state,
    });
  });

  it.each([S.TASK_STATE_SCHEDULED, S.TASK_STATE_QUEUED, S.TASK_STATE_RUNNING, S.TASK_STATE_SUCCEEDED])('refuses a task in state %s', (state) => {
    expect(() => decideRevive(task(state))).toThrow(/; only FAILED or CANCELLED tasks can be retried$/);
  });
});

describe('refusal', () => {
  it('says what a delete needs', () => {
    const error = refusal('delete', { id: 't9', state: S.TASK_STATE_RUNNING });
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.message).toBe('task t9 is RUNNING; only SUCCEEDED, FAILED or CANCELLED tasks can be deleted: cancel it first');
  });
});
