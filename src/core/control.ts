// Cluster-wide control of connections: join or leave a room, or disconnect, for every
// connection a target names on whichever replica holds it (log a user out everywhere, ban
// them, move every tab of a user into a room). This replica acts at once; the command goes to
// the other replicas on the target's bus channels (the backplane bridge), and each acts on
// its own connections when it arrives.
import type { Target } from "../protocol/target.ts";
import type { Connection } from "./connection.ts";
import type { Registry } from "./registry.ts";
import { exceptIds, names } from "./fanout.ts";
import { assertCloseArgs } from "../protocol/close_codes.ts";

/** Longest room name a control command carries (the hub's room limit applies too). */
const MAX_CONTROL_ROOM = 1024;

/** One command, as it travels between replicas (`k` of a bus envelope). */
export type ControlCommand =
  | { readonly op: "join"; readonly room: string }
  | { readonly op: "leave"; readonly room: string }
  | { readonly op: "disconnect"; readonly code: number; readonly reason: string };

/** The connections `target` names here (rooms, users and clients unioned, `except` removed). */
export function targeted(registry: Registry, target: Target): Connection[] {
  const out = new Set<Connection>();
  for (const room of names(target.rooms) ?? []) {
    for (const c of registry.rooms.get(room) ?? []) out.add(c);
  }
  for (const user of names(target.users) ?? []) {
    for (const c of registry.users.get(user) ?? []) out.add(c);
  }
  for (const id of names(target.clients) ?? []) {
    const c = registry.clients.get(id);
    if (c !== undefined) out.add(c);
  }
  if (target.except !== undefined) {
    const skip = new Set(exceptIds(target.except));
    for (const c of out) if (skip.has(c.id)) out.delete(c);
  }
  return [...out];
}

/**
 * Check a target and command from app code.
 * @throws {TypeError} If the target names nobody, or a room is not a non-empty string.
 * @throws {RangeError} If a disconnect's code or reason is not one a server may send.
 */
export function checkControl(action: string, target: Target, command: ControlCommand): void {
  if (
    typeof target !== "object" || target === null ||
    (target.rooms === undefined && target.users === undefined && target.clients === undefined)
  ) {
    throw new TypeError(`Cannot ${action}: the target must name rooms, users or clients`);
  }
  if (command.op === "disconnect") assertCloseArgs(command.code, command.reason, "server");
  else if (!isRoom(command.room)) {
    throw new TypeError(`Cannot ${action}: room must be a non-empty string`);
  }
}

/** Carry out a command on this replica's connections. @returns How many it acted on. */
export function applyControl(registry: Registry, target: Target, command: ControlCommand): number {
  let n = 0;
  for (const conn of targeted(registry, target)) {
    if (conn.state !== "open") continue;
    if (command.op === "join") registry.join(conn, command.room);
    else if (command.op === "leave") registry.leave(conn, command.room, "server");
    else conn.close(command.code, command.reason);
    n++;
  }
  return n;
}

/** A command from the bus, checked field by field; `undefined` when malformed. */
export function parseControl(v: unknown): ControlCommand | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const k = v as Record<string, unknown>;
  if ((k.op === "join" || k.op === "leave") && isRoom(k.room)) {
    return { op: k.op, room: k.room as string };
  }
  if (k.op === "disconnect" && typeof k.code === "number" && typeof k.reason === "string") {
    try {
      assertCloseArgs(k.code, k.reason, "server");
    } catch {
      return undefined;
    }
    return { op: "disconnect", code: k.code, reason: k.reason };
  }
  return undefined;
}

function isRoom(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_CONTROL_ROOM;
}
