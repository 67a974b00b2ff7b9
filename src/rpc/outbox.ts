/**
 * Caps on one merged message: at most `maxItems` queued messages and, past
 * the first, at most `maxBytes` by `bytes` (an upper bound of an item's
 * encoded size). What does not fit goes out in the next message.
 */
export interface OutboxLimits<T> {
  readonly maxItems: number;
  readonly maxBytes: number;
  bytes(message: T): number;
}

/**
 * Messages waiting to be written to one stream. Everything queued during one
 * turn of the event loop goes out as one merged message (the writer waits
 * for `setImmediate`, which runs as soon as the turn's I/O callbacks are
 * done): under load the stream carries batches, at low load single items,
 * with no timer delay. `merge` also turns a single queued item into a
 * complete message. Messages that are not urgent (`defer`) ride along with
 * the next one, or go out on their own after a short while. With `limits`,
 * a turn's queue goes out as several messages, each within them; the stream
 * pulls them only as fast as it can write (nice-grpc waits for `drain`), so
 * a burst waits here instead of becoming one message past the peer's limit.
 */
export class Outbox<T, Out = T> {
  #queue: T[] = [];
  #deferred: T[] = [];
  #deferredDue = false;
  #deferTimer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #ended = false;
  #error: unknown;

  constructor(
    private readonly merge: (messages: T[]) => Out,
    private readonly limits?: OutboxLimits<T>,
  ) {}

  push(message: T): void {
    if (this.#ended) return;
    this.#queue.push(message);
    this.#wake?.();
  }

  /** Queues a message that is not urgent: it goes out with the next message, or after `maxDelayMs`. */
  defer(message: T, maxDelayMs: number): void {
    if (this.#ended) return;
    this.#deferred.push(message);
    this.#deferTimer ??= setTimeout(() => {
      this.#deferTimer = undefined;
      this.#deferredDue = true;
      this.#wake?.();
    }, maxDelayMs);
  }

  /** Ends the stream after what is queued. */
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  /** Ends the stream with an error, dropping what is queued. */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#error = error;
    this.#ended = true;
    this.#queue = [];
    this.#deferred = [];
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Out> {
    try {
      for (;;) {
        if (this.#queue.length > 0 || this.#deferredDue || (this.#ended && this.#deferred.length > 0)) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (this.#error !== undefined) throw this.#error;
          const batch = this.#deferred.length > 0 ? [...this.#deferred, ...this.#queue] : this.#queue;
          this.#queue = [];
          this.#deferred = [];
          this.#deferredDue = false;
          clearTimeout(this.#deferTimer);
          this.#deferTimer = undefined;
          for (const part of this.#split(batch)) {
            if (this.#error !== undefined) throw this.#error;
            yield this.merge(part);
          }
          continue;
        }
        if (this.#error !== undefined) throw this.#error;
        if (this.#ended) return;
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      }
    } finally {
      clearTimeout(this.#deferTimer);
    }
  }

  *#split(batch: T[]): Generator<T[]> {
    const limits = this.limits;
    // One item goes alone whatever its size: nothing to weigh.
    if (limits === undefined || batch.length <= 1 || (batch.length <= limits.maxItems && limits.maxBytes === Infinity)) {
      if (batch.length > 0) yield batch;
      return;
    }
    let start = 0;
    while (start < batch.length) {
      let end = start + 1;
      let bytes = limits.bytes(batch[start]!);
      while (end < batch.length && end - start < limits.maxItems) {
        const next = limits.bytes(batch[end]!);
        if (bytes + next > limits.maxBytes) break;
        bytes += next;
        end++;
      }
      yield start === 0 && end === batch.length ? batch : batch.slice(start, end);
      start = end;
    }
  }
}
