// Where the client stands in each history room's stream (the epoch and the last offset it
// delivered), what it asks to recover from on a re-join, and the dedupe that makes a
// room's messages reach the app in offset order and never twice.

import type { StreamFields, StreamPosition } from "./stream_position.ts";

interface Position {
  /** `undefined` until a `subscribed` on some connection named it (a server-side join). */
  epoch: string | undefined;
  /** The last offset delivered to the app (or the stream's head at a fresh subscribe). */
  offset: number;
}

/** What a `subscribed` reply meant for the room's position. */
export interface Joined {
  /** The server replays what the client missed next (it asked to recover and the server could). */
  readonly recovered: boolean;
  /** The room's epoch; `undefined` when the room keeps no history. */
  readonly epoch: string | undefined;
  /** The stream's latest offset at the subscribe; `undefined` when the room keeps no history. */
  readonly offset: number | undefined;
}

function isOffset(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** One client's stream positions, by room. */
export class Positions {
  readonly #byRoom = new Map<string, Position>();

  /** The room's position, once a `subscribed` named its epoch. */
  get(room: string): StreamPosition | undefined {
    const p = this.#byRoom.get(room);
    return p === undefined || p.epoch === undefined
      ? undefined
      : { epoch: p.epoch, offset: p.offset };
  }

  /**
   * A `subscribed` reply for `room`. `asked` is the position the subscribe asked to
   * recover from (`undefined` for a plain subscribe).
   *
   * - No `epoch` in the reply: the room keeps no history; its position is forgotten.
   * - Recovered (same epoch as asked): the position stays where it was; the replay follows
   *   and moves it on.
   * - Otherwise the position is the stream's head (`offset`): every later message has a
   *   greater offset. A new epoch resets it, so a restarted stream's low offsets pass.
   */
  joined(room: string, data: Record<string, unknown>, asked: StreamPosition | undefined): Joined {
    const epoch = typeof data.epoch === "string" ? data.epoch : undefined;
    const offset = isOffset(data.offset) ? data.offset : undefined;
    if (epoch === undefined || offset === undefined) {
      this.#byRoom.delete(room);
      return { recovered: false, epoch: undefined, offset: undefined };
    }
    const recovered = data.recovered === true && asked !== undefined && asked.epoch === epoch;
    const p = this.#byRoom.get(room);
    if (recovered) {
      if (p === undefined || p.epoch !== epoch) {
        this.#byRoom.set(room, { epoch, offset: asked.offset });
      }
    } else if (p !== undefined && p.epoch === epoch && asked === undefined) {
      p.offset = Math.max(p.offset, offset); // a second subscribe on the same connection
    } else {
      this.#byRoom.set(room, { epoch, offset });
    }
    return { recovered, epoch, offset };
  }

  /**
   * Whether an app event goes to the app: `false` for a room message whose offset is not
   * past the last one delivered (a duplicate, or one that arrived out of order). An event
   * without `room` and `offset` always passes. Skipped offsets are fine (messages emitted
   * with `except` this client never reach it).
   */
  admit(env: StreamFields): boolean {
    const { room, offset } = env;
    if (typeof room !== "string" || !isOffset(offset)) return true;
    const p = this.#byRoom.get(room);
    if (p === undefined) {
      this.#byRoom.set(room, { epoch: undefined, offset });
      return true;
    }
    if (offset <= p.offset) return false;
    p.offset = offset;
    return true;
  }

  /** The client left (or was refused) `room`: a later join starts afresh. */
  forget(room: string): void {
    this.#byRoom.delete(room);
  }

  /**
   * The connection dropped. Positions without an epoch (rooms the server joined this
   * connection to, never acked by a `subscribed`) cannot be recovered nor trusted on the
   * next connection, whose stream may have restarted: they are forgotten.
   */
  connectionLost(): void {
    for (const [room, p] of this.#byRoom) if (p.epoch === undefined) this.#byRoom.delete(room);
  }
}
