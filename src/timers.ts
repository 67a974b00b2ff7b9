/**
 * Node fires a setTimeout whose delay is over 2^31-1 ms (24.8 days) after
 * 1 ms, with a TimeoutOverflowWarning. Deadlines and execution timeouts may be
 * longer than that, so their timers go through here: a long wait is chained in
 * steps the runtime can hold.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `fn` after `ms` (any length); returns what cancels it. */
export function setLongTimeout(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout>;
  const arm = (left: number): void => {
    timer = left > MAX_TIMER_MS ? setTimeout(() => arm(left - MAX_TIMER_MS), MAX_TIMER_MS) : setTimeout(fn, Math.max(0, left));
  };
  arm(ms);
  return () => clearTimeout(timer);
}

/** `AbortSignal.timeout` for any length (its timer has the same limit); like it, it does not keep the process alive. */
export function timeoutSignal(ms: number): AbortSignal {
  if (ms <= MAX_TIMER_MS) return AbortSignal.timeout(ms);
  const controller = new AbortController();
  const arm = (left: number): void => {
    const step = Math.min(left, MAX_TIMER_MS);
    setTimeout(() => {
      if (left > MAX_TIMER_MS) arm(left - MAX_TIMER_MS);
      else controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    }, step).unref();
  };
  arm(ms);
  return controller.signal;
}

const abortListeners = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `listener` when `signal` aborts; returns what removes it. For many
 * short-lived listeners on one long-lived signal (the server's drain, one
 * listener per waiting gateway call): an AbortSignal walks its whole list of
 * listeners on every add and remove, which with thousands of calls waiting
 * costs more than the call. Here one listener per signal serves a Set. As
 * with addEventListener, a signal aborted already never calls it.
 */
export function onAbort(signal: AbortSignal, listener: () => void): () => void {
  if (signal.aborted) return () => undefined;
  let listeners = abortListeners.get(signal);
  if (listeners === undefined) {
    const set = new Set<() => void>();
    listeners = set;
    abortListeners.set(signal, set);
    signal.addEventListener('abort', () => {
      abortListeners.delete(signal);
      for (const each of set) each();
    }, { once: true });
  }
  const set = listeners;
  set.add(listener);
  return () => void set.delete(listener);
}
