import { RECONNECT_MAX_MS, RECONNECT_MIN_MS } from './options.js';

/**
 * The wait before reconnecting a stream: from `min`, doubling up to `max`,
 * each wait jittered down to half so that many clients cut off together do
 * not come back together. `reset()` after a stream got going again.
 */
export class ReconnectBackoff {
  #wait: number;

  constructor(
    readonly min = RECONNECT_MIN_MS,
    readonly max = RECONNECT_MAX_MS,
  ) {
    this.#wait = min;
  }

  /** The next wait (between half and all of the current step), and the step doubles. */
  next(): number {
    const jittered = this.#wait * (0.5 + Math.random() / 2);
    this.#wait = Math.min(this.max, this.#wait * 2);
    return jittered;
  }

  reset(): void {
    this.#wait = this.min;
  }
}
