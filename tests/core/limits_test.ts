import assert from "node:assert/strict";
import { CloseCode, Hub } from "../../mod.ts";
import { connectMemory, ManualClock, type UpgradeRefusedError } from "../../src/testing/mod.ts";
import { test, until } from "../_harness.ts";

const statusOf = (p: Promise<unknown>) =>
  p.then(() => 101, (e) => (e as UpgradeRefusedError).status);

test("A flooding client gets RATE_LIMITED, then is closed with 4002, while others stay fast", async () => {
  const clock = new ManualClock();
  const hub = new Hub({
    clock,
    rateLimit: { messagesPerSecond: 10, burst: 20, closeAfterDropped: 50 },
  });
  const flood = await connectMemory(hub);
  const calm = await connectMemory(hub);
  await flood.next();
  await calm.next();
  for (let i = 0; i < 20; i++) flood.send({ type: "ping" });
  assert.equal(flood.messages.filter((m) => m.type === "pong").length, 20, "the burst passes");
  flood.send({ type: "ping" });
  const err = await flood.next("error");
  assert.equal((err.data as { code: string }).code, "RATE_LIMITED");
  for (let i = 0; i < 10; i++) flood.send({ type: "ping" });
  assert.equal(
    flood.messages.filter((m) => m.type === "error").length,
    1,
    "at most one warning a second",
  );
  clock.advance(1000);
  flood.send({ type: "ping" });
  assert.equal(flood.messages.at(-1)?.type, "pong", "tokens refill over time");
  for (let i = 0; i < 100 && !flood.isClosed; i++) flood.send({ type: "ping" });
  assert.equal((await flood.closed).code, CloseCode.RATE_LIMITED);
  calm.send({ type: "ping" });
  assert.equal((await calm.next("pong")).type, "pong");
  await hub.close();
});

test("rateLimit: false turns the limiter off", async () => {
  const hub = new Hub({ rateLimit: false });
  const c = await connectMemory(hub);
  await c.next();
  for (let i = 0; i < 1000; i++) c.send({ type: "ping" });
  assert.equal(c.messages.filter((m) => m.type === "pong").length, 1000);
  await hub.close();
});

test("A client cannot subscribe to more than maxRoomsPerConnection rooms", async () => {
  const hub = new Hub({ canJoin: () => true, maxRoomsPerConnection: 2 });
  const c = await connectMemory(hub);
  const id = ((await c.next()).data as { clientId: string }).clientId;
  for (const room of ["a", "b"]) {
    c.send({ type: "subscribe", room });
    assert.equal((await c.next()).type, "subscribed");
  }
  c.send({ type: "subscribe", room: "a" });
  assert.equal((await c.next()).type, "subscribed", "re-joining a room is not a new room");
  c.send({ type: "subscribe", room: "c" });
  const err = (await c.next()).data as { code: string; limit: number };
  assert.equal(err.code, "LIMIT_EXCEEDED");
  assert.equal(err.limit, 2);
  assert.equal(hub.join(id, "server-side"), true, "server join is not limited");
  await hub.close();
});

test("maxConnectionsPerUser refuses the next tab with 429", async () => {
  const hub = new Hub({ identify: () => ({ userId: "ada" }), maxConnectionsPerUser: 2 });
  await connectMemory(hub);
  await connectMemory(hub);
  assert.equal(await statusOf(connectMemory(hub)), 429);
  await hub.close();
});

test("identify metadata over maxMetadataBytes is refused with 500 and reported", async () => {
  const errors: string[] = [];
  const hub = new Hub({
    identify: () => ({ metadata: { blob: "x".repeat(100) } }),
    maxMetadataBytes: 50,
    onError: (e) => void errors.push(String(e)),
  });
  assert.equal(await statusOf(connectMemory(hub)), 500);
  assert.match(errors[0], /maxMetadataBytes/);
  await hub.close();
});

test("Upgrades waiting on identify are bounded by maxPendingUpgrades", async () => {
  const gate = Promise.withResolvers<void>();
  const hub = new Hub({
    identify: async () => {
      await gate.promise;
      return {};
    },
    maxPendingUpgrades: 2,
  });
  const waiting = [connectMemory(hub), connectMemory(hub)];
  assert.equal(await statusOf(connectMemory(hub)), 503);
  gate.resolve();
  assert.deepEqual(await Promise.all(waiting.map(statusOf)), [101, 101]);
  await hub.close();
});

test("Frames held behind a slow async handler are bounded by maxPendingMessages", async () => {
  const gate = Promise.withResolvers<void>();
  let handled = 0;
  const hub = new Hub({
    maxPendingMessages: 5,
    onMessage: async () => {
      await gate.promise;
      handled++;
    },
  });
  const c = await connectMemory(hub);
  await c.next();
  for (let i = 0; i < 20; i++) c.send({ type: "work" });
  const err = await c.next("error");
  assert.equal((err.data as { code: string }).code, "RATE_LIMITED");
  gate.resolve();
  await until(() => handled === 6, 5000, "the held frames to be handled");
  c.send({ type: "ping" });
  await c.next("pong");
  assert.equal(handled, 6, "the one in flight and the five held; the rest were dropped");
  await hub.close();
});

test("authTimeoutMs closes connections that do not authenticate in time with 4001", async () => {
  const clock = new ManualClock();
  const hub = new Hub({
    clock,
    authTimeoutMs: 5000,
    authenticate: (_c, m) => m.token === "t" ? "ada" : null,
  });
  const late = await connectMemory(hub);
  const prompt = await connectMemory(hub);
  await late.next();
  await prompt.next();
  prompt.send({ type: "authenticate", token: "t" });
  assert.equal((await prompt.next()).type, "authenticated");
  clock.advance(5001);
  assert.equal((await late.closed).code, CloseCode.UNAUTHENTICATED);
  assert.equal(prompt.isClosed, false);
  await hub.close();
  assert.equal(clock.timerCount, 0, "no timer left behind");
});

test("hub.close({ drainMs }) lets queued frames drain before closing, and gives up at the deadline", async () => {
  const hub = new Hub({ highWaterMark: 100, lowWaterMark: 10 });
  const reader = await connectMemory(hub);
  const stuck = await connectMemory(hub);
  await reader.next();
  await stuck.next();
  reader.pause();
  stuck.pause();
  for (let i = 0; i < 50; i++) hub.emit("n", i);
  setTimeout(() => reader.resume(), 20);
  const started = Date.now();
  await hub.close({ drainMs: 300 });
  assert.ok(Date.now() - started >= 250, "waited for the stuck one up to the deadline");
  const got = reader.messages.filter((m) => m.type === "n").map((m) => m.data);
  assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i), "the reader got everything");
  assert.equal(reader.messages.at(-1)?.type, "connection.closed");
  assert.equal((await reader.closed).code, 1001);
  assert.equal((await stuck.closed).code, 1001);
});
