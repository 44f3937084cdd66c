// The bench app for the cross-replica and history scenarios, on hubbub (Bun and Deno scripts
// share it). Environment:
//   REDIS_URL      set: two hubs in this process, replica A (the publisher's) and replica B (the
//                  listeners'), each with its own redisBackplane (its own two connections), so
//                  every message goes A -> Redis -> B. Unset: one hub for both (one process).
//   BENCH_ROOMS=N  listeners are spread over N rooms "r0".."r<N-1>" (one each when N equals the
//                  number of listeners) and every publish is N emits, one per room; unset: one
//                  room "bench", one emit.
//   BENCH_HISTORY=1  the rooms keep a history (maxMessages 1000); with REDIS_URL in a
//                  RedisHistoryStore shared by both hubs, else the hub's memory store.
//   BENCH_COALESCE=0  the backplanes publish one Redis message per payload (for A/B runs).
//   BENCH_SECRET=1  the hubs sign what they publish (backplaneSecret) and check what they get.
//   BENCH_FORMAT=1  the hubs publish bus format 1 (backplaneFormat: 1, for A/B runs).
// Listeners are put in their room on connect, except those connecting with `?join=no` (the
// recovery client's), which subscribe themselves (every room may be joined).
import { createClient } from "redis";
import { Hub, type HubOptions } from "../../mod.ts";
import { redisBackplane } from "../../src/backplane/redis.ts";
import { isPublisher, ROOM } from "./protocol.ts";

// deno-lint-ignore no-explicit-any
const env = (name: string): string | undefined => (globalThis as any).process?.env?.[name];

/** The hubs of one bench server, and which one an upgrade goes to. */
export interface CrossApp {
  /** Replica A: the harness's publisher connects here. */
  readonly publisherHub: Hub;
  /** Replica B: the listeners connect here (the same hub without Redis). */
  readonly listenerHub: Hub;
  /** The hub for an upgrade request. */
  hubFor(url: string): Hub;
  /** Settles once both hubs are ready. */
  readonly ready: Promise<void>;
}

/** Build the hubs described by the environment (see the top of this file). */
export async function crossApp(): Promise<CrossApp> {
  const url = env("REDIS_URL");
  const roomCount = Number(env("BENCH_ROOMS") ?? 0);
  const rooms = roomCount > 0 ? Array.from({ length: roomCount }, (_, i) => `r${i}`) : [ROOM];
  const history = env("BENCH_HISTORY") === "1";
  let historyStore: HubOptions["historyStore"];
  if (history && url !== undefined) {
    // Loaded only here: the store lives next to the backplane in ./redis.
    // deno-lint-ignore no-explicit-any
    const mod: any = await import("../../src/backplane/redis.ts");
    historyStore = mod.redisHistoryStore({ url, createClient });
    await (historyStore as unknown as { ready?: Promise<void> }).ready;
  }
  let next = 0;
  const make = (): Hub => {
    const hub: Hub = new Hub({
      maxConnections: 50_000,
      rateLimit: false, // as in _hubbub_app.ts: the publisher sends thousands of frames/s
      ...(url !== undefined
        ? {
          backplane: redisBackplane({
            url,
            createClient,
            coalesce: env("BENCH_COALESCE") !== "0",
          }),
        }
        : {}),
      ...(history ? { history: () => ({ maxMessages: 1000 }), historyStore } : {}),
      ...(env("BENCH_SECRET") === "1"
        ? { backplaneSecret: "a-bench-secret-of-32-characters!" }
        : {}),
      ...(env("BENCH_FORMAT") === "1" ? { backplaneFormat: 1 as const } : {}),
      canJoin: () => true,
      onConnect: (conn) => {
        const u = conn.request.url;
        if (!isPublisher(u) && !u.includes("join=no")) conn.join(rooms[next++ % rooms.length]);
      },
      onMessage: (_conn, msg) => {
        if (msg.type !== "publish") return;
        for (let i = 0; i < rooms.length; i++) hub.emit("bench", msg.data, { rooms: rooms[i] });
      },
    });
    return hub;
  };
  const publisherHub = make();
  const listenerHub = url !== undefined ? make() : publisherHub;
  return {
    publisherHub,
    listenerHub,
    hubFor: (u) => isPublisher(u) ? publisherHub : listenerHub,
    ready: Promise.all([publisherHub.ready, listenerHub.ready]).then(() => {
      for (const hub of new Set([publisherHub, listenerHub])) {
        if (!hub.backplaneHealth.ok) throw new Error(`backplane: ${hub.backplaneHealth.error}`);
      }
    }),
  };
}
