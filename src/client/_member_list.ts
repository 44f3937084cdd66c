// A room's live member list (HubClient.members): a `presence` read on every acked join of
// the room, `presence.join`/`presence.leave` events applied as they come, and the events
// seen while a read is in flight laid over its reply (per connection, the latest wins).

import type { ClientErrorSource } from "./lifecycle_events.ts";
import type {
  MemberList,
  MemberListChange,
  PresenceClient,
  PresenceJoin,
  PresenceLeave,
  PresenceMember,
} from "./presence.ts";
import type { ClientTimers } from "./hub_client_options.ts";
import { RequestError } from "./errors.ts";
import { ErrorCode } from "../protocol/error_codes.ts";

/** What a member list needs from its client. */
export interface MemberListHost {
  /** Read the room's presence on the current connection. */
  presence(room: string): Promise<PresenceClient[]>;
  /** The delay before retry `attempt` (from 1) of a read answered `UNAVAILABLE`. */
  retryDelay(attempt: number): number;
  readonly timers: ClientTimers;
  /** Report an error as an `error` lifecycle event. */
  report(error: unknown, source: ClientErrorSource): void;
  /** The list was closed: stop feeding it. */
  detach(list: LiveMemberList): void;
}

interface Entry {
  /** The member it belongs to: `u:` + its user id, or `c:` + its client id when anonymous. */
  readonly key: string;
  readonly userId: string | undefined;
  readonly info: unknown;
}

/** `null`: the connection's latest event was a leave. */
type Seen = Map<string, PresenceClient | null>;

/** A read that failed but may work later: the store was unavailable, or it timed out. */
function mayWork(error: unknown): boolean {
  return (error instanceof RequestError && error.code === ErrorCode.UNAVAILABLE) ||
    (error instanceof DOMException && error.name === "TimeoutError");
}

function keyOf(clientId: string, userId: string | undefined): string {
  return userId === undefined ? "c:" + clientId : "u:" + userId;
}

function entryOf(c: PresenceClient): Entry {
  const userId = typeof c.userId === "string" ? c.userId : undefined;
  return { key: keyOf(c.clientId, userId), userId, info: c.info };
}

/** The member list of one room, fed by its client. */
export class LiveMemberList implements MemberList {
  readonly room: string;
  readonly #host: MemberListHost;
  /** The list: each connection in the room, in the order seen. */
  #clients = new Map<string, Entry>();
  /** Members by key: their client ids, in the order seen. */
  #groups = new Map<string, Set<string>>();
  #members: PresenceMember[] | undefined;
  /** Events seen on this connection since the last applied read (while not loaded). */
  #seen: Seen | undefined = new Map();
  #loaded = false;
  /** Bumped by every read started, lost connection, leave and close: older replies are stale. */
  #generation = 0;
  #retries = 0;
  #retryTimer: unknown;
  #closed = false;
  readonly #listeners = new Set<(change: MemberListChange) => void>();

  constructor(room: string, host: MemberListHost) {
    this.room = room;
    this.#host = host;
  }

