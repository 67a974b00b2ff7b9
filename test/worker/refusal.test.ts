import { afterEach, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { createWorker, WorkerRefusedError } from '../../src/worker/index.js';
import { DemoServiceDefinition, demoHandlers } from '../../src/demo/handlers.js';
import { startStack } from '../helpers/inprocess.js';
import { pino } from 'pino';

let stack: Awaited<ReturnType<typeof startStack>> | undefined;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

describe('a worker the server refuses', () => {
  it('start() rejects with the reason, done rejects, and the worker stops instead of retrying', async () => {
    stack = await startStack({ maxSlots: 2 });
    const worker = createWorker({ server: stack.address, concurrency: 4, logger: pino({ level: 'silent' }) });
    worker.implement(DemoServiceDefinition, demoHandlers(worker.workerId));
    const error = await worker.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WorkerRefusedError);
    expect((error as WorkerRefusedError).code).toBe(Code.INVALID_ARGUMENT);
    expect((error as Error).message).toMatch(/hello\.slots must be in 1\.\.2; got 4/);
    await expect(worker.done).rejects.toBeInstanceOf(WorkerRefusedError);
    expect(stack.server.workers()).toHaveLength(0);
    await worker.stop(); // stopping a refused worker is quiet
  });

  it('a worker serving no task type the server knows is refused with the types it does serve', async () => {
    stack = await startStack();
    const worker = createWorker({ server: stack.address, logger: pino({ level: 'silent' }) });
    const { fullName: _, ...methods } = DemoServiceDefinition;
    worker.implement({ ...methods, name: 'Other', fullName: 'other.v1.Other' } as unknown as typeof DemoServiceDefinition, demoHandlers(worker.workerId));
    const error = await worker.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WorkerRefusedError);
    expect((error as WorkerRefusedError).code).toBe(Code.FAILED_PRECONDITION);
    expect((error as Error).message).toMatch(/does not serve "\/other\.v1\.Other\/Echo".*it serves \/demo\.v1\.DemoService\/Echo/);
  });

  it('a concurrency out of range is refused by createWorker itself', () => {
    expect(() => createWorker({ server: '127.0.0.1:9', concurrency: 0 })).toThrow(/concurrency must be an integer in 1\.\.10000; got 0/);
  });
});
