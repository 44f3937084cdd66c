// HubClient logic against a scripted socket and manual timers: no network, no waiting.
import assert from "node:assert/strict";
import { z } from "zod";
import { defineContract } from "../../src/protocol/contract.ts";
import {
  connect,
  DisconnectedError,
  HubClient,
  type HubClientOptions,
  QueueFullError,
  RequestError,
  TimeoutError,
  UpgradeError,
} from "../../src/client/mod.ts";
import { test } from "../_harness.ts";
import { fakeWebSocket, ManualTimers, settle } from "./_fakes.ts";

const contract = defineContract({
  client: {
    "chat.send": z.object({ room: z.string(), text: z.string() }),
    "typing": z.object({}),
  },
  server: { "chat.message": z.object({ room: z.string(), text: z.string() }) },
  requests: { "chat.send": z.object({ seq: z.number() }) },
});

function setup(options: HubClientOptions = {}) {
  const fake = fakeWebSocket();
  const timers = new ManualTimers();
  const client = new HubClient<typeof contract>("ws://hub.test/ws", {
    WebSocket: fake.WebSocket,
    timers,
    random: () => 0.5,
    minDelayMs: 100,
    maxDelayMs: 1000,
    pingIntervalMs: 0,
    connectTimeoutMs: 0,
    batch: false, // the default offers hubbub.batch.v1: see the batch tests
    ...options,
  });
  const log: string[] = [];
  client.onLifecycle("open", (e) => log.push(`open ${e.clientId} ${e.reconnected}`));
  client.onLifecycle(
    "close",
    (e) => log.push(`close ${e.code} ${e.reason} ${e.willReconnect}`),
  );
  client.onLifecycle("reconnecting", (e) => log.push(`reconnecting ${e.attempt} ${e.delayMs}`));
  client.onLifecycle("error", (e) => log.push(`error ${e.source} ${(e.error as Error).message}`));
  return { client, fake, timers, log };
}

test("HubClient is connecting until connection.established, then open with the server's ids", async () => {
  const { client, fake, log } = setup();
  assert.equal(client.state, "connecting");
  assert.equal(fake.sockets.length, 1);
  assert.equal(fake.last().url, "ws://hub.test/ws");
  assert.equal(fake.last().protocols, undefined);
  assert.equal(fake.last().binaryType, "arraybuffer");
  fake.last().accept();
  assert.equal(client.state, "connecting");
  fake.last().event("connection.established", { clientId: "c1", userId: "ada" });
  assert.equal(client.state, "open");
  assert.equal(client.clientId, "c1");
  assert.equal(client.userId, "ada");
  assert.deepEqual(log, ["open c1 false"]);
  await client.close();
  assert.equal(client.state, "closed");
  assert.equal(client.clientId, undefined);
});

test("HubClient.send() writes {type, ...payload}; while connecting it queues and flushes in order", async () => {
  const { client, fake } = setup();
  client.send("chat.send", { room: "a", text: "queued 1" });
  client.send("typing", {});
  assert.deepEqual(fake.last().sent, []);
  fake.last().establish();
  client.send("chat.send", { room: "a", text: "live" });
  assert.deepEqual(fake.last().messages, [
    { type: "chat.send", room: "a", text: "queued 1" },
    { type: "typing" },
    { type: "chat.send", room: "a", text: "live" },
  ]);
  await client.close();
});

test("HubClient.send() refuses reserved fields, non-object payloads and built-in types", async () => {
  const { client } = setup();
  const loose = client as unknown as HubClient;
  assert.throws(() => loose.send("x", { id: 1 }), TypeError);
  assert.throws(() => loose.send("x", { type: "y" }), TypeError);
  assert.throws(() => loose.send("x", [1]), TypeError);
  assert.throws(() => loose.send("x", "text"), TypeError);
  assert.throws(() => loose.send("subscribe", { room: "a" }), TypeError);
  assert.throws(() => loose.send("", {}), TypeError);
  await assert.rejects(loose.request("x", { id: 1 }), TypeError);
  await client.close();
  assert.throws(() => client.send("typing", {}), DisconnectedError);
  await assert.rejects(client.request("typing", {}), DisconnectedError);
  await assert.rejects(client.subscribe("a"), DisconnectedError);
});

