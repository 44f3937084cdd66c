// Inbound: one message event from the current socket → its envelopes (split when
// batched) → the built-in events (handshake, replies to pending calls and room
// joins, with the rooms' stream positions) or, past the dedupe of history rooms'
// offsets, the app's listeners and event streams.

import type { EventStream } from "../protocol/_event_stream.ts";
import type { Calls } from "./_calls.ts";
import type { Keepalive } from "./_keepalive.ts";
import type { LifecycleEmitter } from "./_lifecycle_emitter.ts";
import type { Positions } from "./_positions.ts";
import type { Rooms } from "./_rooms.ts";
import type { SocketLifecycle } from "./_socket_lifecycle.ts";
import { parseEnvelope } from "./_wire.ts";
import { RequestError } from "./errors.ts";
import type { ClientWebSocket } from "./hub_client_options.ts";
import { splitBatch } from "../protocol/batch.ts";
import { type Envelope, ServerEvent } from "../protocol/envelope.ts";
import { ErrorCode } from "../protocol/error_codes.ts";
import type { StreamFields } from "./stream_position.ts";

/** An app event listener as stored (typed at `HubClient.on()`). */
export type AppListener = (data: unknown, event: Envelope) => void;

/** What inbound hands back to the client. */
export interface InboundHost {
  /** `connection.established` on the current socket. */
  established(ws: ClientWebSocket, data: Record<string, unknown>): void;
  /** `authenticated` named the connection's user. */
  authenticated(userId: string): void;
  /** A re-join of `room` failed but may work: try it again later on this connection. */
  rejoinLater(room: string): void;
  /** The server acked a `subscribe` of `room` on the current connection. */
  joined(room: string): void;
  /** The server refused a re-join of `room`: the client is out of it. */
  dropped(room: string): void;
}

/** The parts inbound reads from and settles. */
export interface InboundParts {
  readonly link: SocketLifecycle;
  readonly calls: Calls;
  readonly rooms: Rooms;
  readonly positions: Positions;
  readonly events: LifecycleEmitter;
  readonly keepalive: Keepalive;
  readonly host: InboundHost;
}

/** Reads server frames and routes each event. */
export class Inbound {
  readonly #p: InboundParts;
  readonly #listeners = new Map<string, Set<AppListener>>();
  readonly #streams = new Set<EventStream<Envelope>>();

  constructor(parts: InboundParts) {
    this.#p = parts;
  }

