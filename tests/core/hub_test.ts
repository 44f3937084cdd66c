import assert from "node:assert/strict";
import type { StandardSchemaV1 } from "@standard-schema/spec";
import {
  CloseCode,
  type Connection,
  ConnectionClosedError,
  Hub,
  type HubOptions,
  type InboundMessage,
  MessageError,
  SlowClientError,
} from "../../mod.ts";
import {
  connectMemory,
  ManualClock,
  type MemoryClient,
  type UpgradeRefusedError,
} from "../../src/testing/mod.ts";
import { test } from "../_harness.ts";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function userHub(options: HubOptions = {}): Hub {
  return new Hub({
    identify: (req) => {
      const user = new URL(req.url).searchParams.get("user");
      return user ? { userId: user, metadata: { via: "query" } } : undefined;
    },
    canJoin: (_c, room) => !room.startsWith("secret"),
    onError: () => {},
    ...options,
  });
}

async function join(client: MemoryClient, room: string): Promise<void> {
  client.send({ type: "subscribe", room });
  const ack = await client.next();
  assert.deepEqual(ack.data, { room });
  assert.equal(ack.type, "subscribed");
}

test("Hub sends connection.established first, with a UUID v4 client id and the server's user id", async () => {
  const hub = userHub();
  const c = await connectMemory(hub, { url: "http://localhost/ws?user=ada" });
  const hello = await c.next();
  assert.equal(hello.type, "connection.established");
  const data = hello.data as { clientId: string; userId: string };
  assert.match(data.clientId, UUID_V4);
  assert.equal(data.userId, "ada");
  assert.equal(typeof hello.timestamp, "number");
  assert.equal(hub.connection(data.clientId)?.metadata.via, "query");
  await hub.close();
});

test("Hub.emit() to a room skips connections outside it", async () => {
  const hub = userHub();
  const a = await connectMemory(hub);
  const b = await connectMemory(hub);
  await a.next();
  await b.next();
  await join(a, "lobby");
  assert.equal(hub.emit("news", { n: 1 }, { rooms: "lobby" }), 1);
  assert.deepEqual((await a.next()).data, { n: 1 });
  assert.equal(b.messages.length, 1);
  await hub.close();
});

test("Hub.emit() to a user reaches every tab of that user and nobody else", async () => {
  const hub = userHub();
  const tab1 = await connectMemory(hub, { url: "http://localhost/ws?user=ada" });
  const tab2 = await connectMemory(hub, { url: "http://localhost/ws?user=ada" });
  const other = await connectMemory(hub, { url: "http://localhost/ws?user=bob" });
  assert.equal(hub.emit("dm", "hi", { users: "ada" }), 2);
  assert.equal((await tab1.next("dm")).data, "hi");
  assert.equal((await tab2.next("dm")).data, "hi");
  assert.equal(other.messages.filter((m) => m.type === "dm").length, 0);
  assert.equal(hub.userConnections("ada").length, 2);
  assert.equal(hub.userCount, 2);
  await hub.close();
});

test("Hub.emit() unions rooms, users and clients without duplicates, and honours except", async () => {
  const hub = userHub();
  const a = await connectMemory(hub, { url: "http://localhost/ws?user=ada" });
  const b = await connectMemory(hub, { url: "http://localhost/ws?user=bob" });
  const c = await connectMemory(hub);
  const ids = await Promise.all(
    [a, b, c].map(async (x) => ((await x.next()).data as { clientId: string }).clientId),
  );
  await join(a, "r1");
  await join(b, "r1");
  await join(a, "r2");
  const n = hub.emit("x", 1, { rooms: ["r1", "r2"], users: "ada", clients: [ids[0], ids[2]] });
  assert.equal(n, 3);
  for (const x of [a, b, c]) assert.equal(x.messages.filter((m) => m.type === "x").length, 1);
  assert.equal(hub.emit("y", 1, { rooms: "r1", except: ids[0] }), 1);
  assert.equal(b.messages.at(-1)?.type, "y");
  assert.equal(a.messages.filter((m) => m.type === "y").length, 0);
  assert.equal(hub.emit("z", 1, { except: [hub.connection(ids[1])!] }), 2);
  assert.equal(hub.emit("w", 1), 3);
  await hub.close();
});

