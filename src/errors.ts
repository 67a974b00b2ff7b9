/**
 * Status codes (google.rpc.Code) and the one error type that carries them.
 * The broker and the store speak these codes without knowing gRPC; the RPC
 * layer maps a TaskwireError to a gRPC status once, at the edge.
 */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type Code = (typeof Code)[keyof typeof Code];

const codeNames = new Map<number, string>(Object.entries(Code).map(([name, value]) => [value, name]));

/** The name of a status code ("INVALID_ARGUMENT"), or "CODE_<n>" for an unknown number. */
export function codeName(code: number): string {
  return codeNames.get(code) ?? `CODE_${code}`;
}

function isCode(value: number): value is Code {
  return codeNames.has(value);
}

/** A status code from the wire (a worker's failure, a server's answer); UNKNOWN for a number that is none. */
export function codeOf(value: number): Code {
  return isCode(value) ? value : Code.UNKNOWN;
}

/**
 * The one error type, on the server and in the client: a status code and a
 * message that says what to fix. The server maps it to a gRPC status once,
 * in its error middleware; the client turns every status it receives into one.
 */
export class TaskwireError extends Error {
  constructor(
    readonly code: Code,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TaskwireError';
  }
}

export const invalidArgument = (message: string) => new TaskwireError(Code.INVALID_ARGUMENT, message);
export const notFound = (message: string) => new TaskwireError(Code.NOT_FOUND, message);
export const alreadyExists = (message: string) => new TaskwireError(Code.ALREADY_EXISTS, message);
export const failedPrecondition = (message: string) => new TaskwireError(Code.FAILED_PRECONDITION, message);
export const resourceExhausted = (message: string) => new TaskwireError(Code.RESOURCE_EXHAUSTED, message);
export const unavailable = (message: string) => new TaskwireError(Code.UNAVAILABLE, message);
export const cancelled = (message: string) => new TaskwireError(Code.CANCELLED, message);
export const deadlineExceeded = (message: string) => new TaskwireError(Code.DEADLINE_EXCEEDED, message);
export const aborted = (message: string) => new TaskwireError(Code.ABORTED, message);

/**
 * The store's disk has no room left (SQLite's SQLITE_FULL, PostgreSQL's
 * 53100 disk_full): nothing can be written until space is freed. Retryable,
 * and said in words an operator can act on.
 */
export const diskFull = (where: string) =>
  new TaskwireError(
    Code.RESOURCE_EXHAUSTED,
    `the disk is full: ${where} cannot be written; free space on that disk (writes resume by themselves once there is room), then retry`,
  );
