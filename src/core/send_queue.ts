/**
 * A bounded FIFO of outgoing frames, one per connection.
 *
 * @module
 */

/** One outgoing WebSocket frame: text or binary. */
export type Frame = string | Uint8Array;

/** Options for {@linkcode SendQueue}. */
export interface SendQueueOptions {
  /**
   * Most frames the queue holds.
   * @default {1024}
   */
  maxMessages?: number;
  /**
   * Most bytes the queue holds: binary frames by `byteLength`, text frames by
   * `length` (UTF-16 code units: exact for ASCII, and an O(1) measure that
   * needs no per-frame bookkeeping; see {@linkcode frameSize}).
   * @default {1048576}
   */
  maxBytes?: number;
}

/** Up to this many frames, a drained queue keeps its array for reuse. */
const REUSE_MAX = 256;

/**
 * The size a {@linkcode SendQueue} counts for a frame: `byteLength` for binary,
 * `length` (UTF-16 code units) for text. O(1), so the queue needs no per-frame
 * size bookkeeping on the fan-out hot path.
 *
 * @param frame A text or binary frame.
 * @returns Its counted size.
 */
export function frameSize(frame: Frame): number {
  return typeof frame === "string" ? frame.length : frame.byteLength;
}

/**
 * A bounded queue of frames, consumed synchronously (`shift`) by a writer that
 * has room in its socket (`drainWhile`, `shift`). It is also an async iterator
 * for consumers that wait on it; the hub's writer does not: it waits on the
 * transport's `writable` signal and then drains synchronously.
 *
 * - Order is preserved: frames come out in the order they were pushed.
 * - Bounded: `push` refuses a frame that would take it over `maxMessages` or
 *   `maxBytes`, and returns `false`; nothing is dropped silently. An empty queue
 *   always takes one frame, however large (a big frame is not a backlog).
 * - One consumer: iterate it with `for await` in one place only. Iteration waits
 *   while the queue is empty and ends when the queue is closed and empty.
 * - `close()` ends iteration after what is queued; `clear()` drops what is queued.
 *
 * @example
 * ```ts
 * import { SendQueue } from "@hubbub/hubbub";
 * const queue = new SendQueue({ maxMessages: 2 });
 * queue.push("a");
 * queue.push("b");
 * queue.push("c"); // false: full
 * queue.close();
 * for await (const frame of queue) console.log(frame); // "a", "b"
 * ```
 */
export class SendQueue implements AsyncIterable<Frame> {
  #frames: Frame[] = [];
  #head = 0;
  #bytes = 0;
  #closed = false;
  #waiter: (() => void) | undefined;
  readonly #maxMessages: number;
  readonly #maxBytes: number;

  /**
   * Create an empty queue.
   *
   * @param options Limits; see {@linkcode SendQueueOptions}.
   * @throws {RangeError} If a limit is not a positive number.
   */
  constructor(options: SendQueueOptions = {}) {
    const { maxMessages = 1024, maxBytes = 1024 * 1024 } = options;
    if (!(maxMessages > 0)) throw new RangeError("Cannot create queue: maxMessages must be > 0");
    if (!(maxBytes > 0)) throw new RangeError("Cannot create queue: maxBytes must be > 0");
    this.#maxMessages = maxMessages;
    this.#maxBytes = maxBytes;
  }

  /** Frames waiting. */
  get length(): number {
    return this.#frames.length - this.#head;
  }

  /** Bytes waiting, as counted by {@linkcode frameSize}. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Append a frame.
   *
   * @param frame The frame.
   * @returns `true` if queued; `false` if the queue is closed or the frame would overflow it
   *   (an empty queue takes any one frame).
   */
  push(frame: Frame): boolean {
    const frames = this.#frames;
    const queued = frames.length - this.#head;
    const bytes = this.#bytes + (typeof frame === "string" ? frame.length : frame.byteLength);
    // An empty queue takes one frame of any size: one large frame for a client that keeps
    // up is not a slow client. Only a backlog is bounded by maxBytes.
    if (queued >= this.#maxMessages || (bytes > this.#maxBytes && queued > 0) || this.#closed) {
      return false;
    }
    frames.push(frame);
    this.#bytes = bytes;
    if (this.#waiter !== undefined) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter();
    }
    return true;
  }

  /**
   * Look at the oldest frame without taking it.
   *
   * @returns The frame, or `undefined` when empty.
   */
  peek(): Frame | undefined {
    return this.#head < this.#frames.length ? this.#frames[this.#head] : undefined;
  }

  /**
   * Take the oldest frame.
   *
   * @returns The frame, or `undefined` when empty.
   */
  shift(): Frame | undefined {
    if (this.#head >= this.#frames.length) return undefined;
    const frame = this.#frames[this.#head];
    this.#bytes -= frameSize(frame);
    this.#frames[this.#head] = "";
    this.#head++;
    if (this.#head === this.#frames.length) {
      this.#frames = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#head = 0;
    }
    return frame;
  }

  /**
   * Hand frames to `send`, oldest first, until it returns `false` (that frame
   * counts as taken) or the queue is empty. One pass, bookkeeping once: the
   * writer's hot path.
   *
   * @param send Takes one frame; returns whether to go on.
   * @param thisArg The `this` for `send` (so a method can be passed without a closure).
   */
  drainWhile<T>(send: (this: T, frame: Frame) => boolean, thisArg?: T): void {
    const frames = this.#frames;
    const end = frames.length;
    let i = this.#head;
    while (i < end) {
      if (!send.call(thisArg as T, frames[i++])) break;
    }
    if (this.#frames !== frames) return; // cleared by `send` (the connection closed)
    if (i >= frames.length) {
      // Empty: keep the array (and its capacity) for the next tick's frames, unless a burst
      // grew it large; growing it again from zero on every tick costs more than the sends.
      if (end <= REUSE_MAX) frames.length = 0;
      else this.#frames = [];
      this.#head = 0;
      this.#bytes = 0;
      return;
    }
    // Stopped early (the socket is full): keep the rest and count it again.
    const rest = frames.slice(i);
    let bytes = 0;
    for (let j = 0; j < rest.length; j++) bytes += frameSize(rest[j]);
    this.#frames = rest;
    this.#head = 0;
    this.#bytes = bytes;
  }

  /** Drop every queued frame. */
  clear(): void {
    this.#frames = [];
    this.#head = 0;
    this.#bytes = 0;
  }
  /** Refuse further pushes; iteration ends once the queue is empty. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  /**
   * Iterate frames in order, waiting while empty, until closed and empty.
   * Breaking out of the loop leaves the remaining frames queued.
   *
   * @returns An async iterator over the frames.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Frame> {
    try {
      while (true) {
        const frame = this.shift();
        if (frame !== undefined) {
          yield frame;
          continue;
        }
        if (this.#closed) return;
        await new Promise<void>((resolve) => {
          this.#waiter = resolve;
        });
      }
    } finally {
      this.#waiter = undefined;
    }
  }
}