test("Hub.broadcastRaw() sends the frame without an envelope, and sendTo() reaches one client", async () => {
  const hub = userHub();
  const a = await connectMemory(hub);
  const id = ((await a.next()).data as { clientId: string }).clientId;
  hub.broadcastRaw('{"raw":true}');
  assert.deepEqual(await a.next(), { raw: true });
  assert.equal(hub.sendTo(id, "only", 7), true);
  assert.equal((await a.next()).data, 7);
  assert.equal(hub.sendTo("nope", "only", 7), false);
  hub.broadcastRaw(new Uint8Array([1, 2, 3]));
  assert.deepEqual(a.binary[0], new Uint8Array([1, 2, 3]));
  await hub.close();
});

test("Hub refuses client subscribe by default and lets server join() any room", async () => {
  const hub = new Hub({ onError: () => {} });
  const a = await connectMemory(hub);
  const id = ((await a.next()).data as { clientId: string }).clientId;
  a.send({ type: "subscribe", room: "lobby" });
  const err = await a.next();
  assert.equal(err.type, "error");
  assert.equal((err.data as { code: string }).code, "SUBSCRIBE_REFUSED");
  assert.equal(hub.roomSize("lobby"), 0);
  assert.equal(hub.join(id, "lobby"), true);
  assert.equal(hub.join(id, "lobby"), true);
  assert.equal(hub.roomSize("lobby"), 1);
  assert.deepEqual([...hub.connection(id)!.rooms], ["lobby"]);
  await hub.close();
});

test("Hub room guard decides, acks subscribe/unsubscribe and prunes empty rooms", async () => {
  const hub = userHub({ canJoin: (_c, room) => Promise.resolve(room !== "secret") });
  const a = await connectMemory(hub);
  await a.next();
  await join(a, "open");
  await join(a, "open");
  assert.equal(hub.roomSize("open"), 1);
  a.send({ type: "subscribe", room: "secret" });
  assert.equal(((await a.next()).data as { code: string }).code, "SUBSCRIBE_REFUSED");
  a.send({ type: "unsubscribe", room: "open" });
  const ack = await a.next();
  assert.equal(ack.type, "unsubscribed");
  assert.deepEqual(ack.data, { room: "open" });
  assert.equal(hub.roomCount, 0);
  assert.deepEqual(hub.rooms(), new Map());
  await hub.close();
});

test("Hub rejects bad built-in messages with INVALID_INPUT and keeps the connection open", async () => {
  const hub = userHub();
  const a = await connectMemory(hub);
  await a.next();
  const bad = [
    { type: "subscribe" },
    { type: "subscribe", room: 42 },
    { type: "subscribe", room: "" },
    { type: "subscribe", room: "x".repeat(129) },
    { type: "subscribe", room: "a\u0000b" },
    { type: "subscribe", room: "ok", extra: true },
    { type: "ping", payload: 1 },
    { type: 5 },
    { nope: true },
    [1, 2],
    "just a string",
    null,
  ];
  for (const m of bad) {
    a.send(JSON.stringify(m));
    const err = await a.next();
    assert.equal(err.type, "error", JSON.stringify(m));
    assert.equal((err.data as { code: string }).code, "INVALID_INPUT", JSON.stringify(m));
  }
  a.send("{not json");
  assert.equal(((await a.next()).data as { code: string }).code, "INVALID_JSON");
  a.send({ type: "ping" });
  assert.equal((await a.next()).type, "pong");
  assert.equal(hub.roomCount, 0);
  assert.equal(a.isClosed, false);
  await hub.close();
});

test("Hub answers ping with pong carrying the server time", async () => {
  const clock = new ManualClock(5000);
  const hub = new Hub({ clock });
  const a = await connectMemory(hub);
  await a.next();
  a.send({ type: "ping" });
  const pong = await a.next();
  assert.equal(pong.type, "pong");
  assert.deepEqual(pong.data, { timestamp: 5000 });
  await hub.close();
});

test("Hub never lets a client name its own user id in authenticate", async () => {
  const hub = userHub();
  const anon = await connectMemory(hub);
  await anon.next();
  anon.send({ type: "authenticate", userId: "admin" });
  const err = await anon.next();
  assert.equal(err.type, "error");
  assert.equal((err.data as { code: string }).code, "UNAUTHENTICATED");
  assert.equal(hub.userCount, 0);
  const ada = await connectMemory(hub, { url: "http://localhost/ws?user=ada" });
  await ada.next();
  ada.send({ type: "authenticate", userId: "admin" });
  const ok = await ada.next();
  assert.equal(ok.type, "authenticated");
  assert.deepEqual(ok.data, { userId: "ada", status: "success" });
  await hub.close();
});