test("HubClient.request() resolves with the ack's result and rejects with RequestError on error", async () => {
  const { client, fake } = setup();
  fake.last().establish();
  const ok = client.request("chat.send", { room: "a", text: "hi" });
  const bad = client.request("chat.send", { room: "b", text: "hi" });
  const [m1, m2] = fake.last().messages;
  assert.equal(typeof m1.id, "number");
  assert.notEqual(m1.id, m2.id);
  assert.deepEqual({ ...m1, id: 0 }, { type: "chat.send", room: "a", text: "hi", id: 0 });
  fake.last().event("error", { id: m2.id, code: "NOT_IN_ROOM", message: "join first", room: "b" });
  fake.last().event("ack", { id: m1.id, result: { seq: 7 } });
  const result = await ok;
  assert.equal(result.seq, 7);
  const error = await bad.catch((e) => e);
  assert.ok(error instanceof RequestError);
  assert.equal(error.code, "NOT_IN_ROOM");
  assert.equal(error.message, "join first");
  assert.equal(error.id, m2.id);
  assert.equal(error.data.room, "b");
  await client.close();
});

test("HubClient.request() times out with a TimeoutError, aborts with the signal's reason, and ignores late replies", async () => {
  const { client, fake, timers, log } = setup({ requestTimeoutMs: 1000 });
  fake.last().establish();
  const slow = client.request("typing", {});
  const quick = client.request("typing", {}, { timeout: 50 });
  const controller = new AbortController();
  const aborted = client.request("typing", {}, { signal: controller.signal });
  controller.abort(new Error("user left"));
  await assert.rejects(aborted, /user left/);
  timers.advance(50);
  await assert.rejects(quick, (e: Error) => e.name === "TimeoutError");
  timers.advance(950);
  await assert.rejects(slow, (e: DOMException) => e.name === "TimeoutError");
  for (const m of fake.last().messages) fake.last().event("ack", { id: m.id, result: 1 });
  fake.last().event("error", { id: 999, code: "LATE", message: "late" });
  assert.deepEqual(log, ["open c1 false"], "late replies to settled requests are ignored");
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(
    client.request("typing", {}, { signal: pre.signal }),
    (e: Error) => e.name === "AbortError",
  );
  assert.equal(timers.pending.length, 0, "no timer left behind");
  await client.close();
});

test("HubClient rejects a request in flight when the connection drops, and sends a queued one after the reconnect", async () => {
  const { client, fake, timers } = setup();
  fake.last().establish();
  const inFlight = client.request("typing", {});
  fake.last().drop(1006);
  await assert.rejects(
    inFlight,
    (e: DisconnectedError) => e instanceof DisconnectedError && e.code === 1006,
  );
  assert.equal(client.state, "reconnecting");
  const queued = client.request("chat.send", { room: "a", text: "offline" });
  timers.advance(50);
  assert.equal(fake.sockets.length, 2);
  fake.last().establish("c2");
  const [m] = fake.last().messages;
  assert.equal(m.text, "offline");
  fake.last().event("ack", { id: m.id, result: { seq: 1 } });
  assert.deepEqual(await queued, { seq: 1 });
  await client.close();
});

test("HubClient reconnects with full-jitter backoff: random × min(maxDelayMs, minDelayMs × 2^(n−1))", async () => {
  const draws = [0.5, 0.5, 0.5, 0.5, 0.5, 0.25];
  const { client, fake, timers, log } = setup({ random: () => draws.shift() ?? 0.5 });
  fake.last().establish();
  fake.last().drop(1006);
  for (let i = 0; i < 5; i++) {
    const delay = timers.pending[0];
    timers.advance(delay);
    fake.last().drop(1006); // the attempt fails
  }
  assert.deepEqual(log, [
    "open c1 false",
    "close 1006  true",
    "reconnecting 1 50",
    "reconnecting 2 100",
    "reconnecting 3 200",
    "reconnecting 4 400",
    "reconnecting 5 500",
    "reconnecting 6 250",
  ]);
  assert.equal(fake.sockets.length, 6);
  timers.advance(250);
  fake.last().establish("c7");
  assert.equal(log.at(-1), "open c7 true");
  fake.last().drop(1011);
  assert.equal(log.at(-1), "reconnecting 1 50", "a successful open resets the attempt count");
  await client.close();
});

