export { createWorker, type Worker, type WorkerOptions } from './worker.js';
export { NonRetryableError, TaskError, WorkerRefusedError } from './errors.js';
export type { MessageType, ServiceDefinition, TaskContext, TaskHandler, TaskHandlers } from './types.js';
