import assert from "node:assert/strict";
import { Hub, type HubEvent } from "../../mod.ts";
import { connectMemory } from "../../src/testing/mod.ts";
import { test } from "../_harness.ts";

test("Hub.stats() counts scripted traffic exactly", async () => {
  const hub = new Hub({
    canJoin: () => true,
    identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? undefined }),
    maxQueueMessages: 3,
    highWaterMark: 10,
    lowWaterMark: 5,
    onMessage: () => {},
  });
  const a = await connectMemory(hub, { url: "http://x/ws?user=ada" });
  const b = await connectMemory(hub, { url: "http://x/ws?user=bob" });
  await a.next();
  await b.next();
  a.send({ type: "subscribe", room: "big" });
  b.send({ type: "subscribe", room: "big" });
  a.send({ type: "subscribe", room: "small" });
  a.send({ type: "chat", text: "hi" }); // 27 chars
  a.send("{bad");
  a.send(new Uint8Array([1, 2, 3]));
  await a.next("subscribed");
  assert.equal(hub.emit("news", 1, { rooms: "big" }), 2);
  const s = hub.stats();
  assert.equal(s.connections, 2);
  assert.equal(s.users, 2);
  assert.equal(s.rooms, 2);
  assert.deepEqual(s.topRooms, [{ room: "big", members: 2 }, { room: "small", members: 1 }]);
  assert.equal(s.connectionsOpened, 2);
  assert.equal(s.in.messages, 6);
  assert.equal(s.inByType.subscribe.messages, 3);
  assert.deepEqual(s.inByType.chat, { messages: 1, bytes: 27 });
  assert.equal(s.inByType.invalid.messages, 1);
  assert.deepEqual(s.inByType.binary, { messages: 1, bytes: 3 });
  assert.equal(s.outByType.news.messages, 2);
  assert.equal(s.outByType.subscribed.messages, 3);
  assert.equal(s.outByType["connection.established"].messages, 2);
  assert.equal(s.outByType.error.messages, 2, "INVALID_JSON and the refused binary frame");
  assert.equal(s.emits, 1);
  assert.equal(s.out.messages, 2 + 2 + 3 + 2);
  // A slow client, a client close and a server close, each counted by cause.
  b.pause();
  for (let i = 0; i < 10; i++) hub.emit("flood", "xxxxxxxxxx", { users: "bob" });
  await b.closed;
  a.close();
  const c = await connectMemory(hub);
  hub.connection(((await c.next()).data as { clientId: string }).clientId)!.close(4100, "kick");
  await Promise.resolve();
  const after = hub.stats();
  assert.deepEqual(after.closes, { slow_client: 1, client: 1, server: 1 });
  assert.equal(after.connectionsClosed, 3);
  assert.equal(after.connections, 0);
  await hub.close();
});

test("Hub.stats() counts refused upgrades by reason and reports queued bytes", async () => {
  const hub = new Hub({ identify: () => null, highWaterMark: 10, lowWaterMark: 5 });
  const plain = await hub.upgrade(new Request("http://x/ws"));
  if (!plain.ok) await plain.response.body?.cancel();
  await connectMemory(hub).catch(() => {});
  await connectMemory(hub, { headers: { origin: "https://evil.test" } }).catch(() => {});
  assert.deepEqual(hub.stats().refused, { not_websocket: 1, identify: 1, origin: 1 });
  await hub.close();
  const q = new Hub({ highWaterMark: 10, lowWaterMark: 5 });
  const c = await connectMemory(q);
  await c.next();
  c.pause();
  q.emit("a", "0123456789");
  q.emit("b", 1);
  const s = q.stats();
  assert.ok(s.queuedBytes.max > 0);
  assert.equal(s.queuedBytes.total, s.queuedBytes.max);
  assert.equal(s.queuedBytes.p99, s.queuedBytes.max);
  await q.close();
});

test("Hub.stats() reports the p99 of queued bytes over many connections, not their max", async () => {
  const hub = new Hub({ highWaterMark: 10, lowWaterMark: 5, maxQueueMessages: 1000 });
  const n = 200;
  const clients = [];
  for (let i = 0; i < n; i++) {
    const c = await connectMemory(hub);
    await c.next();
    c.pause();
    clients.push(c);
  }
  const ids = hub.connections().map((c) => c.id);
  assert.equal(ids.length, n);
  // Connection j gets j + 1 frames: every connection a different backlog.
  for (let k = 0; k < n; k++) hub.emit("n", "0123456789", { clients: ids.slice(k) });
  const queued = ids.map((id) => hub.connection(id)!.queuedBytes);
  const sorted = [...queued].sort((a, b) => a - b);
  assert.equal(new Set(queued).size, n, "every connection has a different backlog");
  const s = hub.stats();
  assert.equal(s.queuedBytes.total, queued.reduce((a, b) => a + b, 0));
  assert.equal(s.queuedBytes.max, sorted[n - 1]);
  // Nearest rank: the 198th smallest of 200.
  assert.equal(s.queuedBytes.p99, sorted[Math.ceil(0.99 * n) - 1]);
  assert.ok(s.queuedBytes.p99 < s.queuedBytes.max, "p99 is not the max");
  assert.ok(s.queuedBytes.p99 > sorted[Math.ceil(0.98 * n) - 1], "p99 is above the p98");
  await hub.close();
});