test("Hub authenticate hook verifies a token and re-indexes the user", async () => {
  const hub = new Hub({
    authenticate: (_c, msg) => msg.token === "good" ? "carol" : null,
    onError: () => {},
  });
  const a = await connectMemory(hub);
  await a.next();
  a.send({ type: "authenticate", token: "bad", userId: "admin" });
  assert.equal(((await a.next()).data as { code: string }).code, "UNAUTHENTICATED");
  a.send({ type: "authenticate", token: "good" });
  assert.deepEqual((await a.next()).data, { userId: "carol", status: "success" });
  assert.equal(hub.emit("hi", null, { users: "carol" }), 1);
  await hub.close();
});

function schemaOf(
  check: (v: unknown) => string | undefined,
): StandardSchemaV1<unknown, InboundMessage> {
  return {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: (value) => {
        const problem = check(value);
        return problem === undefined
          ? { value: value as InboundMessage }
          : { issues: [{ message: problem, path: ["text"] }] };
      },
    },
  };
}

test("Hub validates app messages through a Standard Schema before the hook sees them", async () => {
  const seen: unknown[] = [];
  const hub = new Hub({
    schema: schemaOf((v) =>
      typeof (v as { text?: unknown }).text === "string" ? undefined : "text must be a string"
    ),
    onMessage: (_c, m) => void seen.push(m),
  });
  const a = await connectMemory(hub);
  await a.next();
  a.send({ type: "say", text: 5 });
  const err = await a.next();
  assert.equal(err.type, "error");
  const data = err.data as { code: string; issues: { message: string; path: string[] }[] };
  assert.equal(data.code, "INVALID_INPUT");
  assert.deepEqual(data.issues, [{ message: "text must be a string", path: ["text"] }]);
  a.send({ type: "say", text: "hello" });
  a.send({ type: "ping" });
  await a.next("pong");
  assert.deepEqual(seen, [{ type: "say", text: "hello" }]);
  await hub.close();
});

test("Hub answers app messages with UNKNOWN_TYPE when no handler takes them", async () => {
  const hub = new Hub();
  const a = await connectMemory(hub);
  await a.next();
  a.send({ type: "mystery" });
  assert.equal(((await a.next()).data as { code: string }).code, "UNKNOWN_TYPE");
  await hub.close();
});

test("Hub turns a handler's MessageError into an error event and hides other failures", async () => {
  const reported: string[] = [];
  const hub = new Hub({
    onMessage: (_c, m) => {
      if (m.type === "refuse") {
        throw new MessageError("NOT_IN_ROOM", "Cannot send: join first", { room: "r" });
      }
      if (m.type === "boom") throw new Error("secret detail");
      if (m.type === "reject") return Promise.reject(new Error("async secret"));
    },
    onError: (_e, source) => void reported.push(source),
  });
  const a = await connectMemory(hub);
  await a.next();
  a.send({ type: "refuse" });
  assert.deepEqual((await a.next()).data, {
    room: "r",
    code: "NOT_IN_ROOM",
    message: "Cannot send: join first",
  });
  a.send({ type: "boom" });
  assert.deepEqual((await a.next()).data, { code: "INTERNAL_ERROR", message: "Internal error" });
  a.send({ type: "reject" });
  assert.deepEqual((await a.next()).data, { code: "INTERNAL_ERROR", message: "Internal error" });
  assert.deepEqual(reported, ["message", "message"]);
  assert.equal(a.isClosed, false);
  await hub.close();
});

test("Hub handles one connection's messages in order even when handlers are async", async () => {
  const order: number[] = [];
  const hub = new Hub({
    onMessage: async (_c, m) => {
      const n = m.n as number;
      if (n % 2 === 0) await new Promise((r) => setTimeout(r, 5));
      order.push(n);
    },
  });
  const a = await connectMemory(hub);
  await a.next();
  for (let n = 0; n < 6; n++) a.send({ type: "n", n });
  a.send({ type: "ping" });
  await a.next("pong");
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
  await hub.close();
});