  /** Call `fn` for every app event of `type`; returns the function that removes it. */
  on(type: string, fn: AppListener): () => void {
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, set = new Set());
    set.add(fn);
    return () => {
      const s = this.#listeners.get(type);
      if (s === undefined) return;
      s.delete(fn);
      if (s.size === 0) this.#listeners.delete(type);
    };
  }

  /** Feed every app event to `stream` until it is removed. */
  addStream(stream: EventStream<Envelope>): void {
    this.#streams.add(stream);
  }

  /** Stop feeding `stream`. */
  deleteStream(stream: EventStream<Envelope>): void {
    this.#streams.delete(stream);
  }

  /** End every event stream (the client closed for good). */
  endStreams(): void {
    for (const stream of [...this.#streams]) stream.end();
  }

  /** A message event from socket `ws`. */
  frame(ws: ClientWebSocket, raw: unknown): void {
    const { link } = this.#p;
    if (ws !== link.ws) return;
    this.#p.keepalive.frame(); // any frame, even a binary one the client ignores, shows life
    if (typeof raw !== "string") return;
    if (!link.batched) {
      this.#read(ws, raw);
      return;
    }
    for (const text of splitBatch(raw)) {
      this.#read(ws, text);
      if (ws !== link.ws) return;
    }
  }

  #read(ws: ClientWebSocket, text: string): void {
    const env = parseEnvelope(text);
    if (env instanceof Error) this.#p.events.report(env, "parse");
    else this.#dispatch(ws, env);
  }

  #dispatch(ws: ClientWebSocket, env: Envelope): void {
    const data = env.data as Record<string, unknown> | null | undefined;
    switch (env.type) {
      case ServerEvent.ESTABLISHED:
        this.#p.host.established(ws, data ?? {});
        return;
      case ServerEvent.CLOSED:
        if (data != null && typeof data.code === "number") {
          this.#p.link.serverClosing({ code: data.code, reason: String(data.reason ?? "") });
        }
        return;
      case ServerEvent.ACK:
      case ServerEvent.ERROR:
      case ServerEvent.SUBSCRIBED:
      case ServerEvent.UNSUBSCRIBED:
      case ServerEvent.AUTHENTICATED:
      case ServerEvent.PONG:
      case ServerEvent.HISTORY:
        this.#reply(env.type, data ?? {});
        return;
      case ServerEvent.PRESENCE:
      case ServerEvent.PRESENCE_STATS:
        // A reply carries its request's id; without one it is an app event of that name
        // (from a server that predates presence).
        if (typeof data?.id === "number") {
          this.#reply(env.type, data ?? {});
          return;
        }
    }
    // A history room's message already delivered (or older than one that was): dropped.
    if (!this.#p.positions.admit(env as Envelope & StreamFields)) return;
    const set = this.#listeners.get(env.type);
    if (set !== undefined) {
      for (const fn of set) {
        try {
          fn(env.data, env);
        } catch (error) {
          this.#p.events.report(error, "listener");
        }
      }
    }
    for (const stream of this.#streams) stream.push(env);
  }

  /** A reply: settle the pending call or room it answers. */
  #reply(type: string, data: Record<string, unknown>): void {
    const { calls, events } = this.#p;
    const id = data.id;
    const entry = calls.get(id);
    if (type === ServerEvent.AUTHENTICATED && typeof data.userId === "string") {
      this.#p.host.authenticated(data.userId);
    }
    if (entry === undefined) {
      // An error with an id answers a request already settled (timed out, aborted): drop it.
      if (type === ServerEvent.ERROR && id === undefined) {
        events.report(new RequestError(data), "server");
      }
      return;
    }
    if (entry.kind === "subscribe" || entry.kind === "auth") calls.delete(id as number);
    if (entry.kind === "subscribe") {
      const { rooms, positions } = this.#p;
      if (type !== ServerEvent.ERROR) {
        if (!rooms.has(entry.room)) return; // left meanwhile
        const joined = positions.joined(entry.room, data, entry.recover);
        rooms.acked(entry.room);
        this.#p.host.joined(entry.room);
        if (entry.rejoin) {
          events.emit("recovery", {
            room: entry.room,
            recovered: joined.recovered,
            epoch: joined.epoch,
            offset: joined.offset,
          });
        }
        return;
      }
      const error = new RequestError(data);
      if (entry.rejoin && error.code === ErrorCode.UNAVAILABLE) {
        // The server cannot say where the room's stream stands now: keep the room
        // and its position, and ask again.
        events.report(error, "resubscribe");
        this.#p.host.rejoinLater(entry.room);
        return;
      }
      if (entry.recover !== undefined && error.code === ErrorCode.INVALID_INPUT) {
        // A server that takes no `recover` (e.g. a rollback to a hub without history):
        // join plainly; the ack's recovery event then says `recovered: false`.
        events.report(error, "resubscribe");
        positions.forget(entry.room);
        this.#p.host.rejoinLater(entry.room);
        return;
      }
      positions.forget(entry.room);
      if (rooms.refused(entry.room, error)) events.report(error, "resubscribe");
      this.#p.host.dropped(entry.room);
      return;
    }
    if (type === ServerEvent.ERROR) {
      const error = new RequestError(data);
      if (entry.kind === "auth") events.report(error, "authenticate");
      else entry.settle(error);
    } else if (entry.kind === "read") {
      if (type === entry.reader?.reply) entry.settle(undefined, entry.reader.parse(data));
    } else {
      entry.settle(undefined, type === ServerEvent.ACK ? data.result : undefined);
    }
  }
}
