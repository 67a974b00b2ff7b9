import type { SessionResponse, TaskOutcome, TaskServiceImplementation } from '../../gen/ts/taskwire/v1/task_service.js';
import { TaskView } from '../../gen/ts/taskwire/v1/task_service.js';
import type { Broker, Submitted } from '../broker/index.js';
import { invalidArgument, resourceExhausted, TaskwireError, unavailable } from '../errors.js';
import type { TaskwireCallContext } from '../rpc/index.js';
import type { TaskRecord } from '../store/index.js';
import { mergeMessages } from '../contract.js';
import {
  notFoundOutcome,
  payloadBytes,
  toOutcome,
  toQueueStats,
  toSubmitAck,
  toSubmitRequest,
  toSubmitResponse,
  toTask,
  toWorkerInfo,
} from './convert.js';
import { Outbox } from '../rpc/outbox.js';
import { SESSION_RESPONSE_LIMITS } from './session-batches.js';
import { createQueueAdmin } from './queue-admin.js';
import { bulkQuery, listFilter } from './task-filter.js';
import { taskLogFields } from '../metrics/index.js';

/** Most tasks in one SubmitTasks call (documented in the contract). */
export const MAX_SUBMIT_BATCH = 1000;
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;
/** A ListTasks page in the FULL view ends before its payloads pass this (at least one task a page). */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;
/** Room left in a message for everything but a task's payloads. */
const ENVELOPE_BYTES = 64 * 1024;
/** Submits a Session may have waiting for their commit before it stops reading. */
const MAX_SESSION_INFLIGHT = 10_000;

/** A request's view, checked; UNSPECIFIED is the method's default. */
function viewOf(view: TaskView, fallback: TaskView.TASK_VIEW_BASIC | TaskView.TASK_VIEW_FULL) {
  if (view === TaskView.TASK_VIEW_UNSPECIFIED) return fallback;
  if (view !== TaskView.TASK_VIEW_BASIC && view !== TaskView.TASK_VIEW_FULL) {
    throw invalidArgument(`view ${view} is not a TaskView: use TASK_VIEW_BASIC (1) or TASK_VIEW_FULL (2)`);
  }
  return view;
}

type SessionOut = Partial<SessionResponse>;
/** One complete SessionResponse from the queued items (the stream skips fromPartial). */
const mergeSession = (messages: SessionOut[]): SessionResponse => mergeMessages((): SessionResponse => ({ acks: [], outcomes: [] }), messages);

function pageSize(requested: number): number {
  if (requested === 0) return DEFAULT_PAGE_SIZE;
  if (requested > MAX_PAGE_SIZE) throw invalidArgument(`page_size must be at most ${MAX_PAGE_SIZE}; got ${requested}`);
  return requested;
}