test("Hub passes binary frames to onBinary as bytes, and refuses them without it", async () => {
  const got: Uint8Array[] = [];
  const hub = new Hub({ onBinary: (_c, d) => void got.push(d) });
  const a = await connectMemory(hub);
  await a.next();
  a.send(new Uint8Array([9, 8]));
  assert.deepEqual(got, [new Uint8Array([9, 8])]);
  await hub.close();
  const plain = new Hub();
  const b = await connectMemory(plain);
  await b.next();
  b.send(new Uint8Array([1]));
  assert.equal(((await b.next()).data as { code: string }).code, "INVALID_INPUT");
  await plain.close();
});

test("Hub closes a connection with 1009 when a frame is over maxMessageBytes", async () => {
  const hub = new Hub({ maxMessageBytes: 100 });
  const a = await connectMemory(hub);
  await a.next();
  a.send({ type: "ping", pad: "é".repeat(60) });
  const { code } = await a.closed;
  assert.equal(code, CloseCode.MESSAGE_TOO_BIG);
  assert.equal(a.messages.at(-1)?.type, "connection.closed");
  assert.equal(hub.connectionCount, 0);
  await hub.close();
});

test("Hub closes a slow client with 4000 while a fast client in the room gets everything in order", async () => {
  const hub = new Hub({ maxQueueMessages: 10, highWaterMark: 200, lowWaterMark: 50 });
  const fast = await connectMemory(hub);
  const slow = await connectMemory(hub);
  const slowId = ((await slow.next()).data as { clientId: string }).clientId;
  await fast.next();
  hub.join(slowId, "r");
  hub.join(((fast.messages[0].data) as { clientId: string }).clientId, "r");
  const slowConn = hub.connection(slowId)!;
  slow.pause();
  for (let i = 0; i < 100; i++) hub.emit("n", i, { rooms: "r" });
  const { code, reason } = await slow.closed;
  assert.equal(code, CloseCode.SLOW_CLIENT);
  assert.equal(reason, "slow client");
  assert.throws(() => slowConn.send("x", 1), ConnectionClosedError);
  const got = fast.messages.filter((m) => m.type === "n").map((m) => m.data);
  assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
  assert.equal(hub.roomSize("r"), 1);
  await hub.close();
});

test("Connection.send() throws SlowClientError when its queue overflows", async () => {
  const hub = new Hub({ maxQueueMessages: 2, highWaterMark: 10, lowWaterMark: 5 });
  const a = await connectMemory(hub);
  const id = ((await a.next()).data as { clientId: string }).clientId;
  const conn = hub.connection(id)!;
  a.pause();
  conn.send("a", "0123456789");
  conn.send("a", 1);
  conn.send("a", 2);
  assert.throws(() => conn.send("a", 3), SlowClientError);
  assert.equal(conn.state, "closed");
  assert.equal(conn.closeCode, CloseCode.SLOW_CLIENT);
  await hub.close();
});

test("A backpressured connection queues, then its writer drains in order once the socket empties", async () => {
  const hub = new Hub({ highWaterMark: 100, lowWaterMark: 10 });
  const a = await connectMemory(hub);
  const id = ((await a.next()).data as { clientId: string }).clientId;
  const conn = hub.connection(id)!;
  a.pause();
  for (let i = 0; i < 20; i++) conn.send("n", i);
  assert.ok(conn.queuedBytes > 0, "frames past the high-water mark are queued");
  a.resume();
  await new Promise((r) => setTimeout(r, 0));
  const got = a.messages.filter((m) => m.type === "n").map((m) => m.data);
  assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => i));
  assert.equal(conn.queuedBytes, 0);
  assert.equal(conn.state, "open");
  await hub.close();
});

test("With a corking transport, a burst of emits becomes one write per connection per tick", async () => {
  const hub = new Hub();
  const a = await connectMemory(hub, { cork: true });
  const b = await connectMemory(hub, { cork: true });
  await a.next();
  await b.next();
  const before = a.writes;
  for (let i = 0; i < 50; i++) hub.emit("n", i);
  assert.equal(a.messages.length, 1, "nothing is written until the turn ends");
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(a.writes - before, 1);
  assert.equal(b.messages.filter((m) => m.type === "n").length, 50);
  assert.deepEqual(
    a.messages.filter((m) => m.type === "n").map((m) => m.data),
    Array.from({ length: 50 }, (_, i) => i),
  );
  await hub.close();
});

