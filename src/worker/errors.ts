import { Code, codeName, TaskwireError } from '../errors.js';

/**
 * Throw from a handler to fail the attempt with a status code. A retryable
 * failure is retried with backoff while attempts remain; a non-retryable one
 * fails the task at once. Any other thrown error is a retryable UNKNOWN.
 */
export class TaskError extends TaskwireError {
  readonly retryable: boolean;

  constructor(message: string, options: { code?: Code; retryable?: boolean } = {}) {
    super(options.code ?? Code.UNKNOWN, message);
    this.name = 'TaskError';
    this.retryable = options.retryable ?? true;
  }
}

/** A failure retrying cannot fix (bad input, say): the task FAILS at once. */
export class NonRetryableError extends TaskError {
  constructor(message: string, code: Code = Code.FAILED_PRECONDITION) {
    super(message, { code, retryable: false });
    this.name = 'NonRetryableError';
  }
}

/**
 * The server turned this worker away for a reason that retrying cannot fix
 * (bad slots, a token it does not accept, a protocol it does not speak):
 * `start()` rejects with it and the worker stops.
 */
export class WorkerRefusedError extends TaskwireError {
  constructor(
    code: Code,
    readonly details: string,
  ) {
    super(code, `the server refused this worker: ${codeName(code)}: ${details}`);
    this.name = 'WorkerRefusedError';
  }
}
