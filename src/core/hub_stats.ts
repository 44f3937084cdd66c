/**
 * Types for `hub.stats()` and `hub.observe()` / `hub.events()`.
 *
 * @module
 */

import type { BackplaneStats } from "./backplane.ts";

/** Messages and bytes, e.g. for one message type. */
export interface Traffic {
  /** Frames (inbound) or deliveries (outbound: one per recipient). */
  readonly messages: number;
  /** Bytes, counted the same way. */
  readonly bytes: number;
}

/**
 * A snapshot from `hub.stats()`. Counters are monotonic since the hub was
 * created; gauges (`connections`, `users`, `rooms`, `queuedBytes`) are current.
 */
export interface HubStats {
  /** Open connections now. */
  readonly connections: number;
  /** Distinct users with an open connection now. */
  readonly users: number;
  /** Non-empty rooms now. */
  readonly rooms: number;
  /** The largest rooms now, biggest first (`topRooms`, default 10). */
  readonly topRooms: ReadonlyArray<{ readonly room: string; readonly members: number }>;
  /** Connections accepted since start. */
  readonly connectionsOpened: number;
  /** Connections closed since start. */
  readonly connectionsClosed: number;
  /** Inbound frames and bytes since start. */
  readonly in: Traffic;
  /** Outbound deliveries and bytes since start (one per recipient; replies included). */
  readonly out: Traffic;
  /** Inbound by message `type` (`"binary"`, `"invalid"` for frames without one; at most 256 types, then `"other"`). */
  readonly inByType: Readonly<Record<string, Traffic>>;
  /** Outbound by event `type` (`"raw"` for `broadcastRaw`; at most 256 types, then `"other"`). */
  readonly outByType: Readonly<Record<string, Traffic>>;
  /** `emit`/`broadcastRaw`/`sendTo` calls since start. */
  readonly emits: number;
  /** Bytes waiting in send queues now (beyond socket buffers): total, max and p99 per connection. */
  readonly queuedBytes: { readonly total: number; readonly max: number; readonly p99: number };
  /**
   * Closes by reason since start: `slow_client`, `rate_limited`, `message_too_big`,
   * `idle_timeout`, `auth_timeout`, `connect_refused`, `shutdown`, `server` (app
   * `close()`), `client` (closed by the client or the network).
   */
  readonly closes: Readonly<Record<string, number>>;
  /**
   * Upgrades refused by reason since start: `not_websocket` (426), `origin` (403),
   * `identify` (401), `max_connections`/`pending_upgrades`/`shutting_down` (503),
   * `user_connections` (429), `error` (500).
   */
  readonly refused: Readonly<Record<string, number>>;
  /** Inbound frames dropped by the rate limit since start. */
  readonly rateLimited: number;
  /** Events dropped because an observer was too slow (see `hub.events()`). */
  readonly observerDrops: number;
  /** Backplane counters and health. */
  readonly backplane: BackplaneStats;
  /**
   * History across replicas since start (zeros without history): `repairs`, reads of a
   * room's stream to fill a gap or after the bus came back; `lost`, times a room's local
   * members were closed with 4004 because its stream could not be kept whole here.
   */
  readonly history: { readonly repairs: number; readonly lost: number };
}

/** One thing that happened in the hub, as seen by `hub.observe()` / `hub.events()`. */
export type HubEvent =
  | {
    /** An inbound frame was accepted. */
    readonly kind: "frame";
    /** Client id. */
    readonly clientId: string;
    /** Message type (`"binary"` for binary frames, `"invalid"` if unparsable). */
    readonly type: string;
    /** Frame size in bytes (UTF-8 for text). */
    readonly bytes: number;
    /** When (Unix ms). */
    readonly at: number;
  }
  | {
    /**
     * An upgrade was refused before any socket opened (origin, identify, limits):
     * the answer to "why does my page get 1006".
     */
    readonly kind: "refused";
    /** The cause, as counted in `HubStats.refused` (`"origin"`, `"identify"`, ...). */
    readonly cause: string;
    /** The HTTP status answered (403, 401, 429, 503, ...). */
    readonly status: number;
    /** The request's `Origin` header, or `null`. */
    readonly origin: string | null;
    /** The request URL. */
    readonly url: string;
    /** When (Unix ms). */
    readonly at: number;
  }
  | {
    /** An emit fanned out. */
    readonly kind: "emit";
    /** Event type (`"raw"` for broadcastRaw). */
    readonly type: string;
    /** Local recipients that accepted it. */
    readonly recipients: number;
    /** Frame size in bytes. */
    readonly bytes: number;
    /** Time spent in the fan-out loop, ms. */
    readonly fanoutMs: number;
    /** When (Unix ms). */
    readonly at: number;
  }
  | {
    /** A connection opened. */
    readonly kind: "connect";
    /** Client id. */
    readonly clientId: string;
    /** User id, if any. */
    readonly userId: string | undefined;
    /** When (Unix ms). */
    readonly at: number;
  }
  | {
    /** A connection closed. */
    readonly kind: "disconnect";
    /** Client id. */
    readonly clientId: string;
    /** User id, if any. */
    readonly userId: string | undefined;
    /** Close code. */
    readonly code: number;
    /** Close reason. */
    readonly reason: string;
    /** Close category, as in `HubStats.closes`. */
    readonly cause: string;
    /** When (Unix ms). */
    readonly at: number;
  };

/** Options for `hub.events()`. */
export interface HubEventsOptions {
  /** Stop iterating when aborted. */
  signal?: AbortSignal;
  /**
   * Events buffered for a slow consumer; beyond it the oldest are dropped (and counted).
   * @default {1024}
   */
  bufferSize?: number;
}

/** The accepted inbound frame an `aroundFrame` wrapper is wrapping. */
export interface FrameInfo {
  /** Client id. */
  readonly clientId: string;
  /** User id, if any (before the frame is handled: `authenticate` may set it). */
  readonly userId: string | undefined;
  /** Message type (`"binary"` for binary frames, `"invalid"` if unparsable). */
  readonly type: string;
  /** Frame size (UTF-16 units for text). */
  readonly bytes: number;
  /** When it was accepted (Unix ms, the hub's clock). */
  readonly at: number;
}

/**
 * Wraps the handling of one inbound frame (see `hub.aroundFrame()`): call
 * `handle()` once, synchronously; return nothing, or a promise the hub waits
 * for before the connection's next frame.
 */
export type FrameWrapper = (
  frame: FrameInfo,
  handle: () => Promise<void> | undefined,
) => Promise<unknown> | void;