test("A corked connection's queue is dropped when idle and made again for the next burst, in order", async () => {
  const clock = new ManualClock();
  const hub = new Hub({ clock, pingIntervalMs: 1000, idleTimeoutMs: 60_000 });
  const a = await connectMemory(hub, { cork: true });
  await a.next();
  const conn = hub.connections()[0];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 20; i++) hub.emit("n", round * 100 + i);
    assert.ok(conn.queuedBytes > 0, "a burst waits for the end of the turn");
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(conn.queuedBytes, 0);
    clock.advance(1000); // the hub's timer drops the empty queue
    await new Promise((r) => setTimeout(r, 0));
    hub.emit("n", round * 100 + 99); // a trickle: one frame in a turn
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.deepEqual(
    a.messages.filter((m) => m.type === "n").map((m) => m.data),
    [0, 100, 200].flatMap((b) => [...Array.from({ length: 20 }, (_, i) => b + i), b + 99]),
  );
  await hub.close();
});

test("Hub pings quiet connections and closes those that stop answering with 1001", async () => {
  const clock = new ManualClock();
  const hub = new Hub({ clock, pingIntervalMs: 1000, idleTimeoutMs: 3000 });
  const alive = await connectMemory(hub);
  const dead = await connectMemory(hub, { autoPong: false });
  await alive.next();
  await dead.next();
  for (let t = 0; t < 10; t++) {
    clock.advance(500);
    await new Promise((r) => setTimeout(r, 0));
  }
  assert.ok(alive.pings >= 2);
  assert.equal(alive.isClosed, false);
  const { code, reason } = await dead.closed;
  assert.equal(code, CloseCode.GOING_AWAY);
  assert.equal(reason, "idle timeout");
  await hub.close();
  assert.equal(clock.timerCount, 0, "the keepalive timer stops with the last connection");
});

test("Hub refuses non-WebSocket requests with 426 and bad origins with 403", async () => {
  const hub = new Hub({ origins: ["https://*.example.com", "http://partner.test:8080"] });
  const plain = await hub.upgrade(new Request("http://localhost/ws"));
  assert.equal(plain.ok, false);
  if (!plain.ok) {
    assert.equal(plain.response.status, 426);
    await plain.response.body?.cancel();
  }
  const status = async (origin?: string, url = "http://localhost:8000/ws") => {
    try {
      const c = await connectMemory(hub, { url, headers: origin === undefined ? {} : { origin } });
      c.close();
      return 101;
    } catch (e) {
      return (e as UpgradeRefusedError).status;
    }
  };
  assert.equal(await status(undefined), 101);
  assert.equal(await status("http://localhost:8000"), 101);
  assert.equal(await status("http://localhost:8001"), 403);
  assert.equal(await status("https://localhost:8000"), 403);
  assert.equal(await status("null"), 403);
  assert.equal(await status("https://app.example.com"), 101);
  assert.equal(await status("https://a.b.example.com"), 101);
  assert.equal(await status("https://example.com"), 403);
  assert.equal(await status("http://app.example.com"), 403);
  assert.equal(await status("https://evilexample.com"), 403);
  assert.equal(await status("http://partner.test:8080"), 101);
  assert.equal(await status("http://partner.test"), 403);
  await hub.close();
  const strict = new Hub({ allowNoOrigin: false });
  assert.equal(
    await connectMemory(strict).then(() => 101, (e) => (e as UpgradeRefusedError).status),
    403,
  );
  await strict.close();
});

test("Hub answers 401 when identify refuses, 503 when it throws, and 503 at maxConnections", async () => {
  const hub = new Hub({
    maxConnections: 1,
    identify: (req) => {
      const u = new URL(req.url).searchParams.get("user");
      if (u === "throw") throw new Error("db down");
      return u === "nobody" ? null : {};
    },
    onError: () => {},
  });
  const status = (url: string) =>
    connectMemory(hub, { url }).then(() => 101, (e) => (e as UpgradeRefusedError).status);
  assert.equal(await status("http://localhost/ws?user=nobody"), 401);
  // A throw is the server's failure (its session store is down), not a bad login (issue 18).
  assert.equal(await status("http://localhost/ws?user=throw"), 503);
  assert.equal(await status("http://localhost/ws"), 101);
  assert.equal(await status("http://localhost/ws"), 503);
  await hub.close();
  assert.equal(await status("http://localhost/ws"), 503, "a closed hub accepts nobody");
});

