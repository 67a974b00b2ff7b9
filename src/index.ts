export * from './client/index.js';
export * from './server/index.js';
export * from './worker/index.js';
export { Code, TaskwireError } from './errors.js';