export interface TaskServiceOptions {
  /** The server's largest message: a task whose FULL view would not fit is refused with RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes: number;
}

export function createTaskService(broker: Broker, options: TaskServiceOptions): TaskServiceImplementation<TaskwireCallContext> {
  /** Refuses, as the error it is, an answer grpc-js would fail to send (and log as sent). */
  const fits = (task: TaskRecord) => {
    const bytes = payloadBytes(task);
    if (bytes + ENVELOPE_BYTES > options.maxMessageBytes) {
      throw resourceExhausted(
        `task ${task.id}'s input and output are ${bytes} bytes, more than fits in this server's largest message (${options.maxMessageBytes}); ask for view TASK_VIEW_BASIC, or raise the server's max message size`,
      );
    }
    return task;
  };
  return {
    ...createQueueAdmin(broker),

    async submitTask(request, context) {
      const [result] = await broker.submit([toSubmitRequest(request)]);
      context.logFields(taskLogFields(result!.task.id, result!.task.options.traceContext));
      return toSubmitResponse(result!);
    },

    async submitTasks(request) {
      if (request.tasks.length === 0) throw invalidArgument('tasks is empty: send 1..1000 tasks');
      if (request.tasks.length > MAX_SUBMIT_BATCH) {
        throw invalidArgument(`tasks has ${request.tasks.length} entries; at most ${MAX_SUBMIT_BATCH} per call: split the batch`);
      }
      const results = await broker.submit(request.tasks.map(toSubmitRequest));
      return { results: results.map(toSubmitResponse) };
    },

    async getTask(request, context) {
      const view = viewOf(request.view, TaskView.TASK_VIEW_FULL);
      context.logFields({ task_id: request.id });
      const task = await broker.get(request.id);
      context.logFields(taskLogFields(task.id, task.options.traceContext));
      return { task: toTask(view === TaskView.TASK_VIEW_FULL ? fits(task) : task, view) };
    },

    async *watchTask(request, context) {
      const signal = AbortSignal.any([context.signal, context.draining]);
      context.logFields({ task_id: request.id });
      for await (const event of broker.watch(request.id, signal)) {
        if (event.kind === 'task') {
          context.logFields(taskLogFields(event.task.id, event.task.options.traceContext));
          yield { event: { $case: 'task', value: toTask(event.task) } };
        } else {
          const { attempt, percent, message, time } = event;
          yield { event: { $case: 'progress', value: { attempt, percent, message, time: new Date(time) } } };
        }
      }
      if (context.draining.aborted && !context.signal.aborted) {
        throw unavailable('the server is shutting down; watch again to resume');
      }
    },

    async cancelTask(request, context) {
      context.logFields({ task_id: request.id });
      const task = await broker.cancel(request.id, request.reason);
      context.logFields(taskLogFields(task.id, task.options.traceContext));
      return { task: toTask(task) };
    },

    async retryTask(request, context) {
      context.logFields({ task_id: request.id });
      const task = await broker.retry(request.id);
      context.logFields(taskLogFields(task.id, task.options.traceContext));
      return { task: toTask(task) };
    },

    async listTasks(request) {
      const size = pageSize(request.pageSize);
      const view = viewOf(request.view, TaskView.TASK_VIEW_BASIC);
      const page = await broker.list(
        listFilter(request),
        size,
        request.pageToken === '' ? undefined : request.pageToken,
      );
      if (view === TaskView.TASK_VIEW_BASIC) {
        return { tasks: page.tasks.map((task) => toTask(task, view)), nextPageToken: page.next ?? '' };
      }
      // FULL: the page ends early rather than pass MAX_PAGE_BYTES of payloads; it always holds one task.
      let bytes = 0;
      let count = 0;
      for (const task of page.tasks) {
        const size = payloadBytes(fits(task));
        if (count > 0 && bytes + size > MAX_PAGE_BYTES) break;
        bytes += size;
        count++;
      }
      const tasks = page.tasks.slice(0, count).map((task) => toTask(task, view));
      const next = count < page.tasks.length ? page.after(count - 1) : (page.next ?? '');
      return { tasks, nextPageToken: next };
    },

    async retryTasks(request) {
      return broker.retryMatching(bulkQuery(request.filter), { dryRun: request.dryRun, limit: request.limit });
    },

    async cancelTasks(request) {
      return broker.cancelMatching(bulkQuery(request.filter), { dryRun: request.dryRun, limit: request.limit, reason: request.reason });
    },

    async listWorkers() {
      return { workers: (await broker.allWorkers()).map(toWorkerInfo) };
    },

    async getQueueStats(request) {
      const queue = request.queue === '' ? undefined : request.queue;
      const [stats, keys] = await Promise.all([broker.stats(queue), broker.waitingKeys(queue)]);
      return { queues: toQueueStats(stats, keys) };
    },

    async *session(requests, context) {
      const outbox = new Outbox<SessionOut, SessionResponse>(mergeSession, SESSION_RESPONSE_LIMITS);
      const following = new Set<() => void>();
      let reading = true;
      const maybeEnd = () => {
        if (!reading && following.size === 0) outbox.end();
      };
      const answer = (stop: () => void, outcome: TaskOutcome) => {
        following.delete(stop);
        outbox.push({ outcomes: [outcome] });
        maybeEnd();
      };
      /** Sends the task's outcome when it ends; an id that names no task is answered at once. */
      const follow = (id: string, submitted?: Submitted): void => {
        const stop = broker.onOutcome(id, (outcome) => answer(stop, toOutcome(outcome)), {
          ...(submitted === undefined ? {} : { submitted }),
          missing: (error) => answer(stop, notFoundOutcome(id, error)),
        });
        following.add(stop);
      };

      // Submits are committed while the next messages are read (so commits group
      // across messages); acks still go out in the order the submits arrived.
      let acked: Promise<void> = Promise.resolve();
      const fail = (error: unknown) => outbox.fail(error);
      let inflight = 0;
      const read = async () => {
        for await (const request of requests) {
          for (const id of request.follow) follow(id);
          const submits = request.submits;
          if (submits.length === 0) continue;
          inflight += submits.length;
          const committed = broker.submitEach(
            submits.map((s) => (s.request === undefined ? { type: '' } : toSubmitRequest(s.request))),
          );
          acked = Promise.all([committed, acked]).then(([results]) => {
            inflight -= submits.length;
            outbox.push({
              acks: results.map((result, i) => toSubmitAck(submits[i]!.ref, result)),
            });
            results.forEach((result, i) => {
              if (!(result instanceof TaskwireError) && submits[i]!.wantResult) follow(result.task.id, result);
            });
          }, fail);
          if (inflight > MAX_SESSION_INFLIGHT) await acked;
        }
        await acked;
      };
      // Reading goes on beside writing; acks are sent in the order submits arrived.
      void read().then(
        () => {
          reading = false;
          maybeEnd();
        },
        fail,
      );
      const onAbort = () => outbox.end();
      // Acks of committed submits still go out; then the stream ends so the client reconnects elsewhere.
      const onDrain = () =>
        void acked.then(() =>
          outbox.fail(unavailable('the server is shutting down; reconnect and follow your pending tasks')),
        );
      context.signal.addEventListener('abort', onAbort, { once: true });
      context.draining.addEventListener('abort', onDrain, { once: true });
      try {
        yield* outbox;
      } finally {
        context.signal.removeEventListener('abort', onAbort);
        context.draining.removeEventListener('abort', onDrain);
        for (const stop of following) stop();
      }
    },
  };
}

