import { useState } from 'preact/hooks';
import { TaskState } from '../gen/taskwire/v1/task_pb.js';
import { api } from './api.js';
import { taskFilterOf, type ListFilters } from './filters.js';
import { Problem } from './problem.js';

type Action = 'retry' | 'cancel';
const WORDS = { retry: ['Retry', 'retried', 'Retried'], cancel: ['Cancel', 'cancelled', 'Cancelled'] } as const;
// The states each action applies to (RetryTasks, CancelTasks); with no state filter, the server's own.
const APPLIES: Record<Action, readonly TaskState[]> = {
  retry: [TaskState.FAILED, TaskState.CANCELLED],
  cancel: [TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RUNNING],
};

type Step =
  | { readonly kind: 'idle' }
  | { readonly kind: 'counting' | 'running'; readonly action: Action }
  | { readonly kind: 'confirm' | 'done'; readonly action: Action; readonly count: number; readonly more: boolean; readonly at: number };

const plural = (n: number) => `${n.toLocaleString()} task${n === 1 ? '' : 's'}`;

/**
 * Retry or cancel every task the list's filters match (admin; offered once a filter is set, as the server requires one): a dry run first
 * says how many it would touch, then a confirmation runs it, at most the
 * server's default limit (1,000) a call; "more match" says to run it again.
 */
export function BulkActions({ filters, onDone }: { filters: ListFilters; onDone: () => void }) {
  const [step, setStep] = useState<Step>({ kind: 'idle' });
  const [error, setError] = useState<unknown>(undefined);
  const call = (action: Action, dryRun: boolean, at: number) => {
    const filter = taskFilterOf(filters, at);
    return action === 'retry' ? api.retryTasks({ filter, dryRun }) : api.cancelTasks({ filter, dryRun, reason: 'cancelled in bulk from the dashboard' });
  };
  const count = async (action: Action) => {
    setError(undefined);
    setStep({ kind: 'counting', action });
    // One instant for the dry run and the run: "created in the last hour" means the same tasks.
    const at = Date.now();
    try {
      const { count, more } = await call(action, true, at);
      setStep({ kind: 'confirm', action, count, more, at });
    } catch (e) {
      setError(e);
      setStep({ kind: 'idle' });
    }
  };
  const run = async (action: Action, at: number) => {
    setStep({ kind: 'running', action });
    try {
      const { count, more } = await call(action, false, at);
      setStep({ kind: 'done', action, count, more, at });
      onDone();
    } catch (e) {
      setError(e);
      setStep({ kind: 'idle' });
    }
  };
  const offered = (action: Action) => filters.state === TaskState.UNSPECIFIED || APPLIES[action].includes(filters.state);
  const busy = step.kind === 'counting' || step.kind === 'running';
  return (
    <section class="bulk" aria-label="bulk actions">
      {step.kind !== 'confirm' &&
        (['retry', 'cancel'] as const).filter(offered).map((action) => (
          <button type="button" disabled={busy} class={action === 'cancel' ? 'danger' : undefined} onClick={() => void count(action)}>
            {WORDS[action][0]} all matching…
          </button>
        ))}
      {step.kind === 'confirm' && (
        <div class="confirm" role="alertdialog" aria-label={`confirm ${step.action}`}>
          <span data-testid="dry-run">
            {step.count === 0
              ? `No tasks match these filters that can be ${WORDS[step.action][1]}.`
              : `${plural(step.count)} would be ${WORDS[step.action][1]}${step.more ? ' — and more match: this call stops there, run it again for the rest' : ''}.`}
          </span>
          {step.count > 0 && (
            <button type="button" class={step.action === 'cancel' ? 'danger' : 'primary'} onClick={() => void run(step.action, step.at)}>
              {WORDS[step.action][0]} {plural(step.count)}
            </button>
          )}
          <button type="button" onClick={() => setStep({ kind: 'idle' })}>
            Back
          </button>
        </div>
      )}
      {step.kind === 'done' && (
        <p class="done" role="status" data-testid="bulk-done">
          {WORDS[step.action][2]} {plural(step.count)}.{step.more ? ' More tasks match: run it again.' : ' No more match.'}
        </p>
      )}
      {error !== undefined && <Problem error={error} />}
    </section>
  );
}
