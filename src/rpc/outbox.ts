/**
 * Messages waiting to be written to one stream. Everything queued during one
 * turn of the event loop goes out as one merged message (the writer waits
 * for `setImmediate`, which runs as soon as the turn's I/O callbacks are
 * done): under load the stream carries batches, at low load single items,
 * with no timer delay. `merge` also turns a single queued item into a
 * complete message.
 */
export class Outbox<T, Out = T> {
  #queue: T[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #error: unknown;

  constructor(private readonly merge: (messages: T[]) => Out) {}

  push(message: T): void {
    if (this.#ended) return;
    this.#queue.push(message);
    this.#wake?.();
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
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Out> {
    for (;;) {
      if (this.#queue.length > 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.#error !== undefined) throw this.#error;
        const batch = this.#queue;
        this.#queue = [];
        if (batch.length > 0) yield this.merge(batch);
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}
