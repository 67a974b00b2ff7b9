import { Metadata, type sendUnaryData, type ServerUnaryCall, type UntypedHandleCall } from '@grpc/grpc-js';
import { Status } from 'nice-grpc';
import type { Logger } from 'pino';
import type { TaskwireCallContext } from './context.js';
import { authenticate, type AuthHook } from './middleware/auth.js';
import { deadlineOf } from './middleware/deadline.js';
import { decoded } from './middleware/decoding.js';
import { toServerError } from './middleware/errors.js';
import { recordCall, statusOf, type CallObserver } from './middleware/logging.js';

/** What a plain unary handler sees: the server's call context and what a unary call has of its own. */
export interface UnaryCallContext extends TaskwireCallContext {
  /** Aborted when the caller cancels or its deadline passes. */
  readonly signal: AbortSignal;
  readonly metadata: { get(key: string): string | undefined };
  /** Response headers, sent with the response or at `sendHeader()`. */
  readonly header: { set(key: string, value: string): void };
  sendHeader(): void;
  readonly peer: string;
}

export type UnaryHandler<Request, Response> = (request: Request, context: UnaryCallContext) => Promise<Response>;

/** What the server's middleware applies to every call, for the unary path to apply the same. */
export interface UnaryRules {
  readonly logger: Logger;
  readonly observe: CallObserver | undefined;
  readonly auth: AuthHook | undefined;
  readonly draining: AbortSignal;
}

/**
 * A unary method served by grpc-js directly, with the rules of the server's
 * nice-grpc middleware (logging.ts, errors.ts, auth.ts, deadline.ts,
 * decoding.ts: the same functions, called here in the same order) but none
 * of nice-grpc's per-call layers: no call-context copy of the metadata, no
 * chain of async generators. For the gateway, whose every call is a task.
 */
export function unaryHandler<Request, Response>(path: string, handler: UnaryHandler<Request, Response>, rules: UnaryRules): UntypedHandleCall {
  return (call: ServerUnaryCall<Request, Response>, callback: sendUnaryData<Response>) => {
    const record = recordCall(rules.logger, rules.observe, path, () => call.getPeer(), false);
    const controller = new AbortController();
    // grpc-js tells 'cancelled' when the caller goes away or its deadline passes, and after every answer too.
    let answered = false;
    if (call.cancelled) controller.abort();
    else
      call.once('cancelled', () => {
        if (!answered) controller.abort();
      });
    let header: Metadata | undefined;
    let headerSent = false;
    let principal: TaskwireCallContext['principal'];
    const context: UnaryCallContext = {
      signal: controller.signal,
      metadata: {
        get(key) {
          const value = call.metadata.get(key)[0];
          return value === undefined ? undefined : String(value);
        },
      },
      header: { set: (key, value) => (header ??= new Metadata()).set(key, value) },
      sendHeader() {
        if (headerSent) return;
        headerSent = true;
        if (header !== undefined) call.sendMetadata(header);
      },
      get peer() {
        return call.getPeer();
      },
      deadline: deadlineOf(call),
      draining: rules.draining,
      get principal() {
        return principal;
      },
      get log() {
        return record.log;
      },
      logFields: record.logFields,
    };
    const run = async (): Promise<Response> => {
      if (rules.auth !== undefined) {
        principal = await authenticate(rules.auth, {
          method: path,
          authorization: context.metadata.get('authorization'),
          peer: call.getPeer(),
        });
      }
      return handler(decoded(path, call.request) as Request, context);
    };
    run().then(
      (response) => {
        answered = true;
        context.sendHeader();
        callback(null, response);
        record.end(Status.OK);
      },
      (error: unknown) => {
        answered = true;
        context.sendHeader();
        const { code, details } = statusOf(toServerError(error, () => record.log));
        callback({ code, details: details ?? (code === Status.CANCELLED ? 'The operation was cancelled' : 'Unknown server error occurred') });
        record.end(code, details);
      },
    );
  };
}
