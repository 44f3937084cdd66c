// The pending-request table (requests, history reads, unsubscribes, subscribes and
// authenticate awaiting their reply, by id) and the offline queue (frames waiting for the
// next connection).

import { armDeadline } from "./_deadline.ts";
import { deferred } from "./_deferred.ts";
import { DisconnectedError, QueueFullError } from "./errors.ts";
import type { ClientTimers, ClientWebSocket } from "./hub_client_options.ts";
import type { CloseInfo } from "./lifecycle_events.ts";
import type { StreamPosition } from "./stream_position.ts";

/** How a read's reply is recognised and what its promise resolves with. */
export interface Reader {
  /** The reply's type (`history`, `presence`, ...). */
  readonly reply: string;
  /** The value the call resolves with, from the reply's data. */
  parse(data: Record<string, unknown>): unknown;
}

/** A call whose promise waits for its reply. */
export interface Call {
  /** `read`: a request for state (`history()`, `presence()`, ...), safe to send again. */
  readonly kind: "request" | "read" | "unsubscribe" | "auth";
  readonly frame: string;
  /** For a `read`: its reply. */
  readonly reader?: Reader;
  /** Written to a socket (if that socket drops, the outcome is unknown). */
  sent: boolean;
  settle(error: unknown, value?: unknown): void;
}

/** A `subscribe` in flight on the current connection: its ack settles the room's waiters. */
export interface RoomCall {
  readonly kind: "subscribe";
  readonly room: string;
  /** A re-join after a reconnect of a room joined before (its ack is a `recovery` event). */
  readonly rejoin: boolean;
  /** The position it asked to recover from, if any. */
  readonly recover: StreamPosition | undefined;
}

/** What an id in the pending table stands for. */
export type PendingEntry = Call | RoomCall;

interface Queued {
  frame: string;
  call?: Call;
}

/** The pending table and the offline queue of one client. */
export class Calls {
  readonly #timers: ClientTimers;
  readonly #maxQueued: number;
  #nextId = 1;
  readonly #pending = new Map<number, PendingEntry>();
  #queue: Queued[] = [];

  constructor(timers: ClientTimers, maxQueued: number) {
    this.#timers = timers;
    this.#maxQueued = maxQueued;
  }

  /** A fresh request id. */
  nextId(): number {
    return this.#nextId++;
  }

  /** The entry a reply's `id` answers, if it is still pending. */
  get(id: unknown): PendingEntry | undefined {
    return typeof id === "number" ? this.#pending.get(id) : undefined;
  }

  /** Forget an entry (a subscribe or authenticate that got its reply). */
  delete(id: number): void {
    this.#pending.delete(id);
  }

  /** Record a `subscribe` sent on the current connection. */
  expectRoom(
    id: number,
    room: string,
    rejoin: boolean,
    recover: StreamPosition | undefined,
  ): void {
    this.#pending.set(id, { kind: "subscribe", room, rejoin, recover });
  }

  /** Record an `authenticate` sent on the current connection (its refusal is reported, not thrown). */
  expectAuth(id: number, frame: string): void {
    this.#pending.set(id, { kind: "auth", frame, sent: true, settle: () => {} });
  }

  /**
   * Queue a frame for the next connection.
   * @throws {QueueFullError} When `maxQueuedMessages` frames already wait.
   */
  enqueue(frame: string, call?: Call): void {
    if (this.#queue.length >= this.#maxQueued) throw new QueueFullError(this.#maxQueued);
    this.#queue.push({ frame, call });
  }

  /**
   * A request, read (`reader` names the reply that settles it) or unsubscribe: written
   * to `ws` now, or queued while offline; it settles with its reply, a
   * {@linkcode TimeoutError} after `ms`, the signal's reason, or
   * {@linkcode DisconnectedError} if its connection drops after sending (a read is
   * queued again instead: reading twice is harmless).
   */
  call(
    kind: "request" | "read" | "unsubscribe",
    id: number,
    frame: string,
    what: string,
    ms: number,
    signal: AbortSignal | undefined,
    ws: ClientWebSocket | undefined,
    reader?: Reader,
  ): Promise<unknown> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const { promise, resolve, reject } = deferred<unknown>();
    const call: Call = {
      kind,
      frame,
      reader,
      sent: false,
      settle: (error, value) => {
        if (this.#pending.get(id) !== call) return;
        this.#pending.delete(id);
        if (!call.sent) {
          const i = this.#queue.findIndex((q) => q.call === call);
          if (i >= 0) this.#queue.splice(i, 1);
        }
        disarm();
        if (error === undefined) resolve(value);
        else reject(error);
      },
    };
    this.#pending.set(id, call);
    const disarm = armDeadline(this.#timers, ms, signal, what, (error) => call.settle(error));
    if (ws !== undefined) {
      call.sent = true;
      ws.send(frame);
    } else {
      try {
        this.enqueue(frame, call);
      } catch (error) {
        call.settle(error);
      }
    }
    return promise;
  }

  /** Write what was queued offline to a fresh connection, in order. */
  flush(ws: ClientWebSocket): void {
    const queue = this.#queue;
    this.#queue = [];
    for (const q of queue) {
      ws.send(q.frame);
      if (q.call !== undefined) q.call.sent = true;
    }
  }

  /**
   * The connection dropped: its subscribes and authenticate are forgotten (re-sent
   * on the next one), unsubscribes resolve (a new connection starts outside the
   * room), history reads already sent are queued again (after the re-joins, on the
   * next connection), and requests already sent reject with {@linkcode DisconnectedError}.
   */
  connectionLost(info: CloseInfo): void {
    for (const [id, entry] of this.#pending) {
      if (entry.kind === "subscribe" || entry.kind === "auth") this.#pending.delete(id);
      else if (entry.kind === "unsubscribe") entry.settle(undefined);
      else if (entry.sent && entry.kind === "read") {
        entry.sent = false;
        try {
          this.enqueue(entry.frame, entry);
        } catch (error) {
          entry.settle(error);
        }
      } else if (entry.sent) entry.settle(new DisconnectedError(info.code, info.reason));
    }
  }

  /** Closed for good: reject everything pending or queued. */
  rejectAll(error: () => unknown): void {
    for (const entry of [...this.#pending.values()]) {
      if (entry.kind !== "subscribe") entry.settle(error());
    }
    this.#pending.clear();
    for (const q of this.#queue) q.call?.settle(error());
    this.#queue = [];
  }
}