test("HubClient gives up after maxRetries failed attempts and closes with the last code", async () => {
  const { client, fake, timers, log } = setup({ maxRetries: 2 });
  fake.last().drop(1006);
  timers.advance(1000);
  fake.last().drop(1006);
  timers.advance(1000);
  fake.last().drop(1006, "refused");
  assert.equal(client.state, "closed");
  assert.deepEqual(await client.closed, { code: 1006, reason: "refused" });
  assert.deepEqual(log, [
    "reconnecting 1 50",
    "reconnecting 2 100",
    "close 1006 refused false",
  ]);
  assert.equal(timers.pending.length, 0);
  await client.close();
});

for (const code of [1000, 1008, 4001, 4003]) {
  test(`HubClient stops for good on close code ${code} and exposes the reason`, async () => {
    const { client, fake, timers, log } = setup();
    fake.last().establish();
    const pending = client.request("typing", {});
    fake.last().drop(code, "bye");
    assert.equal(client.state, "closed");
    assert.deepEqual(client.closeInfo, { code, reason: "bye" });
    assert.deepEqual(await client.closed, { code, reason: "bye" });
    await assert.rejects(pending, DisconnectedError);
    assert.deepEqual(log, ["open c1 false", `close ${code} bye false`]);
    assert.equal(timers.pending.length, 0);
    assert.equal(fake.sockets.length, 1);
    await client.close();
  });
}

test("HubClient takes the code from connection.closed when the socket then drops without one", async () => {
  const { client, fake } = setup();
  fake.last().establish();
  fake.last().event("connection.closed", { code: 4003, reason: "replaced" });
  fake.last().drop(1006);
  assert.deepEqual(await client.closed, { code: 4003, reason: "replaced" });
});

test("HubClient re-joins its rooms after a reconnect, before flushing what was queued", async () => {
  const { client, fake, timers } = setup();
  fake.last().establish();
  const joined = client.subscribe("lobby");
  const [sub] = fake.last().messages;
  assert.deepEqual({ ...sub, id: 0 }, { type: "subscribe", room: "lobby", id: 0 });
  fake.last().event("subscribed", { room: "lobby", id: sub.id });
  await joined;
  assert.deepEqual(client.rooms, ["lobby"]);
  fake.last().drop(1001, "restart");
  client.send("chat.send", { room: "lobby", text: "while offline" });
  const second = client.subscribe("second"); // asked while offline: resolves after the reconnect
  timers.advance(100);
  fake.last().establish("c2");
  const sent = fake.last().messages;
  assert.deepEqual(sent.map((m) => [m.type, m.room]), [
    ["subscribe", "lobby"],
    ["subscribe", "second"],
    ["chat.send", "lobby"],
  ]);
  fake.last().event("subscribed", { room: "lobby", id: sent[0].id });
  fake.last().event("subscribed", { room: "second", id: sent[1].id });
  await second;
  assert.deepEqual(client.rooms, ["lobby", "second"]);
  await client.close();
});

test("HubClient.subscribe() rejects a refusal and drops the room; a refused re-join is an error event", async () => {
  const { client, fake, timers, log } = setup();
  fake.last().establish();
  const refused = client.subscribe("secret");
  const ok = client.subscribe("lobby");
  const [s1, s2] = fake.last().messages;
  fake.last().event("error", {
    id: s1.id,
    code: "SUBSCRIBE_REFUSED",
    room: "secret",
    message: "Cannot subscribe: room refused",
  });
  fake.last().event("subscribed", { room: "lobby", id: s2.id });
  await assert.rejects(refused, (e: RequestError) => e.code === "SUBSCRIBE_REFUSED");
  await ok;
  assert.deepEqual(client.rooms, ["lobby"]);
  fake.last().drop(1006);
  timers.advance(100);
  fake.last().establish("c2");
  const [again] = fake.last().messages;
  fake.last().event("error", { id: again.id, code: "SUBSCRIBE_REFUSED", message: "no more" });
  assert.deepEqual(client.rooms, []);
  assert.equal(log.at(-1), "error resubscribe no more");
  await client.close();
});