  get members(): readonly PresenceMember[] {
    return this.#members ??= this.#build();
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  has(userId: string): boolean {
    return this.#groups.has("u:" + userId);
  }

  onChange(listener: (change: MemberListChange) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#generation++;
    this.#stopRetry();
    this.#listeners.clear();
    this.#host.detach(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ------------------------------------------------------------ fed by the client

  /** The client's join of the room was acked on the current connection: (re)load. */
  joined(): void {
    if (this.#closed) return;
    this.#seen ??= new Map();
    this.#loaded = false;
    this.#retries = 0;
    this.#read(++this.#generation);
  }

  /** A `presence.join` or `presence.leave` of this room on the current connection. */
  event(joined: boolean, data: PresenceJoin | PresenceLeave): void {
    if (this.#closed || typeof data.clientId !== "string") return;
    const client: PresenceClient = joined ? data : { clientId: data.clientId };
    this.#seen?.set(data.clientId, joined ? client : null);
    const change = joined ? this.#add(client) : this.#remove(data.clientId);
    if (change !== undefined) this.#emit(change);
  }

  /** The connection dropped: the list stays (stale) until the reload after the re-join. */
  connectionLost(): void {
    this.#generation++;
    this.#stopRetry();
    this.#loaded = false;
    this.#seen = new Map();
  }

  /** The client is out of the room: the list empties. */
  left(): void {
    if (this.#closed) return;
    this.connectionLost();
    const had = this.#clients.size > 0;
    this.#reset(new Map());
    if (had) this.#emit({ kind: "load" });
  }

  // ------------------------------------------------------------ internals

  #read(generation: number): void {
    this.#host.presence(this.room).then(
      (clients) => {
        if (generation !== this.#generation) return;
        this.#apply(clients);
      },
      (error) => {
        if (generation !== this.#generation) return;
        if (error instanceof RequestError && error.code === ErrorCode.NOT_SUBSCRIBED) return; // left meanwhile
        if (mayWork(error)) {
          this.#retryTimer = this.#host.timers.setTimeout(() => {
            this.#retryTimer = undefined;
            if (generation === this.#generation) this.#read(generation);
          }, this.#host.retryDelay(++this.#retries));
          return;
        }
        this.#host.report(error, "members");
      },
    );
  }

  /** A `presence` reply: the list is the reply with the events seen meanwhile laid over it. */
  #apply(clients: readonly PresenceClient[]): void {
    const next = new Map<string, Entry>();
    for (const c of clients) if (typeof c.clientId === "string") next.set(c.clientId, entryOf(c));
    for (const [clientId, latest] of this.#seen ?? []) {
      if (latest === null) next.delete(clientId);
      else next.set(clientId, entryOf(latest));
    }
    this.#seen = undefined;
    this.#loaded = true;
    this.#retries = 0;
    this.#reset(next);
    this.#emit({ kind: "load" });
  }

  #reset(clients: Map<string, Entry>): void {
    this.#clients = clients;
    this.#groups = new Map();
    for (const [clientId, e] of clients) {
      let group = this.#groups.get(e.key);
      if (group === undefined) this.#groups.set(e.key, group = new Set());
      group.add(clientId);
    }
    this.#members = undefined;
  }

  #add(client: PresenceClient): MemberListChange | undefined {
    const e = entryOf(client);
    const before = this.#clients.get(client.clientId);
    if (before !== undefined && before.key === e.key && before.info === e.info) return undefined;
    if (before !== undefined && before.key !== e.key) this.#remove(client.clientId);
    this.#clients.set(client.clientId, e);
    let group = this.#groups.get(e.key);
    const isNew = group === undefined;
    if (group === undefined) this.#groups.set(e.key, group = new Set());
    group.add(client.clientId);
    this.#members = undefined;
    return { kind: isNew ? "join" : "update", member: this.#member(e.key)! };
  }

  #remove(clientId: string): MemberListChange | undefined {
    const e = this.#clients.get(clientId);
    if (e === undefined) return undefined;
    const member = this.#member(e.key)!;
    this.#clients.delete(clientId);
    const group = this.#groups.get(e.key)!;
    group.delete(clientId);
    this.#members = undefined;
    if (group.size > 0) return { kind: "update", member: this.#member(e.key)! };
    this.#groups.delete(e.key);
    return { kind: "leave", member }; // as it was: with the connection that left
  }

  #member(key: string): PresenceMember | undefined {
    const group = this.#groups.get(key);
    if (group === undefined) return undefined;
    const ids = [...group];
    const last = this.#clients.get(ids[ids.length - 1])!;
    return Object.freeze({ userId: last.userId, clientIds: Object.freeze(ids), info: last.info });
  }

  #build(): PresenceMember[] {
    // Users first, then anonymous connections, each by id.
    const keys = [...this.#groups.keys()].sort((a, b) => {
      if (a[0] !== b[0]) return a[0] === "u" ? -1 : 1;
      return a < b ? -1 : a > b ? 1 : 0;
    });
    return Object.freeze(keys.map((k) => this.#member(k)!)) as PresenceMember[];
  }

  #emit(change: MemberListChange): void {
    for (const fn of [...this.#listeners]) {
      try {
        fn(change);
      } catch (error) {
        this.#host.report(error, "listener");
      }
    }
  }

  #stopRetry(): void {
    if (this.#retryTimer === undefined) return;
    this.#host.timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }
}
