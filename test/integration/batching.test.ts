import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { pack } from '../../src/client/index.js';
import { Code, TaskwireError } from '../../src/errors.js';
import { Outbox } from '../../src/rpc/index.js';
import { startStack } from '../helpers/inprocess.js';
import { deferred } from '../helpers/wait.js';

const ECHO = '/demo.v1.DemoService/Echo';

let stack: Awaited<ReturnType<typeof startStack>> | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

function echoes(count: number, bytes: number) {
  const text = 'x'.repeat(bytes);
  return Array.from({ length: count }, () => ({ type: ECHO, input: pack(EchoRequest, { text }) }));
}

describe('submits of one turn, past one message', () => {
  it.each([
    [1_100, 16 * 1024],
    [3_000, 6 * 1024],
    [200_000, 8],
  ])('submitMany of %i × %i B in one turn: every submit acknowledged', async (count, bytes) => {
    stack = await startStack();
    const client = stack.client();
    const submitted = await client.submitMany(echoes(count, bytes));
    expect(submitted).toHaveLength(count);
    expect(new Set(submitted.map((s) => s.id)).size).toBe(count);
    const [stats] = await client.stats();
    expect(stats!.queued).toBe(count);
  }, 120_000);

  it('refuses alone a submit larger than any message; the others of its turn are acknowledged', async () => {
    stack = await startStack();
    const client = stack.client();
    const [small, huge, after] = await Promise.allSettled([
      client.submit(ECHO, pack(EchoRequest, { text: 'a' })),
      client.submit(ECHO, pack(EchoRequest, { text: 'x'.repeat(17 * 1024 * 1024) })),
      client.submit(ECHO, pack(EchoRequest, { text: 'b' })),
    ]);
    expect(small.status).toBe('fulfilled');
    expect(after.status).toBe('fulfilled');
    expect(huge.status).toBe('rejected');
    const reason = (huge as PromiseRejectedResult).reason as TaskwireError;
    expect(reason).toBeInstanceOf(TaskwireError);
    expect(reason.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(reason.message).toMatch(/past the 16777216-byte message limit/);
  });
});

describe('results of one turn, past one message', () => {
  it('32 outcomes of 1 MB each, finished together, all reach the client', async () => {
    stack = await startStack();
    await stack.worker({ concurrency: 32 });
    const client = stack.client();
    const payload = Buffer.alloc(1024 * 1024, 1);
    const submitted = await client.submitMany(Array.from({ length: 32 }, (_, i) => ({ type: ECHO, input: pack(EchoRequest, { text: `t${i}`, payload }) })));
    const outcomes = await Promise.all(submitted.map((s) => client.result(s.id, { signal: AbortSignal.timeout(15_000) })));
    expect(outcomes.map((o) => [o.state, o.output?.value.length ?? 0])).toEqual(submitted.map(() => [TaskState.TASK_STATE_SUCCEEDED, expect.any(Number)]));
    expect(outcomes.every((o) => o.output!.value.length > payload.length)).toBe(true);
  }, 30_000);
});

describe('a worker stream past one message', () => {
  it('32 queued inputs of 1 MB claimed at once, and their 32 outputs finished in one turn: every attempt the first', async () => {
    stack = await startStack();
    const client = stack.client();
    const payload = Buffer.alloc(1024 * 1024, 1);
    const submitted = await client.submitMany(Array.from({ length: 32 }, (_, i) => ({ type: ECHO, input: pack(EchoRequest, { text: `t${i}`, payload }) })));
    // The handlers hold their results until all 32 have arrived, then finish in the same turn.
    const all = deferred();
    let arrived = 0;
    await stack.worker({ concurrency: 32 }, (defaults) => ({
      ...defaults,
      async echo(request, ctx) {
        if (++arrived === 32) all.resolve();
        await all.promise;
        return defaults.echo(request, ctx);
      },
    }));
    const outcomes = await Promise.all(submitted.map((s) => client.result(s.id, { signal: AbortSignal.timeout(15_000) })));
    expect(outcomes.map((o) => [o.state, o.attempt, o.error])).toEqual(submitted.map(() => [TaskState.TASK_STATE_SUCCEEDED, 1, undefined]));
  }, 30_000);
});

describe('Outbox limits', () => {
  it('splits one turn by count and by bytes, in order, and lets an item larger than the byte cap go alone', async () => {
    const out = new Outbox<number, number[]>((items) => items, { maxItems: 3, maxBytes: 10, bytes: (n) => n });
    for (const n of [1, 1, 1, 1, 4, 4, 4, 50, 2]) out.push(n);
    out.end();
    const messages: number[][] = [];
    for await (const message of out) messages.push(message);
    expect(messages).toEqual([[1, 1, 1], [1, 4, 4], [4], [50], [2]]);
  });
});
