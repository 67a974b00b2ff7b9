/**
 * A worker module for the fault suite (`taskwire worker test/faults/tripwire.ts`,
 * under tsx): the demo service, except that the first Echo whose text starts
 * with "trip-" kills the process TASKWIRE_TRIP_PID (the server) with SIGKILL as
 * soon as it starts, then runs as usual. The server sends a task due now to a
 * free worker before its insert commits, so the kill lands between the
 * assignment and the commit when that commit is long.
 */
import { DemoServiceDefinition, demoHandlers } from '../../src/demo/handlers.js';
import type { Worker } from '../../src/worker/index.js';

export default function tripwire(worker: Worker): void {
  const pid = Number(process.env.TASKWIRE_TRIP_PID);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error('set TASKWIRE_TRIP_PID to the pid of the server to kill');
  const demo = demoHandlers(worker.workerId);
  let tripped = false;
  worker.implement(DemoServiceDefinition, {
    ...demo,
    async echo(request, ctx) {
      if (!tripped && request.text.startsWith('trip-')) {
        tripped = true;
        process.kill(pid, 'SIGKILL');
        process.stdout.write(`${JSON.stringify({ tripped: ctx.taskId, attempt: ctx.attempt })}\n`);
      }
      return demo.echo(request, ctx);
    },
  });
}