test("Hub.observe() and Hub.events() see frames, emits, connects and disconnects", async () => {
  const hub = new Hub({ onMessage: () => {} });
  const seen: HubEvent[] = [];
  const stop = hub.observe((e) => void seen.push(e));
  const controller = new AbortController();
  const streamed: string[] = [];
  const reader = (async () => {
    for await (const e of hub.events({ signal: controller.signal })) streamed.push(e.kind);
  })();
  const c = await connectMemory(hub);
  await c.next();
  c.send({ type: "hello" });
  hub.emit("x", 1);
  c.close(1000);
  await new Promise((r) => setTimeout(r, 0));
  stop();
  controller.abort();
  await reader;
  assert.deepEqual(seen.map((e) => e.kind), ["connect", "frame", "emit", "disconnect"]);
  assert.deepEqual(streamed, ["connect", "frame", "emit", "disconnect"]);
  const emit = seen[2] as Extract<HubEvent, { kind: "emit" }>;
  assert.equal(emit.recipients, 1);
  assert.ok(emit.fanoutMs >= 0);
  const gone = seen[3] as Extract<HubEvent, { kind: "disconnect" }>;
  assert.equal(gone.cause, "client");
  await hub.close();
});

test("Hub.sendTo() is counted and observed like an emit", async () => {
  const hub = new Hub();
  const seen: HubEvent[] = [];
  hub.observe((e) => void seen.push(e));
  const c = await connectMemory(hub);
  await c.next();
  const id = hub.connections()[0].id;
  const before = hub.stats();
  assert.equal(hub.sendTo(id, "dm", { text: "hi" }), true);
  assert.equal(hub.sendTo("no-such-client", "dm", {}), false);
  const emits = seen.filter((e) => e.kind === "emit") as Extract<HubEvent, { kind: "emit" }>[];
  assert.deepEqual(emits.map((e) => [e.type, e.recipients]), [["dm", 1]]);
  const after = hub.stats();
  assert.equal(after.out.messages - before.out.messages, 1);
  assert.equal(after.emits - before.emits, 1);
  assert.equal((await c.next()).type, "dm");
  await hub.close();
});

test("A slow events() consumer loses the oldest events, never slows the hub", async () => {
  const hub = new Hub();
  const it = hub.events({ bufferSize: 3 });
  const c = await connectMemory(hub);
  await c.next();
  for (let i = 0; i < 10; i++) hub.emit("n", i);
  assert.equal(hub.stats().observerDrops, 8, "1 connect + 10 emits into a buffer of 3");
  const first = await it.next();
  assert.equal(first.value?.kind, "emit");
  await it.return?.();
  await hub.close();
});

test("Hub.describe() lists endpoint metadata, message types and JSON Schema where available", async () => {
  const withJson = {
    "~standard": {
      version: 1 as const,
      vendor: "test",
      validate: (v: unknown) => ({ value: v as { type: "say"; text: string } }),
      jsonSchema: {
        input: () => ({ type: "object", properties: { text: { type: "string" } } }),
        output: () => ({ type: "object" }),
      },
    },
  };
  const hub = new Hub<{ type: "say"; text: string } | { type: "raw" }>({
    endpoint: { description: "Chat", tags: ["chat"], middleware: ["auth"] },
    onMessage: () => {},
  });
  hub.on("say", () => {}, { schema: withJson });
  hub.on("raw", () => {});
  const d = hub.describe();
  assert.deepEqual(d.endpoint, { description: "Chat", tags: ["chat"], middleware: ["auth"] });
  assert.deepEqual(d.messages.filter((m) => m.kind === "builtin").map((m) => m.type).sort(), [
    "authenticate",
    "ping",
    "subscribe",
    "unsubscribe",
  ]);
  assert.deepEqual(d.messages.find((m) => m.type === "say"), {
    type: "say",
    kind: "handler",
    validated: true,
    jsonSchema: { type: "object", properties: { text: { type: "string" } } },
  });
  assert.deepEqual(d.messages.find((m) => m.type === "raw"), {
    type: "raw",
    kind: "handler",
    validated: false,
  });
  assert.equal(d.messages.at(-1)?.kind, "catch-all");
  assert.ok(d.serverEvents.includes("connection.established"));
  assert.deepEqual(d.subprotocols, ["hubbub.batch.v1"]);
  assert.equal(JSON.parse(JSON.stringify(d)).limits.maxMessageBytes, 524288);
  await hub.close();
});