test("Hub closes a connection its connect hook rejects with 1008, and holds its messages until then", async () => {
  const seen: string[] = [];
  let allow = false;
  const hub = new Hub({
    onConnect: async () => {
      await new Promise((r) => setTimeout(r, 5));
      return allow;
    },
    onMessage: (_c, m) => void seen.push(m.type),
    onError: () => {},
  });
  const refused = await connectMemory(hub);
  refused.send({ type: "early" });
  assert.equal((await refused.closed).code, CloseCode.POLICY_VIOLATION);
  allow = true;
  const ok = await connectMemory(hub);
  ok.send({ type: "early" });
  assert.deepEqual(seen, []);
  ok.send({ type: "ping" });
  await ok.next("pong");
  assert.deepEqual(seen, ["early"]);
  await hub.close();
});

test("Hub calls the disconnect hook exactly once per connection, whoever closes first", async () => {
  const calls: { id: string; code: number }[] = [];
  const hub = new Hub({ onDisconnect: (c, { code }) => void calls.push({ id: c.id, code }) });
  const a = await connectMemory(hub, { syncClose: true });
  const id = ((await a.next()).data as { clientId: string }).clientId;
  const conn = hub.connection(id)!;
  conn.close(4100, "bye");
  conn.close(4100, "bye");
  a.close(1000);
  await new Promise((r) => setTimeout(r, 0));
  const b = await connectMemory(hub);
  await b.next();
  b.close(1000, "client leaving");
  b.close(1000, "client leaving");
  await hub.close();
  assert.deepEqual(calls.map((c) => c.code), [4100, 1000]);
  assert.equal(calls[0].id, id);
});

test("Connection.close() validates the code and reason", async () => {
  const hub = new Hub();
  const a = await connectMemory(hub);
  const id = ((await a.next()).data as { clientId: string }).clientId;
  const conn = hub.connection(id)!;
  assert.throws(() => conn.close(1005), RangeError);
  assert.throws(() => conn.close(2000), RangeError);
  assert.throws(() => conn.close(4000, "x".repeat(124)), RangeError);
  conn.close(4999, "é".repeat(61));
  assert.equal((await a.closed).code, 4999);
  await hub.close();
});

test("Hub.close() closes everyone with 1001 and connection.closed, then waits for disconnect hooks", async () => {
  let hooks = 0;
  const hub = new Hub({
    onDisconnect: async () => {
      await new Promise((r) => setTimeout(r, 5));
      hooks++;
    },
  });
  const clients = await Promise.all([1, 2, 3].map(() => connectMemory(hub)));
  {
    await using disposable = hub;
    assert.equal(disposable.connectionCount, 3);
  }
  assert.equal(hooks, 3);
  for (const c of clients) {
    const { code } = await c.closed;
    assert.equal(code, 1001);
    const last = c.messages.at(-1)!;
    assert.equal(last.type, "connection.closed");
    assert.deepEqual(last.data, { code: 1001, reason: "server shutting down" });
  }
  assert.equal(hub.connectionCount, 0);
  assert.equal(hub.closed, true);
});

test("Hub indexes are empty after every connection leaves", async () => {
  const hub = userHub();
  const clients: MemoryClient[] = [];
  for (let i = 0; i < 20; i++) {
    const c = await connectMemory(hub, { url: `http://localhost/ws?user=u${i % 3}` });
    await c.next();
    await join(c, `room-${i % 4}`);
    clients.push(c);
  }
  assert.equal(hub.roomCount, 4);
  assert.equal(hub.userCount, 3);
  for (const c of clients) c.close();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(hub.connectionCount, 0);
  assert.equal(hub.roomCount, 0);
  assert.equal(hub.userCount, 0);
  await hub.close();
});

