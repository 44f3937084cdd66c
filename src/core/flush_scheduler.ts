// Once-per-turn flushing for queued connections (corked transports such as Bun's, and batched
// framing): a connection with frames waiting marks itself dirty; on the next turn of the event
// loop every dirty connection flushes once, so frames from everything handled in this turn
// share one write per socket.
import type { Connection } from "./connection.ts";
import { kFlushTick } from "./_internal.ts";

const timers = globalThis as {
  setImmediate?: (fn: () => void) => unknown;
  clearImmediate?: (handle: unknown) => void;
};

/** Run `fn` on the next turn of the event loop (setImmediate where there is one). */
function nextTurn(fn: () => void): () => void {
  if (timers.setImmediate !== undefined && timers.clearImmediate !== undefined) {
    const handle = timers.setImmediate(fn);
    return () => timers.clearImmediate!(handle);
  }
  const handle = setTimeout(fn, 0);
  return () => clearTimeout(handle);
}

/** The dirty list of one hub. */
export class FlushScheduler {
  #dirty: Connection[] = [];
  #spare: Connection[] = [];
  #cancel: (() => void) | undefined;

  /** Flush `conn` on the next turn (it calls this at most once per turn). */
  markDirty(conn: Connection): void {
    this.#dirty.push(conn);
    // Next turn, not a microtask: a microtask flush measured 40× slower (one write per event).
    if (this.#cancel === undefined) this.#cancel = nextTurn(this.#flushAll);
  }

  /** Drop what is scheduled (the hub is closing). */
  cancel(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    this.#dirty = [];
  }

  readonly #flushAll = (): void => {
    this.#cancel = undefined;
    // Two lists, swapped: a flush may mark connections dirty for the next one.
    const dirty = this.#dirty;
    this.#dirty = this.#spare;
    try {
      for (let i = 0; i < dirty.length; i++) dirty[i][kFlushTick]();
    } finally {
      dirty.length = 0;
      this.#spare = dirty;
    }
  };
}
