// Internal symbols and interfaces shared by the core's files. Never exported from mod.ts.
import type { Connection } from "./connection.ts";

/** Symbol-keyed methods of Connection that only the hub calls. */
export const kDeliver: unique symbol = Symbol("hubbub.deliver");
export const kFlush: unique symbol = Symbol("hubbub.flush");
export const kFlushTick: unique symbol = Symbol("hubbub.flushTick");
export const kTeardown: unique symbol = Symbol("hubbub.teardown");
export const kTouch: unique symbol = Symbol("hubbub.touch");
export const kLastSeen: unique symbol = Symbol("hubbub.lastSeen");
export const kPing: unique symbol = Symbol("hubbub.ping");
export const kSetUser: unique symbol = Symbol("hubbub.setUser");
export const kRooms: unique symbol = Symbol("hubbub.rooms");

/** What a connection needs from its hub. */
export interface ConnectionOwner {
  join(conn: Connection, room: string): void;
  leave(conn: Connection, room: string): void;
  markDirty(conn: Connection): void;
  closed(conn: Connection, code: number, reason: string): void;
  slow(conn: Connection): void;
  now(): number;
}
