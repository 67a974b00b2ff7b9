import { useState } from 'preact/hooks';
import { api } from './api.js';
import { Problem } from './problem.js';

/**
 * Pause or resume one queue (admin). Pausing asks first: a paused queue takes
 * submits and dispatches nothing until resumed. The server's refusal (a token
 * without the admin role) is shown as it says it.
 */
export function QueueControl({ queue, paused, onChange }: { queue: string; paused: boolean; onChange: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = async (what: 'pause' | 'resume') => {
    setBusy(true);
    setError(undefined);
    try {
      if (what === 'pause') await api.pauseQueue({ queue });
      else await api.resumeQueue({ queue });
      setConfirming(false);
      onChange();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="queue-control">
      {paused ? (
        <button type="button" disabled={busy} aria-label={`Resume queue ${queue}`} onClick={() => void run('resume')}>
          Resume
        </button>
      ) : confirming ? (
        <span class="confirm" role="group" aria-label={`confirm pausing ${queue}`}>
          <span>Pause {queue}? Running tasks finish; nothing new starts.</span>
          <button type="button" class="danger" disabled={busy} onClick={() => void run('pause')}>
            Pause queue
          </button>
          <button type="button" disabled={busy} onClick={() => setConfirming(false)}>
            Keep running
          </button>
        </span>
      ) : (
        <button type="button" aria-label={`Pause queue ${queue}`} onClick={() => setConfirming(true)}>
          Pause
        </button>
      )}
      {error !== undefined && <Problem error={error} />}
    </div>
  );
}
