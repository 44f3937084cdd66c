// This replica's connections, indexed by client id, user id and room. Empty sets are pruned.
// Membership changes call onJoin / onLeave, and `interest` (the backplane bridge subscribes to
// a channel when its first local member arrives and drops it when the last one leaves).
import type { Connection } from "./connection.ts";
import type { Hooks } from "./hooks.ts";
import type { LeaveCause } from "./hub_options.ts";
import { kRoomAdd, kRoomDelete, kRoomTake, kSetUser } from "./_internal.ts";

/** What a channel is about: a room, a user, or one client. */
export type ChannelKind = "room" | "user" | "client";

/** What the registry tells the rest of the hub. */
export interface RegistryEvents {
  /** A connection joined a room (the app's `onJoin`). */
  onJoin?: (connection: Connection, room: string) => void;
  /** A connection left a room (the app's `onLeave`). */
  onLeave?: (connection: Connection, room: string, cause: LeaveCause) => void;
  /** The first local member of `name` arrived (`on`), or the last one left. */
  interest(kind: ChannelKind, name: string, on: boolean): void;
  /** The hub's parts (presence): a membership changed; called before `onJoin` / `onLeave`. */
  membership?(connection: Connection, room: string, joined: boolean): void;
  /** The hub's parts (presence): a user's local connection count changed. */
  userChanged?(userId: string): void;
  /** The hub's parts (presence): a connection's user id changed (authenticate). */
  identified?(connection: Connection): void;
}

/** The indexes of one hub. */
export class Registry {
  /** Open connections by client id. */
  readonly clients: Map<string, Connection> = new Map();
  /** Connections by user id. */
  readonly users: Map<string, Set<Connection>> = new Map();
  /** Members by room. */
  readonly rooms: Map<string, Set<Connection>> = new Map();
  readonly #hooks: Hooks;
  readonly #events: RegistryEvents;

  constructor(hooks: Hooks, events: RegistryEvents) {
    this.#hooks = hooks;
    this.#events = events;
  }

  /** Index a connection that just opened. */
  add(conn: Connection): void {
    this.clients.set(conn.id, conn);
    this.#events.interest("client", conn.id, true);
    if (conn.userId !== undefined) this.#indexUser(conn, conn.userId);
  }

  /**
   * Drop a closed connection from every index; it leaves its rooms with cause `"disconnect"`.
   * @returns `false` if it was not (or no longer) indexed.
   */
  remove(conn: Connection): boolean {
    if (this.clients.get(conn.id) !== conn) return false;
    this.clients.delete(conn.id);
    if (conn.userId !== undefined) this.#unindexUser(conn, conn.userId);
    this.#events.interest("client", conn.id, false);
    for (const room of conn[kRoomTake]()) {
      this.#unindexRoom(conn, room);
      this.#left(conn, room, "disconnect");
    }
    return true;
  }

  /** Put `conn` in `room` (idempotent; onJoin only when membership changed). */
  join(conn: Connection, room: string): void {
    if (!conn[kRoomAdd](room)) return;
    let set = this.rooms.get(room);
    if (set === undefined) {
      this.rooms.set(room, set = new Set());
      this.#events.interest("room", room, true);
    }
    set.add(conn);
    this.#events.membership?.(conn, room, true);
    const onJoin = this.#events.onJoin;
    if (onJoin !== undefined) this.#hooks.notify(() => onJoin(conn, room), "join");
  }

  /** Take `conn` out of `room` (idempotent). */
  leave(conn: Connection, room: string, cause: LeaveCause = "server"): void {
    if (!conn[kRoomDelete](room)) return;
    this.#unindexRoom(conn, room);
    this.#left(conn, room, cause);
  }

  /** Re-index `conn` under a new user id (authenticate). */
  setUser(conn: Connection, userId: string): void {
    if (conn.userId !== undefined) this.#unindexUser(conn, conn.userId);
    conn[kSetUser](userId);
    this.#indexUser(conn, userId);
    this.#events.identified?.(conn);
  }

  #left(conn: Connection, room: string, cause: LeaveCause): void {
    this.#events.membership?.(conn, room, false);
    const onLeave = this.#events.onLeave;
    if (onLeave !== undefined) this.#hooks.notify(() => onLeave(conn, room, cause), "leave");
  }

  #unindexRoom(conn: Connection, room: string): void {
    const set = this.rooms.get(room);
    if (set === undefined) return;
    set.delete(conn);
    if (set.size === 0) {
      this.rooms.delete(room);
      this.#events.interest("room", room, false);
    }
  }

  #indexUser(conn: Connection, userId: string): void {
    let set = this.users.get(userId);
    if (set === undefined) {
      this.users.set(userId, set = new Set());
      this.#events.interest("user", userId, true);
    }
    set.add(conn);
    this.#events.userChanged?.(userId);
  }

  #unindexUser(conn: Connection, userId: string): void {
    const set = this.users.get(userId);
    if (set === undefined) return;
    set.delete(conn);
    if (set.size === 0) {
      this.users.delete(userId);
      this.#events.interest("user", userId, false);
    }
    this.#events.userChanged?.(userId);
  }
}
