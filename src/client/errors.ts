import { ClientError, type ClientMiddleware } from 'nice-grpc';
import { codeOf, TaskwireError } from '../errors.js';

/** A status the server answered with, as the client's one error class (the ClientError kept as `cause`). */
function fromStatus(error: ClientError): TaskwireError {
  return new TaskwireError(codeOf(error.code), error.details, { cause: error });
}

/** Every status a call ends with becomes a TaskwireError; aborts and local errors pass unchanged. */
export const statusToTaskwireError: ClientMiddleware = async function* statusToTaskwireError(call, options) {
  try {
    return yield* call.next(call.request, options);
  } catch (error) {
    throw error instanceof ClientError ? fromStatus(error) : error;
  }
};