test("HubClient.subscribe() that times out drops the room; unsubscribe() acks online and resolves at once offline", async () => {
  const { client, fake, timers } = setup();
  fake.last().establish();
  const slow = client.subscribe("slow", { timeout: 10 });
  timers.advance(10);
  await assert.rejects(slow, (e: Error) => e.name === "TimeoutError");
  assert.deepEqual(client.rooms, []);
  assert.deepEqual(fake.last().messages.map((m) => m.type), ["subscribe", "unsubscribe"]);
  const joined = client.subscribe("lobby");
  fake.last().event("subscribed", { room: "lobby", id: fake.last().messages[2].id });
  await joined;
  const left = client.unsubscribe("lobby");
  const un = fake.last().messages[3];
  assert.deepEqual({ ...un, id: 0 }, { type: "unsubscribe", room: "lobby", id: 0 });
  fake.last().event("unsubscribed", { room: "lobby", id: un.id });
  await left;
  const x = client.subscribe("x");
  fake.last().drop(1006);
  await client.unsubscribe("x");
  await assert.rejects(x, (e: Error) => e.name === "AbortError");
  assert.deepEqual(client.rooms, []);
  await client.close();
});

test("HubClient refuses the newest message when its offline queue is full", async () => {
  const { client, fake } = setup({ maxQueuedMessages: 2 });
  client.send("typing", {});
  const r = client.request("typing", {});
  assert.throws(() => client.send("typing", {}), QueueFullError);
  await assert.rejects(client.request("typing", {}), QueueFullError);
  fake.last().establish();
  assert.equal(fake.last().sent.length, 2);
  fake.last().event("ack", { id: fake.last().messages[1].id, result: null });
  assert.equal(await r, null);
  await client.close();
});

test("HubClient pings when idle, lets any frame count as life, and reconnects when none comes back", async () => {
  const { client, fake, timers, log } = setup({ pingIntervalMs: 1000, pongTimeoutMs: 300 });
  fake.last().establish();
  timers.advance(1000);
  assert.deepEqual(fake.last().messages, [{ type: "ping" }]);
  fake.last().event("pong", { timestamp: 1 });
  timers.advance(300);
  assert.equal(client.state, "open");
  timers.advance(600);
  fake.last().event("chat.message", { room: "a", text: "traffic" });
  timers.advance(1000); // a frame arrived during the interval: no ping
  assert.equal(fake.last().sent.length, 1);
  timers.advance(400);
  assert.equal(fake.last().sent.length, 2, "idle for a whole interval: ping");
  const dead = fake.last();
  timers.advance(300);
  assert.equal(client.state, "reconnecting");
  assert.deepEqual(dead.closedWith, { code: 1000, reason: "keepalive timeout" });
  assert.deepEqual(log.slice(-2), ["close 1006 keepalive timeout true", "reconnecting 1 50"]);
  timers.advance(50);
  assert.equal(fake.sockets.length, 2);
  await client.close();
});

test("HubClient drops a handshake that does not finish within connectTimeoutMs and retries", async () => {
  const { client, fake, timers, log } = setup({ connectTimeoutMs: 500 });
  fake.last().accept(); // TCP and upgrade fine, but no connection.established
  timers.advance(500);
  assert.equal(fake.last().closedWith?.reason, "connect timeout");
  assert.deepEqual(log, ["reconnecting 1 50"]);
  timers.advance(50);
  fake.last().establish("c2");
  assert.equal(client.state, "open");
  await client.close();
});

test("HubClient offers hubbub.batch.v1 only with batch: true and splits frames only when it was selected", async () => {
  const plain = setup();
  plain.fake.last().establish();
  const got: string[] = [];
  plain.client.on("chat.message", (m) => got.push(m.text));
  const two = '{"type":"chat.message","data":{"room":"a","text":"1"},"timestamp":1}\n' +
    '{"type":"chat.message","data":{"room":"a","text":"2"},"timestamp":1}';
  plain.fake.last().frame(two);
  assert.deepEqual(got, []);
  assert.equal(plain.log.at(-1)?.startsWith("error parse"), true);
  await plain.client.close();

  const batched = setup({ batch: true });
  assert.deepEqual(batched.fake.last().protocols, ["hubbub.batch.v1"]);
  batched.fake.last().accept("hubbub.batch.v1");
  batched.fake.last().frame(
    '{"type":"connection.established","data":{"clientId":"b1"},"timestamp":1}\n' + two,
  );
  const texts: string[] = [];
  batched.client.on("chat.message", (m) => texts.push(m.text));
  batched.fake.last().frame(two);
  assert.equal(batched.client.clientId, "b1");
  assert.deepEqual(texts, ["1", "2"]);
  await batched.client.close();
});

