// Internal symbols and interfaces shared by the core's files. Never exported from mod.ts.
import type { RateLimiter } from "./_rate_limit.ts";
import type { HistoryEntry } from "./history_store.ts";

/** Symbol-keyed methods of Connection that only the hub calls. */
export const kDeliver: unique symbol = Symbol("hubbub.deliver");
export const kDrainClose: unique symbol = Symbol("hubbub.drainClose");
export const kCloseWith: unique symbol = Symbol("hubbub.closeWith");
export const kAbandon: unique symbol = Symbol("hubbub.abandon");
export const kCompact: unique symbol = Symbol("hubbub.compact");
export const kFlush: unique symbol = Symbol("hubbub.flush");
export const kFlushTick: unique symbol = Symbol("hubbub.flushTick");
export const kTeardown: unique symbol = Symbol("hubbub.teardown");
export const kTouch: unique symbol = Symbol("hubbub.touch");
export const kLastSeen: unique symbol = Symbol("hubbub.lastSeen");
export const kPing: unique symbol = Symbol("hubbub.ping");
export const kSetUser: unique symbol = Symbol("hubbub.setUser");
export const kRoomHas: unique symbol = Symbol("hubbub.roomHas");
export const kRoomCount: unique symbol = Symbol("hubbub.roomCount");
export const kRoomAdd: unique symbol = Symbol("hubbub.roomAdd");
export const kRoomDelete: unique symbol = Symbol("hubbub.roomDelete");
export const kRoomTake: unique symbol = Symbol("hubbub.roomTake");
export const kState: unique symbol = Symbol("hubbub.state");
export const kSettled: unique symbol = Symbol("hubbub.settled");

/** Inbound frames held for one connection while its handler runs, with their UTF-8 sizes. */
export interface Backlog {
  frames: (string | Uint8Array)[];
  sizes: number[];
  bytes: number;
}

/**
 * The hub's bookkeeping for one connection, kept on the connection (`conn[kState]`), created
 * on first use: its rate limiter, the frames held behind a running handler, its auth deadline.
 */
export interface ConnState {
  limiter: RateLimiter | undefined;
  backlog: Backlog | undefined;
  authTimer: unknown;
  /** History rooms being recovered: their live messages, held until the replay is out. */
  recovering?: Map<string, HistoryEntry[]>;
  /**
   * History rooms whose subscribe position is past what this replica has handed out: offsets
   * up to it are skipped for this connection (it got them in its replay).
   */
  floors?: Map<string, number>;
}

/** The hub's bookkeeping for a connection, created on first use. */
export function stateOf(conn: { [kState]: ConnState | undefined }): ConnState {
  return conn[kState] ??= {
    limiter: undefined,
    backlog: undefined,
    authTimer: undefined,
    recovering: undefined,
  };
}

/**
 * Let go of a connection's bookkeeping once nothing is left in it (frames released, auth
 * deadline stopped, recovery done): idle connections keep no object for it.
 */
export function settleState(conn: { [kState]: ConnState | undefined }): void {
  const s = conn[kState];
  if (
    s !== undefined && s.limiter === undefined && s.backlog === undefined &&
    s.authTimer === undefined && (s.recovering === undefined || s.recovering.size === 0) &&
    (s.floors === undefined || s.floors.size === 0)
  ) conn[kState] = undefined;
}
