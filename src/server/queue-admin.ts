import type { TaskServiceImplementation } from '../../gen/ts/taskwire/v1/task_service.js';
import type { Broker } from '../broker/index.js';
import type { TaskwireCallContext } from '../rpc/index.js';

type Admin = Pick<TaskServiceImplementation<TaskwireCallContext>, 'pauseQueue' | 'resumeQueue' | 'deleteTask' | 'purgeQueue'>;

/** The queue controls of TaskService (admin role): pause, resume, delete a task, purge a queue. */
export function createQueueAdmin(broker: Broker): Admin {
  return {
    async pauseQueue(request) {
      return { changed: await broker.pauseQueue(request.queue) };
    },

    async resumeQueue(request) {
      return { changed: await broker.resumeQueue(request.queue) };
    },

    async deleteTask(request) {
      await broker.deleteTask(request.id);
      return {};
    },

    async purgeQueue(request, context) {
      const deleted = await broker.purgeQueue({
        queue: request.queue,
        states: request.states,
        ...(request.finishedBefore === undefined ? {} : { finishedBefore: request.finishedBefore.getTime() }),
        signal: context.signal,
      });
      return { deleted };
    },
  };
}