test("HubClient.on() delivers app events by type until unsubscribed; a throwing listener is reported", async () => {
  const { client, fake, log } = setup();
  fake.last().establish();
  const seen: unknown[] = [];
  const off = client.on("chat.message", (data, event) => seen.push([data.text, event.type]));
  client.on("chat.message", () => {
    throw new Error("boom");
  });
  fake.last().event("chat.message", { room: "a", text: "one" });
  off();
  fake.last().event("chat.message", { room: "a", text: "two" });
  assert.deepEqual(seen, [["one", "chat.message"]]);
  assert.deepEqual(log.slice(-2), ["error listener boom", "error listener boom"]);
  fake.last().event("error", { code: "INVALID_INPUT", message: "Message failed validation" });
  assert.equal(log.at(-1), "error server Message failed validation");
  await client.close();
});

test("HubClient.events() yields app events in order, keeps the newest when behind, and ends on close", async () => {
  const { client, fake } = setup();
  fake.last().establish();
  const all = client.events();
  const small = client.events({ bufferSize: 2 });
  for (const text of ["a", "b", "c"]) fake.last().event("chat.message", { room: "r", text });
  fake.last().event("pong", { timestamp: 1 }); // built-ins are not app events
  const first = await all.next();
  assert.equal(first.done, false);
  assert.deepEqual(first.value, {
    type: "chat.message",
    data: { room: "r", text: "a" },
    timestamp: 1,
  });
  const texts: string[] = [];
  for await (const e of small) {
    texts.push((e.data as { text: string }).text);
    if (texts.length === 2) break; // return() detaches
  }
  assert.deepEqual(texts, ["b", "c"], "the oldest was dropped");
  const waiting = all.next();
  await client.close();
  assert.equal((await all.next()).done, false, "buffered events are still read after close");
  assert.equal((await waiting).done, false);
  assert.equal((await all.next()).done, true);
  assert.equal((await client.events().next()).done, true);
});

test("HubClient.events() ends when its signal aborts", async () => {
  const { client, fake } = setup();
  fake.last().establish();
  const controller = new AbortController();
  const it = client.events({ signal: controller.signal });
  const next = it.next();
  controller.abort();
  assert.equal((await next).done, true);
  fake.last().event("chat.message", { room: "r", text: "late" });
  assert.equal((await it.next()).done, true);
  await client.close();
});

test("HubClient.close() is idempotent, rejects pending work, validates its code, and waits for the socket", async () => {
  const { client, fake, log } = setup();
  fake.last().establish();
  const req = client.request("typing", {});
  const sub = client.subscribe("lobby");
  assert.throws(() => client.close(1001), RangeError);
  assert.throws(() => client.close(1000, "x".repeat(124)), RangeError);
  let closed = false;
  const done = client.close(4000, "done").then(() => closed = true);
  assert.equal(client.state, "closed");
  assert.equal(closed, false, "waits for the socket's close event");
  await done;
  assert.deepEqual(fake.last().closedWith, { code: 4000, reason: "done" });
  await assert.rejects(req, (e: DisconnectedError) => e.code === 4000);
  await assert.rejects(sub, DisconnectedError);
  await client.close();
  await client[Symbol.asyncDispose]();
  assert.deepEqual(log, ["open c1 false", "close 4000 done false"]);
});

test("HubClient sends authenticate first on every connection when configured", async () => {
  let n = 0;
  const { client, fake, timers, log } = setup({
    authenticate: () => Promise.resolve({ token: `t${++n}` }),
  });
  fake.last().establish();
  client.send("typing", {}); // still connecting: authenticate comes first
  await settle();
  assert.equal(client.state, "open");
  const [auth, typing] = fake.last().messages;
  assert.deepEqual({ ...auth, id: 0 }, { type: "authenticate", token: "t1", id: 0 });
  assert.equal(typing.type, "typing");
  fake.last().event("authenticated", { userId: "ada", status: "success", id: auth.id });
  assert.equal(client.userId, "ada");
  fake.last().drop(1006);
  timers.advance(100);
  fake.last().establish("c2");
  await settle();
  const [again] = fake.last().messages;
  assert.equal(again.token, "t2");
  fake.last().event("error", { id: again.id, code: "UNAUTHENTICATED", message: "bad token" });
  assert.equal(log.at(-1), "error authenticate bad token");
  await client.close();
});

test("HubClient drops the connection and retries when its authenticate hook throws", async () => {
  const { client, fake, log } = setup({
    authenticate: () => {
      throw new Error("no token");
    },
  });
  fake.last().establish();
  assert.deepEqual(log, ["error authenticate no token", "reconnecting 1 50"]);
  assert.equal(fake.last().closedWith?.reason, "authenticate hook failed");
  await client.close();
});

