// The send path, part 1: which connections get a frame. `fanout()` resolves a target against
// the registry (rooms, users and clients unioned, `except` removed) and hands the one encoded
// frame to each recipient's `kDeliver` (part 2, connection.ts: how one connection writes it).
// It never awaits a connection. The hot cases (everyone; one room, nobody excepted) are single
// monomorphic loops over one index.
import type { Target } from "../protocol/target.ts";
import type { Connection } from "./connection.ts";
import type { Registry } from "./registry.ts";
import type { Frame } from "./send_queue.ts";
import { kDeliver } from "./_internal.ts";

/**
 * Hand `frame` to every connection `target` names.
 * @returns How many connections accepted it.
 */
export function fanout(registry: Registry, frame: Frame, target: Target | undefined): number {
  if (target === undefined) return deliverAll(registry.clients, frame);
  const { rooms, users, clients, except } = target;
  if (rooms === undefined && users === undefined && clients === undefined) {
    if (except === undefined) return deliverAll(registry.clients, frame);
    return deliverExcept(registry.clients.values(), frame, new Set(exceptIds(except)));
  }
  // One room, the common case: iterate its index directly, no set is built.
  const conns: Set<Connection> | undefined =
    typeof rooms === "string" && users === undefined && clients === undefined
      ? registry.rooms.get(rooms)
      : union(registry, target);
  if (conns === undefined) return 0;
  if (except === undefined) return deliverTo(conns, frame);
  return deliverExcept(conns, frame, new Set(exceptIds(except)));
}

/** The client ids in a target's `except`: one id, one connection, or several of either. */
export function exceptIds(e: NonNullable<Target["except"]>): string[] {
  if (typeof e === "string") return [e];
  if (!(Symbol.iterator in e)) return [e.id];
  const out: string[] = [];
  for (const x of e as Iterable<string | { readonly id: string }>) {
    out.push(typeof x === "string" ? x : x.id);
  }
  return out;
}

/** A target's names as a list (one name or several). */
export function names(v: string | Iterable<string> | undefined): string[] | undefined {
  return v === undefined ? undefined : typeof v === "string" ? [v] : [...v];
}

/** Rooms, users and clients of `target`, unioned (each connection once). */
function union(registry: Registry, target: Target): Set<Connection> {
  const out = new Set<Connection>();
  for (const room of names(target.rooms) ?? []) {
    const set = registry.rooms.get(room);
    if (set !== undefined) { for (const c of set) out.add(c); }
  }
  for (const user of names(target.users) ?? []) {
    const set = registry.users.get(user);
    if (set !== undefined) { for (const c of set) out.add(c); }
  }
  for (const id of names(target.clients) ?? []) {
    const c = registry.clients.get(id);
    if (c !== undefined) out.add(c);
  }
  return out;
}

function deliverAll(clients: Map<string, Connection>, frame: Frame): number {
  let n = 0;
  for (const conn of clients.values()) {
    if (conn[kDeliver](frame)) n++;
  }
  return n;
}

function deliverTo(conns: Set<Connection>, frame: Frame): number {
  let n = 0;
  for (const conn of conns) {
    if (conn[kDeliver](frame)) n++;
  }
  return n;
}

function deliverExcept(conns: Iterable<Connection>, frame: Frame, except: Set<string>): number {
  let n = 0;
  for (const conn of conns) {
    if (except.has(conn.id)) continue;
    if (conn[kDeliver](frame)) n++;
  }
  return n;
}
