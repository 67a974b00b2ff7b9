import { Code } from '../errors.js';

/**
 * Throw from a handler to fail the attempt with a status code. A retryable
 * failure is retried with backoff while attempts remain; a non-retryable one
 * fails the task at once. Any other thrown error is a retryable UNKNOWN.
 */
export class TaskError extends Error {
  readonly code: Code;
  readonly retryable: boolean;

  constructor(message: string, options: { code?: Code; retryable?: boolean } = {}) {
    super(message);
    this.name = 'TaskError';
    this.code = options.code ?? Code.UNKNOWN;
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