test("HubClient validates its URL and options and needs a WebSocket constructor", async () => {
  const fake = fakeWebSocket();
  assert.throws(() => new HubClient("not a url", { WebSocket: fake.WebSocket }), TypeError);
  assert.throws(() => new HubClient("ftp://x/ws", { WebSocket: fake.WebSocket }), TypeError);
  assert.throws(
    () => new HubClient("ws://x/ws", { WebSocket: fake.WebSocket, maxRetries: -1 }),
    RangeError,
  );
  const saved = Object.getOwnPropertyDescriptor(globalThis, "WebSocket");
  // deno-lint-ignore no-explicit-any
  delete (globalThis as any).WebSocket;
  try {
    assert.throws(() => new HubClient("ws://x/ws"), /no global WebSocket/);
  } finally {
    if (saved) Object.defineProperty(globalThis, "WebSocket", saved);
  }
  const c = new HubClient("https://example.test/ws#frag", { WebSocket: fake.WebSocket });
  assert.equal(fake.last().url, "wss://example.test/ws");
  await c.close();
});

test("connect() resolves once open, rejects when closed for good first, and rejects on abort", async () => {
  const fake = fakeWebSocket();
  const timers = new ManualTimers();
  const base = { WebSocket: fake.WebSocket, timers, pingIntervalMs: 0, connectTimeoutMs: 0 };
  const opening = connect("ws://x/ws", base);
  fake.last().establish();
  const client = await opening;
  assert.equal(client.state, "open");
  await client.close();

  const refused = connect("ws://x/ws", base);
  fake.last().accept();
  fake.last().drop(1008, "connection refused");
  await assert.rejects(refused, (e: DisconnectedError) => e.code === 1008);

  const controller = new AbortController();
  const aborted = connect("ws://x/ws", { ...base, signal: controller.signal });
  controller.abort(new Error("gave up"));
  await assert.rejects(aborted, /gave up/);
  assert.equal(fake.last().closedWith?.code, 1000);
});

test("HubClient offers hubbub.batch.v1 by default, and batch: false opts out", async () => {
  const byDefault = setup({ batch: undefined });
  assert.deepEqual(byDefault.fake.last().protocols, ["hubbub.batch.v1"]);
  await byDefault.client.close();
  const optedOut = setup({ batch: false });
  assert.equal(optedOut.fake.last().protocols, undefined);
  await optedOut.client.close();
});

test("HubClient's connect timeout runs until open, so a hung authenticate hook is retried; keepalive has its own timer", async () => {
  let hooks = 0;
  const { client, fake, timers, log } = setup({
    connectTimeoutMs: 500,
    pingIntervalMs: 1000,
    authenticate: () => ++hooks === 1 ? new Promise<never>(() => {}) : { token: "t" },
  });
  fake.last().establish();
  assert.equal(client.state, "connecting");
  assert.deepEqual(timers.pending, [500], "the connect timer outlives connection.established");
  timers.advance(500);
  assert.equal(fake.sockets[0].closedWith?.reason, "connect timeout");
  assert.deepEqual(log, ["reconnecting 1 50"]);
  timers.advance(50);
  fake.last().establish("c2");
  assert.equal(client.state, "open");
  assert.deepEqual(timers.pending, [1000], "once open, only keepalive's timer runs");
  await client.close();
});

test("HubClient reports an upgrade refused with an HTTP status, unlike a server that is down", async () => {
  const { client, fake, timers, log } = setup();
  fake.last().refuse(401);
  assert.deepEqual(log, [
    "error socket Cannot connect to ws://hub.test/ws: the server refused the WebSocket upgrade with HTTP 401",
    "reconnecting 1 50",
  ]);
  timers.advance(50);
  fake.last().refuse(403);
  assert.match(log[2], /HTTP 403; 2 attempts in a row ended before the socket opened$/);
  timers.advance(100);
  fake.last().drop(1006); // nothing listening: no status, no error event
  assert.deepEqual(log.slice(3), ["reconnecting 2 100", "reconnecting 3 200"]);
  await client.close();
});

