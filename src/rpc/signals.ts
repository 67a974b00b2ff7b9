/**
 * Runs `shutdown` on the first SIGTERM or SIGINT (so Node as PID 1 in a
 * container stops cleanly); a second signal exits at once. Returns a function
 * that removes the handlers.
 */
export function onShutdownSignals(shutdown: (signal: NodeJS.Signals) => Promise<unknown>): () => void {
  let received = false;
  const handler = (signal: NodeJS.Signals) => {
    if (received) process.exit(130);
    received = true;
    shutdown(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
