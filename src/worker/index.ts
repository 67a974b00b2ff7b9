export { createWorker, type Worker, type WorkerOptions } from './worker.js';
export { NonRetryableError, TaskError } from './errors.js';
export type { MessageType, ServiceDefinition, TaskContext, TaskHandler, TaskHandlers } from './types.js';
