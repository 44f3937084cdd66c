// The soak server: one hub with a small chat app, on Deno (createDenoHandler) or Bun
// (createBunHandler), started by scripts/soak.mjs. Clients join rooms and send chat messages
// that are broadcast to the room; the server also streams a "firehose" room (8 KiB every
// 50 ms) that stalled readers join. GET /stats reports the hub's counters, memory, closes by
// code and any invariant a hook saw broken.
//
// Usage: deno run -A bench/soak/server.ts | bun bench/soak/server.ts   (prints "listening <port>")

import { Hub, MessageError, type StandardSchemaV1 } from "../../mod.ts";
import { createDenoHandler } from "../../src/adapters/deno.ts";
import { createBunHandler } from "../../src/adapters/bun.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const isBun = g.Bun !== undefined;

type Chat = { type: "chat"; room: string; text: string; seq: number; from: string };

const ROOM = /^(room-\d{1,3}|firehose)$/;

function isChat(v: unknown): v is Chat {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const m = v as Record<string, unknown>;
  return Object.keys(m).every((k) => ["type", "room", "text", "seq", "from", "id"].includes(k)) &&
    m.type === "chat" && typeof m.room === "string" && ROOM.test(m.room) &&
    typeof m.text === "string" && m.text.length <= 1000 && Number.isSafeInteger(m.seq) &&
    typeof m.from === "string" && m.from.length <= 64;
}

const chatSchema: StandardSchemaV1<unknown, Chat> = {
  "~standard": {
    version: 1,
    vendor: "soak",
    validate: (v) => isChat(v) ? { value: v } : { issues: [{ message: "not a chat message" }] },
  },
};

const closesByCode: Record<string, number> = {};
const hookErrors: string[] = [];
const violations: string[] = [];
let chats = 0;

const hub: Hub<Chat> = new Hub<Chat>({
  maxMessageBytes: 64 * 1024,
  maxQueueBytes: 256 * 1024,
  highWaterMark: 64 * 1024,
  lowWaterMark: 16 * 1024,
  schema: chatSchema,
  canJoin: (_c, room) => ROOM.test(room),
  onMessage: (conn, m) => {
    if (!isChat(m)) {
      violations.push(`onMessage saw ${JSON.stringify(m).slice(0, 100)}`);
      return;
    }
    if (!conn.rooms.has(m.room)) {
      throw new MessageError("NOT_IN_ROOM", "Cannot chat: you have not joined the room");
    }
    chats++;
    hub.emit("chat", { from: m.from, seq: m.seq, text: m.text }, { rooms: m.room });
  },
  onDisconnect: (_c, info) => {
    closesByCode[info.code] = (closesByCode[info.code] ?? 0) + 1;
  },
  onError: (error, source) => {
    if (hookErrors.length < 100) hookErrors.push(`${source}: ${error}`);
  },
});

// The firehose: a steady stream of 8 KiB frames, numbered, for readers to check for gaps.
const pad = "f".repeat(8 * 1024);
let fire = 0;
const firehose = setInterval(() => hub.emit("fire", { i: fire++, pad }, { rooms: "firehose" }), 50);

function stats(): Response {
  const mem = g.Deno?.memoryUsage() ?? g.process.memoryUsage();
  const s = hub.stats({ topRooms: 0 });
  return Response.json({
    runtime: isBun ? "bun" : "deno",
    connections: hub.connectionCount,
    rooms: hub.roomCount,
    users: hub.userCount,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    heapTotal: mem.heapTotal,
    connectionsOpened: s.connectionsOpened,
    framesIn: s.in.messages,
    deliveries: s.out.messages,
    bytesOut: s.out.bytes,
    emits: s.emits,
    chats,
    fire,
    rateLimited: s.rateLimited,
    queuedBytes: s.queuedBytes,
    closesByCause: s.closes,
    closesByCode,
    refused: s.refused,
    hookErrors,
    violations,
  });
}

const route = (req: Request) => new URL(req.url).pathname;
let shutdown: () => Promise<void>;

if (isBun) {
  const ws = createBunHandler(hub);
  const server = g.Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req: Request, srv: unknown) =>
      route(req) === "/ws"
        ? ws.upgrade(req, srv as never)
        : route(req) === "/stats"
        ? stats()
        : new Response("not found", { status: 404 }),
    websocket: ws.websocket,
  });
  console.log(`listening ${server.port}`);
  shutdown = async () => void (await server.stop(true));
} else {
  const ws = createDenoHandler(hub);
  const server = g.Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req: Request) =>
      route(req) === "/ws"
        ? ws(req)
        : route(req) === "/stats"
        ? stats()
        : new Response("not found", { status: 404 }),
  );
  console.log(`listening ${server.addr.port}`);
  shutdown = () => server.shutdown();
}

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(firehose);
  await hub.close({ drainMs: 1000 });
  // Sockets the runtime still holds (peers that never answer a close) must not block the exit.
  await Promise.race([shutdown(), new Promise((r) => setTimeout(r, 2000))]);
  console.log("stopped");
  g.Deno?.exit(0) ?? g.process.exit(0);
}

if (isBun) g.process.on("SIGTERM", stop);
else g.Deno.addSignalListener("SIGTERM", stop);
