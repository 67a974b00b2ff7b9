/**
 * A TASKWIRE_* setting from the environment; set-but-empty counts as unset,
 * so a compose file or manifest can pass `TASKWIRE_STORE=${TASKWIRE_STORE:-}`.
 */
export const env = (name: `TASKWIRE_${string}`): string | undefined => process.env[name] || undefined;
