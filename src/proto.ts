/**
 * The generated taskwire.v1 messages that the public API takes and returns,
 * for code that names them: `import { TaskState, type Task } from 'taskwire/proto'`.
 */
export { Backoff, Task, TaskError, TaskOptions, TaskState } from '../gen/ts/taskwire/v1/task.js';
export {
  QueueStats,
  TaskOutcome,
  TaskProgress,
  TaskServiceDefinition,
  WatchTaskResponse,
  WorkerInfo,
} from '../gen/ts/taskwire/v1/task_service.js';
export { WorkerServiceDefinition } from '../gen/ts/taskwire/v1/worker_service.js';
export {
  CronTiming,
  MissedPolicy,
  OverlapPolicy,
  Schedule,
  ScheduleServiceDefinition,
  ScheduleSpec,
  ScheduleState,
} from '../gen/ts/taskwire/v1/schedule_service.js';
export { TaskMethodOptions } from '../gen/ts/taskwire/v1/options.js';
export { Any } from '../gen/ts/google/protobuf/any.js';
