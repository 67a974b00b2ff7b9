/**
 * A worker's credit: the free slots it granted, and the one rule about them.
 * Credit is free, reserved (taken for a claim or a direct insert not yet
 * settled) or spent on leases the session holds, and
 *
 *     free + reserved + held ≤ slots
 *
 * holds at every step. Credit is taken only as a `Reservation`, which is
 * settled exactly once: the slots it used became leases, the rest is free
 * again. The worker is the authority on its free slots; returning credit
 * (`grant`) never lifts the sum past the slots it declared.
 */
export class Credit {
  #free: number;
  #reserved = 0;

  /** `held`: leases the session starts with (attempts it resumed). */
  constructor(
    readonly slots: number,
    held: number,
  ) {
    this.#free = Math.max(0, slots - held);
  }

  /** Slots free to take now. */
  get free(): number {
    return this.#free;
  }

  /** Slots taken and not yet settled. */
  get reserved(): number {
    return this.#reserved;
  }

  /** Takes up to `n` free slots; undefined when none is free. */
  take(n: number): Reservation | undefined {
    const count = Math.min(n, this.#free);
    if (count <= 0) return undefined;
    this.#free -= count;
    this.#reserved += count;
    return new Reservation(count, (unused) => {
      this.#reserved -= count;
      this.#free += unused;
    });
  }

  /** The worker returned `n` slots; `held` is the number of leases it holds now. */
  grant(n: number, held: number): void {
    if (n <= 0) return;
    this.#free = Math.max(0, Math.min(this.#free + n, this.slots - held - this.#reserved));
  }
}

/** Slots taken from a Credit: settled exactly once with how many became leases. */
export class Reservation {
  #settled = false;

  constructor(
    readonly count: number,
    private readonly onSettle: (unused: number) => void,
  ) {}

  get settled(): boolean {
    return this.#settled;
  }

  /**
   * `used` slots became leases the session now holds (add them first); the
   * rest is free again. A second settle is a bug in the caller: credit would
   * be counted twice.
   */
  settle(used: number): void {
    if (this.#settled) throw new Error('a credit reservation was settled twice');
    if (!Number.isInteger(used) || used < 0 || used > this.count) {
      throw new Error(`a reservation of ${this.count} slots cannot have used ${used}`);
    }
    this.#settled = true;
    this.onSettle(this.count - used);
  }
}
