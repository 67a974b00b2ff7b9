/**
 * What an application imports: `taskwire` is the sum of the three entry
 * points it is made of, each also importable on its own:
 *
 * - `taskwire/client`: submit tasks and wait for their results (a web service);
 * - `taskwire/worker`: run task handlers (a worker process);
 * - `taskwire/server`: the gRPC server, its store and token auth;
 * - `taskwire/proto`: the generated messages the API takes and returns.
 *
 * Every error the client, the server or a task reports is a `TaskwireError`
 * with a `code` (`Code`, the gRPC status codes); `TaskFailedError` is one.
 *
 * `taskwire/store` and `taskwire/rpc` are the extension API: for writing a
 * store of your own, or building on the transport. They change more freely
 * than the entry points above. Everything else is internal.
 */
export * from './client/index.js';
export * from './server/index.js';
export * from './worker/index.js';
export { Code, TaskwireError } from './errors.js';
