/**
 * hubbub: a WebSocket hub for Deno and Bun.
 *
 * This entry point is runtime-neutral. Pair it with an adapter:
 * `@hubbub/hubbub/deno`, `@hubbub/hubbub/bun` or `@hubbub/hubbub/hono`.
 *
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * const hub = new Hub({
 *   identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? undefined }),
 *   canJoin: (_conn, room) => /^[a-z0-9-]{1,32}$/.test(room),
 *   onMessage: (conn, msg) => {
 *     if (msg.type === "shout") hub.emit("shout", { from: conn.userId }, { except: conn });
 *   },
 * });
 * await hub.close();
 * ```
 *
 * @module
 */

export * from "./src/core/hub.ts";
export * from "./src/core/history_store.ts";
export * from "./src/core/presence_store.ts";
export * from "./src/core/standard_schema.ts";
export * from "./src/core/backplane.ts";
export * from "./src/core/hub_stats.ts";
export * from "./src/core/describe.ts";
export * from "./src/core/connection.ts";
export * from "./src/core/send_queue.ts";
export * from "./src/core/transport.ts";
export * from "./src/core/errors.ts";
export * from "./src/core/close_codes.ts";
export * from "./src/protocol/envelope.ts";
export * from "./src/protocol/error_codes.ts";
export * from "./src/protocol/contract.ts";
