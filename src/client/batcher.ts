import { resourceExhausted, type TaskwireError } from '../errors.js';
import { TaskOptions } from '../../gen/ts/taskwire/v1/task.js';
import type { SessionRequest, SessionSubmit } from '../../gen/ts/taskwire/v1/task_service.js';
import { DEFAULT_MAX_MESSAGE_BYTES, type OutboxLimits } from '../rpc/index.js';

/** Submits in one Session message at most: the unary SubmitTasks limit too. */
const MAX_SUBMITS_PER_MESSAGE = 1000;

/** Field tags, lengths and the ref of one submit, over-counted. */
const SUBMIT_OVERHEAD = 64;

/**
 * An upper bound of a submit's encoded size, without encoding it: its bytes
 * are the input's, plus the options, which are encoded only when present.
 */
function submitBytes(submit: SessionSubmit): number {
  const request = submit.request;
  if (request === undefined) return SUBMIT_OVERHEAD;
  const input = request.input === undefined ? 0 : request.input.typeUrl.length * 3 + request.input.value.length;
  const options = request.options === undefined ? 0 : TaskOptions.encode(request.options).finish().length;
  return SUBMIT_OVERHEAD + request.type.length * 3 + input + options;
}

function requestBytes(message: Partial<SessionRequest>): number {
  let bytes = 0;
  for (const submit of message.submits ?? []) bytes += submitBytes(submit);
  for (const id of message.follow ?? []) bytes += id.length + 4;
  return bytes;
}

/**
 * How the client cuts one turn's submits into Session messages: by count and
 * by bytes, a quarter of the largest message, so a burst of `submitMany`
 * never becomes one message past the server's limit (16 MiB by default),
 * and one large input still fits on its own.
 */
export function sessionLimits(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): OutboxLimits<Partial<SessionRequest>> {
  return { maxItems: MAX_SUBMITS_PER_MESSAGE, maxBytes: Math.floor(maxMessageBytes / 4), bytes: requestBytes };
}

/** A submit too large for any message: refused alone, before it can end the stream for every other submit. */
export function oversizedSubmit(submit: SessionSubmit, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): TaskwireError | undefined {
  const bytes = submitBytes(submit);
  if (bytes <= maxMessageBytes) return undefined;
  return resourceExhausted(
    `the submit of ${submit.request?.type ?? 'a task'} is at most ${bytes} bytes, past the ${maxMessageBytes}-byte message limit: ` +
      'keep large payloads elsewhere and pass a reference, or raise maxMessageBytes on the client and the server',
  );
}
