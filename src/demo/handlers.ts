import { appendFileSync } from 'node:fs';
import { delay } from 'abort-controller-x';
import { DemoServiceDefinition } from '../../gen/ts/demo/v1/demo.js';
import { Code } from '../errors.js';
import { NonRetryableError, TaskError, type TaskHandlers } from '../worker/index.js';

/**
 * When set, every Echo execution appends "taskId attempt workerId" to this
 * file: the fault suite counts executions with it.
 */
const executionLog = process.env.TASKWIRE_DEMO_EXECUTION_LOG;

/** The demo task service's handlers: `taskwire worker --demo` serves them. */
export function demoHandlers(workerId: string): TaskHandlers<typeof DemoServiceDefinition> {
  return {
    async echo(request, ctx) {
      if (executionLog !== undefined) appendFileSync(executionLog, `${ctx.taskId} ${ctx.attempt} ${workerId}\n`);
      return { text: request.text, payload: request.payload, workerId, attempt: ctx.attempt };
    },

    async sleep(request, ctx) {
      const started = Date.now();
      const steps = Math.max(1, request.steps);
      for (let step = 1; step <= steps; step++) {
        await delay(ctx.signal, request.durationMs / steps);
        if (request.steps > 0) ctx.progress((100 * step) / steps, `step ${step} of ${steps}`);
      }
      return { sleptMs: Date.now() - started };
    },

    async fail(request, ctx) {
      if (request.failAttempts !== 0 && ctx.attempt > request.failAttempts) return { attempt: ctx.attempt };
      const message = request.message || `failing attempt ${ctx.attempt} on purpose`;
      const code = (request.code || Code.UNKNOWN) as Code;
      if (request.permanent) throw new NonRetryableError(message, code);
      throw new TaskError(message, { code });
    },
  };
}

export { DemoServiceDefinition };