test("A connection's rooms stay right through one room, several, and back to none", async () => {
  const hub = new Hub();
  const c = await connectMemory(hub);
  await c.next();
  const conn = hub.connections()[0];
  const rooms = () => [...conn.rooms].sort();
  conn.join("a");
  conn.join("a");
  assert.deepEqual(rooms(), ["a"]);
  conn.join("b");
  conn.join("c");
  assert.deepEqual(rooms(), ["a", "b", "c"]);
  conn.leave("b");
  conn.leave("b");
  assert.deepEqual(rooms(), ["a", "c"]);
  conn.leave("a");
  conn.leave("c");
  assert.deepEqual(rooms(), []);
  assert.equal(hub.roomCount, 0);
  conn.join("d");
  conn.join("e");
  assert.equal(hub.roomSize("d"), 1);
  assert.equal(hub.emit("x", 1, { rooms: "e" }), 1);
  c.close();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(hub.roomCount, 0);
  assert.deepEqual(rooms(), []);
  await hub.close();
});

test("A throwing disconnect hook is reported and does not break the hub", async () => {
  const errors: string[] = [];
  const hub = new Hub({
    onDisconnect: () => {
      throw new Error("oops");
    },
    onError: (_e, s) => void errors.push(s),
  });
  const a = await connectMemory(hub);
  a.close();
  const b = await connectMemory(hub);
  assert.equal((await b.next()).type, "connection.established");
  await hub.close();
  assert.deepEqual(errors, ["disconnect", "disconnect"]);
});

test("Hub leaves Object.prototype alone when clients send __proto__ keys", async () => {
  const hub = new Hub({ onMessage: () => {} });
  const a = await connectMemory(hub);
  await a.next();
  a.send(
    '{"type":"x","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
  );
  a.send('{"type":"subscribe","room":"r","__proto__":{"polluted":true}}');
  a.send({ type: "ping" });
  await a.next("pong");
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  await hub.close();
});

test("Connection exposes request params, query URL and per-connection locals", async () => {
  let seen: Connection | undefined;
  const hub = new Hub({
    onConnect: (c) => {
      seen = c;
      c.locals.count = 1;
    },
  });
  await connectMemory(hub, { url: "http://localhost/ws/abc?x=1", params: { id: "abc" } });
  assert.ok(seen);
  assert.equal(seen.request.params.id, "abc");
  assert.equal(seen.query.get("x"), "1");
  assert.equal(seen.locals.count, 1);
  await hub.close();
});

test("With a corking transport, a burst larger than the queue goes to a socket with room instead of closing it", async () => {
  const hub = new Hub({ maxQueueMessages: 8, highWaterMark: 1 << 20 });
  const a = await connectMemory(hub, { cork: true });
  await a.next();
  for (let i = 0; i < 100; i++) hub.emit("n", i);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(a.isClosed, false);
  assert.deepEqual(
    a.messages.filter((m) => m.type === "n").map((m) => m.data),
    Array.from({ length: 100 }, (_, i) => i),
  );
  a.pause();
  for (let i = 0; i < 100; i++) hub.emit("m", i);
  assert.equal(a.isClosed, false, "paused but under the high-water mark: still room in the socket");
  await hub.close();
});

test("Hub.on() routes one type to its handler and acks requests that carry an id", async () => {
  type In = { type: "add"; a: number; b: number } | { type: "slow"; ms: number } | { type: "fail" };
  // Recorded, asserted at the end: an assert.fail in the hook would be caught by the hub.
  const strays: unknown[] = [];
  const hub = new Hub<In>({ onMessage: (_c, m) => void strays.push(m) });
  hub.on("add", (_c, m) => m.a + m.b);
  hub.on("slow", async (_c, m) => {
    await new Promise((r) => setTimeout(r, m.ms));
    return { waited: m.ms };
  });
  hub.on("fail", () => {
    throw new MessageError("NOPE", "Cannot fail politely");
  });
  const a = await connectMemory(hub as unknown as Hub);
  await a.next();
  a.send({ type: "add", a: 1, b: 2, id: "r1" });
  assert.deepEqual((await a.next()).data, { result: 3, id: "r1" });
  a.send({ type: "slow", ms: 5, id: 7 });
  const ack = await a.next();
  assert.equal(ack.type, "ack");
  assert.deepEqual(ack.data, { result: { waited: 5 }, id: 7 });
  a.send({ type: "fail", id: "r3" });
  assert.deepEqual((await a.next()).data, {
    code: "NOPE",
    message: "Cannot fail politely",
    id: "r3",
  });
  a.send({ type: "add", a: 1, b: 1 });
  a.send({ type: "ping", id: "p" });
  const pong = await a.next();
  assert.equal(pong.type, "pong", "no ack without an id");
  assert.equal((pong.data as { id: string }).id, "p");
  assert.deepEqual(strays, [], "catch-all must not see handled types");
  await hub.close();
});

