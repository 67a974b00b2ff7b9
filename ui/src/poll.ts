import { useEffect, useState } from 'preact/hooks';

/** Calls `load` now and every `everyMs` while mounted; the latest value or error. */
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, everyMs: number, deps: readonly unknown[]): { value: T | undefined; error: unknown } {
  const [state, setState] = useState<{ value: T | undefined; error: unknown }>({ value: undefined, error: undefined });
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const value = await load(controller.signal);
        if (!controller.signal.aborted) setState({ value, error: undefined });
      } catch (error) {
        if (!controller.signal.aborted) setState((s) => ({ value: s.value, error }));
      }
      if (!controller.signal.aborted) timer = setTimeout(run, everyMs);
    };
    void run();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, deps);
  return state;
}