test("connect() rejects with UpgradeError when every attempt was refused before the socket opened", async () => {
  const fake = fakeWebSocket();
  const timers = new ManualTimers();
  const base = {
    WebSocket: fake.WebSocket,
    timers,
    pingIntervalMs: 0,
    connectTimeoutMs: 0,
    maxRetries: 1,
    minDelayMs: 10,
  };
  const refused = connect("ws://x/ws", base);
  fake.last().refuse(401);
  timers.advance(10);
  fake.last().refuse(401);
  const error = await refused.catch((e) => e);
  assert.ok(error instanceof UpgradeError);
  assert.ok(error instanceof DisconnectedError, "still a DisconnectedError");
  assert.equal(error.status, 401);
  assert.equal(error.attempts, 2);
  assert.equal(error.code, 1006, "Deno's code 0 reads 1006");
  assert.match(error.message, /refused the WebSocket upgrade with HTTP 401/);

  const down = connect("ws://x/ws", base);
  fake.last().drop(1006);
  timers.advance(10);
  fake.last().drop(1006);
  const unknown = await down.catch((e) => e);
  assert.ok(unknown instanceof UpgradeError);
  assert.equal(unknown.status, undefined);
  assert.match(unknown.message, /refused the WebSocket upgrade or is unreachable/);
});

test("connect()'s timeout error is a TimeoutError that says what it waited for", async () => {
  const fake = fakeWebSocket();
  const timers = new ManualTimers();
  const base = { WebSocket: fake.WebSocket, timers, pingIntervalMs: 0, connectTimeoutMs: 0 };
  const reason = new DOMException("Signal timed out.", "TimeoutError");

  const controller = new AbortController();
  const handshake = connect("ws://x/ws", { ...base, signal: controller.signal });
  fake.last().accept(); // upgraded, but no connection.established
  controller.abort(reason);
  const error = await handshake.catch((e) => e);
  assert.ok(error instanceof TimeoutError);
  assert.ok(error instanceof DOMException);
  assert.equal(error.name, "TimeoutError");
  assert.equal(error.cause, reason);
  assert.equal(
    error.message,
    "Cannot connect to ws://x/ws: timed out waiting for the server's connection.established (first attempt)",
  );

  const later = new AbortController();
  const retrying = connect("ws://x/ws", { ...base, minDelayMs: 10, signal: later.signal });
  fake.last().refuse(503);
  timers.advance(10);
  fake.last().refuse(503);
  later.abort(reason);
  assert.match(
    (await retrying.catch((e) => e)).message,
    /waiting for the next reconnect attempt \(after 2 failed attempts; the last refused by the server with HTTP 503\)$/,
  );
});

test("HubClient's request and subscribe timeouts are the exported TimeoutError", async () => {
  const { client, fake, timers } = setup({ requestTimeoutMs: 100 });
  fake.last().establish();
  const request = client.request("typing", {});
  const subscribe = client.subscribe("lobby");
  timers.advance(100);
  const [r, s] = await Promise.all([request.catch((e) => e), subscribe.catch((e) => e)]);
  assert.ok(r instanceof TimeoutError && s instanceof TimeoutError);
  assert.equal(r.message, 'Cannot complete request "typing": timed out after 100 ms');
  assert.equal(s.message, 'Cannot complete subscribe "lobby": timed out after 100 ms');
  await client.close();
});

// Never called: only type-checked (deno check of tests/ fails if these stop holding).
export async function _compileOnly(client: HubClient<typeof contract>): Promise<void> {
  client.send("chat.send", { room: "a", text: "b" });
  // @ts-expect-error: text must be a string
  client.send("chat.send", { room: "a", text: 1 });
  // @ts-expect-error: a missing field
  client.send("chat.send", { room: "a" });
  // @ts-expect-error: not a client message type
  client.send("chat.nope", {});
  const { seq }: { seq: number } = await client.request("chat.send", { room: "a", text: "b" });
  // @ts-expect-error: the result has no `id`
  (await client.request("chat.send", { room: "a", text: "b" })).id;
  const untyped: unknown = await client.request("typing", {});
  client.on("chat.message", (data, event) => {
    const text: string = data.text;
    const type: "chat.message" = event.type;
    return [text, type, seq, untyped];
  });
  // @ts-expect-error: not a server event type
  client.on("chat.nope", () => {});
  for await (const e of client.events()) {
    if (e.type === "chat.message") {
      const room: string = e.data.room;
      // @ts-expect-error: no such field
      e.data.nope;
      return void room;
    }
  }
  const loose = new HubClient("ws://x", { WebSocket }); // the platform's constructor fits
  loose.send("anything", { at: "all" });
  const r: unknown = await loose.request("anything", {});
  return void r;
}
