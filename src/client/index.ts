export { createClient, TaskFailedError, type ClientOptions, type Submitted, type SubmitItem, type TaskwireClient } from './client.js';
export type { SubmitOptions } from './options.js';
export { pack, unpack } from './pack.js';
