/**
 * Presence as the client sees it: the `presence` and `presence.stats` replies,
 * the `presence.join` and `presence.leave` events, and the live member list that
 * {@linkcode HubClient.members} keeps.
 *
 * The server decides which rooms track presence and whether their members get
 * join and leave events. Both requests are for members of the room only
 * (`NOT_SUBSCRIBED` otherwise) and cover every replica, not just the one the
 * client is connected to. See the protocol guide's "Presence".
 *
 * @module
 */

import type { ServerEvent } from "../protocol/envelope.ts";

/** One connection in a room's presence, as the server lists it. */
export interface PresenceClient {
  /** The connection's id (new on every connection: a reconnected tab has a new one). */
  clientId: string;
  /** Its user, if the server identified one. */
  userId?: string;
  /** What the app attached to the entry (e.g. a display name), if anything. */
  info?: unknown;
}

/** What {@linkcode HubClient.presenceStats} resolves with: a room's counts across replicas. */
export interface PresenceStats {
  /** Connections in the room. */
  clients: number;
  /** Distinct users among them (anonymous connections are not users). */
  users: number;
}

/** `presence.join` data: a connection joined the room (on any replica). */
export interface PresenceJoin extends PresenceClient {
  /** The room. */
  room: string;
}

/** `presence.leave` data: a connection left the room (on any replica, or its replica died). */
export interface PresenceLeave {
  /** The room. */
  room: string;
  /** The connection that left. */
  clientId: string;
  /** Its user, if it had one. */
  userId?: string;
}

/**
 * The built-in presence events and their data, for {@linkcode HubClient.on}:
 * `client.on("presence.join", (e) => ...)` is typed whatever the app's contract.
 */
export interface PresenceEventMap {
  /** `presence.join`: a connection joined a room the client is in. */
  [ServerEvent.PRESENCE_JOIN]: PresenceJoin;
  /** `presence.leave`: a connection left a room the client is in. */
  [ServerEvent.PRESENCE_LEAVE]: PresenceLeave;
}

/** `"presence.join"` or `"presence.leave"`. */
export type PresenceEventType = keyof PresenceEventMap;

/** A presence event as it arrives (for `events()`): the envelope. */
export type PresenceEnvelope = {
  [K in PresenceEventType]: { type: K; data: PresenceEventMap[K]; timestamp: number };
}[PresenceEventType];

/**
 * One member of a {@linkcode MemberList}: a user with all their connections
 * (tabs) in the room, or one anonymous connection.
 */
export interface PresenceMember {
  /** The user; `undefined` for an anonymous connection (listed on its own). */
  readonly userId: string | undefined;
  /** The member's connections in the room, in the order they were seen. */
  readonly clientIds: readonly string[];
  /** The `info` of the member's most recently seen connection (`undefined` without one). */
  readonly info: unknown;
}

/**
 * What changed in a {@linkcode MemberList}:
 * - `join`: a member appeared (a user's first connection joined);
 * - `leave`: a member is gone (a user's last connection left); `member` is as it was,
 *   with that connection;
 * - `update`: a member's connections changed (a second tab joined, one of two left);
 * - `load`: the list was replaced: a `presence` reply on the current connection (the
 *   first load, or the reload after a reconnect), or emptied (the room was left).
 */
export type MemberListChange =
  | { readonly kind: "load" }
  | { readonly kind: "join" | "leave" | "update"; readonly member: PresenceMember };

/**
 * A room's members, kept live by the client ({@linkcode HubClient.members}).
 *
 * - **Users, tabs merged**: a user appears once, with every connection they have
 *   in the room; a connection without a user is a member of its own. Sorted by
 *   user id (anonymous connections last, by client id).
 * - **Loading**: whenever the client's join of the room is acknowledged (the first
 *   `subscribe()`, and every re-join after a reconnect) it reads the room's
 *   `presence`. `presence.join` and `presence.leave` events apply at once, also
 *   while that read is in flight: when the reply comes, the list is the reply
 *   with every event seen meanwhile applied over it (for each connection, its
 *   latest event wins), so a join or leave racing the read is not lost.
 * - **Reconnects**: the list stays as it was while the client is offline, and is
 *   replaced by the reload after the re-join (who left meanwhile is gone from it).
 * - **Freshness**: as fresh as the server's presence: eventual across replicas,
 *   and a crashed replica's members leave after the server's presence TTL. In a
 *   room without join/leave events the list is the snapshot of the last load.
 * - **Errors**: a read answered `UNAVAILABLE`, or timed out, is retried with the client's backoff;
 *   other failures are reported as an `error` lifecycle event (source `"members"`).
 */
export interface MemberList extends Disposable {
  /** The room. */
  readonly room: string;
  /** The members now. */
  readonly members: readonly PresenceMember[];
  /** Whether a `presence` reply was applied on the current connection. */
  readonly loaded: boolean;
  /** Whether `userId` has a connection in the room. */
  has(userId: string): boolean;
  /**
   * Call `listener` after every change, with the change.
   *
   * @param listener Gets the change; read `members` for the list. A throw is
   *   reported as an `error` lifecycle event (source `"listener"`).
   * @returns A function that removes the listener.
   */
  onChange(listener: (change: MemberListChange) => void): () => void;
  /** Stop keeping the list (the client keeps the room: `unsubscribe()` leaves it). Idempotent. */
  close(): void;
}
