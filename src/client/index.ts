export { Code, TaskwireError } from '../errors.js';
export { createClient, type ClientOptions, type Submitted, type SubmitItem, type TaskwireClient } from './client.js';
export type { SubmitOptions } from './options.js';
export type { ScheduleClient, ScheduleSpecInput } from './schedules.js';
export { pack, unpack } from './pack.js';
export {
  TaskFailedError,
  taskStateName,
  type CallOptions,
  type ServiceClient,
  type TaskHandle,
  type TaskMethodClient,
  type TaskStateName,
  type TaskWatchEvent,
} from './service.js';
