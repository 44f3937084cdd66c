// The client's lifecycle emitter: `open`, `close`, `reconnecting` and `error`
// listeners, and how errors that no promise reports reach them.

import type { ClientErrorSource, HubClientLifecycle } from "./lifecycle_events.ts";

/** Lifecycle listeners; a throwing listener is reported as an `error` (source `listener`). */
export class LifecycleEmitter {
  readonly #listeners = new Map<string, Set<(event: never) => void>>();

  /** Add a listener; returns the function that removes it. */
  on<K extends keyof HubClientLifecycle>(
    name: K,
    listener: (event: HubClientLifecycle[K]) => void,
  ): () => void {
    let set = this.#listeners.get(name);
    if (set === undefined) this.#listeners.set(name, set = new Set());
    set.add(listener as (event: never) => void);
    return () => {
      this.#listeners.get(name)?.delete(listener as (event: never) => void);
    };
  }

  /** Call every listener of `name`, in the order they were added. */
  emit<K extends keyof HubClientLifecycle>(name: K, event: HubClientLifecycle[K]): void {
    const set = this.#listeners.get(name);
    if (set === undefined) return;
    for (const fn of set) {
      try {
        (fn as (e: HubClientLifecycle[K]) => void)(event);
      } catch (error) {
        if (name !== "error") this.report(error, "listener");
      }
    }
  }

  /** An error no promise reports: an `error` event, or the console for a listener's throw nobody hears. */
  report(error: unknown, source: ClientErrorSource): void {
    const set = this.#listeners.get("error");
    if (set === undefined || set.size === 0) {
      if (source === "listener") console.error("hubbub client: a listener threw:", error);
      return;
    }
    this.emit("error", { error, source });
  }
}
