// hubbub on Bun.serve for the presence churn bench (bench/presence.mjs): one hub with a
// redisBackplane and a RedisPresenceStore on REDIS_URL, as a replica of a cluster runs.
// Rooms "q:*" track presence without events (`{ events: false }`: one store write per join or
// leave, nothing sent), rooms "p:*" with events (`presence.join` / `presence.leave` to the
// room's members, through the backplane). Connections carry a user id (`?user=`), so connecting
// and disconnecting also write the user's connection count.
//
//   GET /ws?user=U                 the hub
//   GET /ops                       store writes completed so far and in flight, connections:
//                                  {add, remove, users, failed, pending, connections}
//   GET /stats?prefix=q&rooms=100  hub.presenceStats() summed over rooms q:0..q:99
//   GET /latency                   {p50, p99, max} ms of the writes completed since the last call
//
// The store is wrapped to count its writes (add, remove, setUserConnections) as they complete:
// the load client ends a phase when the counts it expects are reached and nothing is in flight.
// SIGTERM closes the hub (its goodbye to the store) and the store.
import { createClient } from "redis";
import { Hub, type PresenceStore } from "../../mod.ts";
import { createBunHandler } from "../../src/adapters/bun.ts";
import { redisBackplane, redisPresenceStore } from "../../src/backplane/redis.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const url: string | undefined = g.process.env.REDIS_URL;
if (url === undefined) throw new Error("REDIS_URL is required");

// A phase issues up to 20,000 writes in a burst: their latency (reported) can pass the default
// 2 s command timeout on a shared core; a bench run should measure it, not fail on it.
const store = redisPresenceStore({ url, createClient, commandTimeoutMs: 30_000 });
await store.ready;
const ops = { add: 0, remove: 0, users: 0, failed: 0, pending: 0 };
/** Latencies (ms) of the writes completed since the last /latency. */
let latencies: number[] = [];

/** `run()`, counted under `key` once it settles. */
function counted<T>(key: "add" | "remove" | "users", run: () => T | Promise<T>): Promise<T> {
  ops.pending++;
  const t0 = performance.now();
  let result: Promise<T>;
  try {
    result = Promise.resolve(run()); // at once, as the hub calls the store
  } catch (error) {
    result = Promise.reject(error);
  }
  return result.then((result) => {
    ops.pending--;
    ops[key]++;
    latencies.push(performance.now() - t0);
    return result;
  }, (error) => {
    ops.pending--;
    ops.failed++;
    throw error;
  });
}

const countingStore: PresenceStore = {
  heartbeat: (replica, ttlMs) => store.heartbeat(replica, ttlMs),
  add: (replica, room, entry) => counted("add", () => store.add(replica, room, entry)),
  remove: (replica, room, clientId) =>
    counted("remove", () => store.remove(replica, room, clientId)),
  members: (room) => store.members(room),
  counts: (room) => store.counts(room),
  setUserConnections: (replica, userId, count) =>
    counted("users", () => store.setUserConnections(replica, userId, count)),
  user: (userId) => store.user(userId),
  sweep: () => store.sweep(),
  goodbye: (replica) => store.goodbye(replica),
};

const hub = new Hub({
  maxConnections: 50_000,
  rateLimit: false,
  backplane: redisBackplane({ url, createClient }),
  presenceStore: countingStore,
  presence: (room) =>
    room.startsWith("q:") ? { events: false } : room.startsWith("p:") ? true : false,
  identify: (req) => {
    const user = new URL(req.url).searchParams.get("user");
    return user ? { userId: user } : {};
  },
  canJoin: () => true,
  onError: (error, source) => console.error(`[hub ${source}]`, error),
});
await hub.ready;

async function http(req: Request): Promise<Response> {
  const { pathname, searchParams } = new URL(req.url);
  if (pathname === "/ops") return Response.json({ ...ops, connections: hub.connectionCount });
  if (pathname === "/latency") {
    const sorted = latencies.sort((a, b) => a - b);
    latencies = [];
    const at = (q: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    return Response.json({ p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 });
  }
  if (pathname === "/stats") {
    const prefix = searchParams.get("prefix") ?? "q";
    const rooms = Number(searchParams.get("rooms") ?? 0);
    const all = await Promise.all(
      Array.from({ length: rooms }, (_, i) => hub.presenceStats(`${prefix}:${i}`)),
    );
    return Response.json({
      clients: all.reduce((n, s) => n + s.clients, 0),
      users: all.reduce((n, s) => n + s.users, 0),
    });
  }
  return new Response("not found", { status: 404 });
}

const ws = createBunHandler(hub);
const server = g.Bun.serve({
  hostname: "127.0.0.1",
  port: Number(g.process.env.PORT ?? 0),
  fetch: (req: Request, srv: unknown) =>
    new URL(req.url).pathname === "/ws" ? ws.upgrade(req, srv as never) : http(req),
  websocket: ws.websocket,
});
console.log(`READY ${server.port}`);

let stopping = false;
g.process.on("SIGTERM", async () => {
  if (stopping) return;
  stopping = true;
  await hub.close();
  await store.close();
  server.stop(true);
  g.process.exit(0);
});
