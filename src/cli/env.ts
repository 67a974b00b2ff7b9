/**
 * A TASKWIRE_* setting from the environment; set-but-empty counts as unset,
 * so a compose file or manifest can pass `TASKWIRE_STORE=${TASKWIRE_STORE:-}`.
 */
export const env = (name: `TASKWIRE_${string}`): string | undefined => process.env[name] || undefined;

/**
 * Options read their variables through commander (`Option.env()`), which
 * takes an empty value as given: drop empty TASKWIRE_* variables first, so
 * empty still means unset.
 */
export function clearEmptyVariables(): void {
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('TASKWIRE_') && value === '') delete process.env[name];
  }
}
