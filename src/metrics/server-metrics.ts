import { Counter, Gauge, type Registry } from 'prom-client';
import { status } from '@grpc/grpc-js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import type { Broker, BrokerCounters } from '../broker/index.js';
import type { CallObserver } from '../rpc/index.js';
import type { Store, TaskEvent } from '../store/index.js';
import { fastCounter, fastHistogram, type FastCounter, type FastHistogram } from './fast.js';
import { SHORT_SECONDS, WIDE_SECONDS } from './registry.js';

const S = TaskState;
/** Gauge label values of the states a queue holds. */
const STATE_LABELS: ReadonlyArray<[TaskState, string]> = [
  [S.TASK_STATE_SCHEDULED, 'scheduled'],
  [S.TASK_STATE_QUEUED, 'queued'],
  [S.TASK_STATE_RUNNING, 'running'],
  [S.TASK_STATE_SUCCEEDED, 'succeeded'],
  [S.TASK_STATE_FAILED, 'failed'],
  [S.TASK_STATE_CANCELLED, 'cancelled'],
];
const END_LABELS = new Map<TaskState, string>([
  [S.TASK_STATE_SUCCEEDED, 'succeeded'],
  [S.TASK_STATE_FAILED, 'failed'],
  [S.TASK_STATE_CANCELLED, 'cancelled'],
]);

export interface ServerMetrics {
  /** For the RPC server and HTTP listener's logging middleware. */
  readonly observeCall: CallObserver;
  /** Stops following the store. */
  close(): void;
}

/**
 * The server's metrics. Counters and histograms count this replica's own
 * commits (sum them over replicas); gauges of the queue (tasks by state,
 * oldest waiting age) describe the shared store and read the same on every
 * replica (take max, not sum).
 */