test("Hub.on() refuses built-in types, empty types and duplicates", async () => {
  const hub = new Hub();
  for (const t of ["ping", "subscribe", "unsubscribe", "authenticate", ""]) {
    assert.throws(() => hub.on(t, () => {}), TypeError, t);
  }
  hub.on("x", () => {});
  assert.throws(() => hub.on("x", () => {}), TypeError);
  assert.equal(hub.off("x"), true);
  hub.on("x", () => {});
  await hub.close();
});

test("Hub echoes request ids in built-in replies and errors, and refuses bad ids", async () => {
  const hub = userHub();
  const a = await connectMemory(hub);
  await a.next();
  a.send({ type: "subscribe", room: "r", id: "s1" });
  assert.deepEqual((await a.next()).data, { room: "r", id: "s1" });
  a.send({ type: "subscribe", room: "secret", id: "s2" });
  assert.deepEqual((await a.next()).data, {
    room: "secret",
    code: "SUBSCRIBE_REFUSED",
    message: "Cannot subscribe: room refused",
    id: "s2",
  });
  a.send({ type: "nobody-handles-this", id: 9 });
  const unknown = (await a.next()).data as { code: string; id: number };
  assert.equal(unknown.code, "UNKNOWN_TYPE");
  assert.equal(unknown.id, 9);
  for (const id of [{}, [], "", "x".repeat(129), null, true]) {
    a.send({ type: "ping", id });
    assert.equal(
      ((await a.next()).data as { code: string }).code,
      "INVALID_INPUT",
      JSON.stringify(id),
    );
  }
  await hub.close();
});

test("Hub.on() validates with its own schema and replies INVALID_INPUT with the request id", async () => {
  const hub = new Hub();
  hub.on("say", (_c, m) => m.text, {
    schema: schemaOf((v) =>
      typeof (v as { text?: unknown }).text === "string" ? undefined : "text must be a string"
    ),
  });
  const a = await connectMemory(hub);
  await a.next();
  a.send({ type: "say", text: 1, id: "q" });
  const err = (await a.next()).data as { code: string; id: string };
  assert.equal(err.code, "INVALID_INPUT");
  assert.equal(err.id, "q");
  a.send({ type: "say", text: "ok", id: "q2" });
  assert.deepEqual((await a.next()).data, { result: "ok", id: "q2" });
  await hub.close();
});

test("Batched framing: a client offering hubbub.batch.v1 gets many messages per frame, in order", async () => {
  const hub = new Hub();
  const batched = await connectMemory(hub, {
    headers: { "sec-websocket-protocol": "x, hubbub.batch.v1" },
  });
  const plain = await connectMemory(hub);
  assert.equal(batched.protocol, "hubbub.batch.v1");
  assert.equal(plain.protocol, "");
  await batched.next();
  await plain.next();
  const framesBefore = batched.textFrames;
  for (let i = 0; i < 100; i++) hub.emit("n", { i, text: "line\nbreak" });
  await new Promise((r) => setTimeout(r, 5));
  const got = batched.messages.filter((m) => m.type === "n").map((m) =>
    (m.data as { i: number }).i
  );
  assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
  assert.equal((batched.messages.at(-1)!.data as { text: string }).text, "line\nbreak");
  assert.equal(batched.textFrames - framesBefore, 1, "one frame for the whole burst");
  assert.equal(plain.messages.filter((m) => m.type === "n").length, 100);
  assert.equal(plain.textFrames, 101, "one message per frame without the subprotocol");
  await hub.close();
});

test("Batched framing is refused when the hub disables it", async () => {
  const hub = new Hub({ batchFraming: false });
  const c = await connectMemory(hub, { headers: { "sec-websocket-protocol": "hubbub.batch.v1" } });
  assert.equal(c.protocol, "");
  await hub.close();
});

test("Frames from separate events in one turn (e.g. many inbound messages) share one write", async () => {
  const hub = new Hub();
  const a = await connectMemory(hub, { cork: true });
  await a.next();
  const before = a.writes;
  for (let i = 0; i < 10; i++) queueMicrotask(() => hub.emit("n", i));
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(a.writes - before, 1);
  assert.equal(a.messages.filter((m) => m.type === "n").length, 10);
  await hub.close();
});
