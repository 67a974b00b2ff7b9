import { useEffect, useState } from 'preact/hooks';

/**
 * Calls `load` now and again `everyMs` after each answer while mounted (and at once on `reload`,
 * after an action); the latest value or error.
 * A slow answer (GetQueueStats counts every task: ~0.6 s over a million) stretches the wait to
 * four times its duration, so an open page never keeps the server busy more than a fifth of the time.
 */
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, everyMs: number, deps: readonly unknown[]): { value: T | undefined; error: unknown; reload: () => void } {
  const [state, setState] = useState<{ value: T | undefined; error: unknown }>({ value: undefined, error: undefined });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      const started = performance.now();
      try {
        const value = await load(controller.signal);
        if (!controller.signal.aborted) setState({ value, error: undefined });
      } catch (error) {
        if (!controller.signal.aborted) setState((s) => ({ value: s.value, error }));
      }
      if (!controller.signal.aborted) timer = setTimeout(run, Math.max(everyMs, 4 * (performance.now() - started)));
    };
    void run();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [...deps, generation]);
  return { ...state, reload: () => setGeneration((g) => g + 1) };
}