export function registerServerMetrics(registry: Registry, broker: Broker, store: Store): ServerMetrics {
  const registers = [registry];
  const submitted = fastCounter(registry, { name: 'taskwire_tasks_submitted_total', help: 'Tasks inserted by this server.', labelNames: ['queue', 'type'] });
  const finished = fastCounter(registry, {
    name: 'taskwire_tasks_finished_total',
    help: 'Tasks that reached an end state (succeeded, failed, cancelled) in a commit of this server.',
    labelNames: ['queue', 'type', 'state'],
  });
  const retried = fastCounter(registry, { name: 'taskwire_tasks_retried_total', help: 'Failed attempts that will be retried after their backoff.', labelNames: ['queue', 'type'] });
  const deadLettered = fastCounter(registry, {
    name: 'taskwire_tasks_dead_lettered_total',
    help: 'Tasks FAILED for good (attempts exhausted or not retryable): the dead letter.',
    labelNames: ['queue', 'type'],
  });
  const queueWait = fastHistogram(registry, {
    name: 'taskwire_task_queue_wait_seconds',
    help: 'From when an attempt was due to when it started (schedule-to-start).',
    labelNames: ['queue', 'type'],
    buckets: WIDE_SECONDS,
  });
  const runTime = fastHistogram(registry, {
    name: 'taskwire_task_run_seconds',
    help: 'From an attempt’s start to its end, by how it ended (succeeded, failed, retried, released, cancelled).',
    labelNames: ['queue', 'type', 'outcome'],
    buckets: WIDE_SECONDS,
  });
  const commitSeconds = fastHistogram(registry, { name: 'taskwire_store_commit_seconds', help: 'Duration of each store commit.', labelNames: [], buckets: SHORT_SECONDS })({});
  const commitWrites = fastHistogram(registry, {
    name: 'taskwire_store_commit_writes',
    help: 'Writes (submits, claims, results, …) carried by each store commit.',
    labelNames: [],
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
  })({});
  const rpcRequests = fastCounter(registry, { name: 'taskwire_rpc_requests_total', help: 'RPCs handled, by method and status code.', labelNames: ['method', 'code'] });
  const rpcSeconds = fastHistogram(registry, {
    name: 'taskwire_rpc_duration_seconds',
    help: 'RPC handling time (a stream: its whole life).',
    labelNames: ['method'],
    buckets: SHORT_SECONDS,
  });
  /** Per-call series, by method and code: made once each. */
  const calls = new Map<string, { requests: FastCounter; seconds: FastHistogram }>();

  counterFrom(registry, broker.counters, 'leasesExpired', 'taskwire_leases_expired_total', 'Leases that ran out with no server renewing them; the attempt went back to the queue.');
  counterFrom(registry, broker.counters, 'workersLost', 'taskwire_attempts_worker_lost_total', 'Attempts failed because their worker’s stream closed or went silent.');
  counterFrom(registry, broker.counters, 'timedOut', 'taskwire_attempts_timed_out_total', 'Attempts failed for running past their execution timeout.');
  let seenStale = 0;
  let seenRefused = 0;
  new Counter({
    name: 'taskwire_results_refused_total',
    help: 'Worker results refused: stale (the attempt is no longer current) or refused (not the holder, invalid output).',
    labelNames: ['reason'],
    registers,
    collect() {
      this.inc({ reason: 'stale' }, broker.counters.staleResults - seenStale);
      this.inc({ reason: 'refused' }, broker.counters.refusedResults - seenRefused);
      seenStale = broker.counters.staleResults;
      seenRefused = broker.counters.refusedResults;
    },
  });

  new Gauge({
    name: 'taskwire_tasks',
    help: 'Tasks in the store by queue and state, kept current from every replica’s commits (the same on every replica).',
    labelNames: ['queue', 'state'],
    registers,
    collect() {
      this.reset();
      for (const row of broker.queues.counts()) {
        for (const [state, label] of STATE_LABELS) this.set({ queue: row.queue, state: label }, row.counts[state] ?? 0);
      }
    },
  });
  new Gauge({
    name: 'taskwire_queue_oldest_waiting_seconds',
    help: 'Age of the oldest QUEUED task per queue, since it became due (the same on every replica).',
    labelNames: ['queue'],
    registers,
    async collect() {
      const oldest = new Map((await store.oldestQueued()).map((row) => [row.queue, row.dueAt]));
      const now = Date.now();
      this.reset();
      for (const row of broker.queues.counts()) {
        const due = oldest.get(row.queue);
        this.set({ queue: row.queue }, due === undefined ? 0 : Math.max(0, now - due) / 1000);
      }
    },
  });
  new Gauge({
    name: 'taskwire_workers_connected',
    help: 'Worker sessions connected to this server.',
    registers,
    collect() {
      this.set(broker.workers().length);
    },
  });
  new Gauge({
    name: 'taskwire_connected_worker_slots',
    help: 'Slots of the workers connected to this server: total, and in use (running an attempt).',
    labelNames: ['use'],
    registers,
    collect() {
      let total = 0;
      let busy = 0;
      for (const worker of broker.workers()) {
        total += worker.slots;
        busy += worker.running;
      }
      this.set({ use: 'total' }, total);
      this.set({ use: 'busy' }, busy);
    },
  });
  new Gauge({
    name: 'taskwire_watchers_open',
    help: 'WatchTask streams open on this server.',
    registers,
    collect() {
      this.set(broker.watching());
    },
  });

  /** The series of one (queue, type), made once: labelling per event costs more than the event. */
  interface Series {
    readonly submitted: FastCounter;
    readonly retried: FastCounter;
    readonly deadLettered: FastCounter;
    readonly queueWait: FastHistogram;
    readonly finished: Map<string, FastCounter>;
    readonly runTime: Map<string, FastHistogram>;
  }
  const series = new Map<string, Series>();
  function seriesOf(queue: string, type: string): Series {
    const key = `${queue}\n${type}`;
    let found = series.get(key);
    if (found === undefined) {
      found = {
        submitted: submitted({ queue, type }),
        retried: retried({ queue, type }),
        deadLettered: deadLettered({ queue, type }),
        queueWait: queueWait({ queue, type }),
        finished: new Map(),
        runTime: new Map(),
      };
      series.set(key, found);
    }
    return found;
  }

  function observe(event: TaskEvent): void {
    const s = seriesOf(event.queue, event.type);
    if (event.previous === S.TASK_STATE_UNSPECIFIED) s.submitted.inc();
    if (event.state === S.TASK_STATE_RUNNING && event.dueAt !== undefined && event.startedAt !== undefined) {
      s.queueWait.observe(Math.max(0, event.startedAt - event.dueAt) / 1000);
    }
    const end = END_LABELS.get(event.state);
    if (end !== undefined) {
      let counter = s.finished.get(end);
      if (counter === undefined) s.finished.set(end, (counter = finished({ queue: event.queue, type: event.type, state: end })));
      counter.inc();
    }
    if (event.state === S.TASK_STATE_FAILED) s.deadLettered.inc();
    if (event.previous !== S.TASK_STATE_RUNNING || event.state === S.TASK_STATE_RUNNING) return;
    const retry = event.error !== undefined && (event.state === S.TASK_STATE_SCHEDULED || event.state === S.TASK_STATE_QUEUED);
    if (retry) s.retried.inc();
    if (event.startedAt !== undefined && event.finishedAt !== undefined) {
      const outcome = end ?? (retry ? 'retried' : 'released');
      let histogram = s.runTime.get(outcome);
      if (histogram === undefined) s.runTime.set(outcome, (histogram = runTime({ queue: event.queue, type: event.type, outcome })));
      histogram.observe(Math.max(0, event.finishedAt - event.startedAt) / 1000);
    }
  }

  const unsubscribe = store.subscribe((events) => {
    for (const event of events) {
      // Another replica's commit is counted there; gauges follow it through broker.queues.
      if (event.remote || event.progress !== undefined) continue;
      observe(event);
    }
  });
  // The cleaner's deletions on this replica (another replica's arrive marked remote).
  const cleaned = new Counter({
    name: 'taskwire_tasks_cleaned_total',
    help: 'Finished tasks deleted by this server’s cleaner after their retention, by the state they ended in.',
    labelNames: ['state'],
    registers,
  });
  for (const label of END_LABELS.values()) cleaned.inc({ state: label }, 0);
  const stopDeletions = store.onDeleted((deletions) => {
    for (const deletion of deletions) {
      if (deletion.remote || deletion.cause !== 'retention') continue;
      cleaned.inc({ state: END_LABELS.get(deletion.state) ?? String(deletion.state) }, deletion.count);
    }
  });
  const stopCommits = store.onCommit((seconds, writes) => {
    commitSeconds.observe(seconds);
    commitWrites.observe(writes);
  });

  return {
    observeCall(method, code, seconds) {
      const key = `${method} ${code}`;
      let call = calls.get(key);
      if (call === undefined) {
        call = { requests: rpcRequests({ method, code: status[code] ?? String(code) }), seconds: rpcSeconds({ method }) };
        calls.set(key, call);
      }
      call.requests.inc();
      call.seconds.observe(seconds);
    },
    close() {
      unsubscribe();
      stopCommits();
      stopDeletions();
    },
  };
}

/** A counter that mirrors one of the broker's running counts at each scrape. */
function counterFrom(registry: Registry, counters: BrokerCounters, key: keyof BrokerCounters, name: string, help: string): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.inc(counters[key] - seen);
      seen = counters[key];
    },
  });
}
