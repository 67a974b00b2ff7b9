/**
 * Messages waiting to be written to one stream. Everything queued while the
 * writer was busy goes out as one merged message: under load the stream
 * carries batches, at low load single items, with no added delay.
 */
export class Outbox<T> {
  #queue: T[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #error: unknown;

  constructor(private readonly merge: (messages: T[]) => T) {}

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

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        yield batch.length === 1 ? batch[0]! : this.merge(batch);
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}
