/**
 * A worker module for the fault suite (`taskwire worker test/faults/tripwire.ts`,
 * under tsx): the demo service, except that the first Echo of each round —
 * text "trip-<round>-…" — kills the server (its pid read from the file
 * TASKWIRE_TRIP_PID_FILE at that moment) with SIGKILL as soon as it starts,
 * prints {"tripped": task id, "round": n}, then runs as usual. The server
 * sends a task due now to a free worker before its insert commits, so the
 * kill lands between the assignment and the commit when that commit is long.
 */
import { readFileSync } from 'node:fs';
import { DemoServiceDefinition, demoHandlers } from '../../src/demo/handlers.js';
import type { Worker } from '../../src/worker/index.js';

export default function tripwire(worker: Worker): void {
  const pidFile = process.env.TASKWIRE_TRIP_PID_FILE;
  if (pidFile === undefined) throw new Error('set TASKWIRE_TRIP_PID_FILE to a file holding the pid of the server to kill');
  const demo = demoHandlers(worker.workerId);
  const tripped = new Set<string>();
  worker.implement(DemoServiceDefinition, {
    ...demo,
    async echo(request, ctx) {
      const round = /^trip-(\d+)-/.exec(request.text)?.[1];
      if (round !== undefined && !tripped.has(round)) {
        tripped.add(round);
        process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
        process.stdout.write(`${JSON.stringify({ tripped: ctx.taskId, round: Number(round) })}\n`);
      }
      return demo.echo(request, ctx);
    },
  });
}
