import type { TaskEvent } from '../store/index.js';

export type TaskEventListener = (event: TaskEvent) => void;

/** Listeners per task id, fed with the store's committed events. */
export class TaskSubscriptions {
  readonly #byId = new Map<string, Set<TaskEventListener>>();

  add(id: string, listener: TaskEventListener): () => void {
    let set = this.#byId.get(id);
    if (set === undefined) {
      set = new Set();
      this.#byId.set(id, set);
    }
    set.add(listener);
    return () => {
      const current = this.#byId.get(id);
      if (current === undefined) return;
      current.delete(listener);
      if (current.size === 0) this.#byId.delete(id);
    };
  }

  deliver(event: TaskEvent): void {
    const set = this.#byId.get(event.id);
    if (set === undefined) return;
    for (const listener of [...set]) listener(event);
  }
}
