import assert from "node:assert/strict";
import { type FrameInfo, Hub } from "../../mod.ts";
import { connectMemory } from "../../src/testing/mod.ts";
import { test } from "../_harness.ts";

test("Hub.aroundFrame() wraps every accepted frame, nested in the order added", async () => {
  const log: string[] = [];
  const frames: FrameInfo[] = [];
  const hub = new Hub({
    identify: () => ({ userId: "ada" }),
    onMessage: (_c, m) => void log.push(`handler ${m.type}`),
    onBinary: () => void log.push("handler binary"),
  });
  const stopOuter = hub.aroundFrame((frame, handle) => {
    frames.push(frame);
    log.push(`outer in ${frame.type}`);
    const r = handle();
    log.push(`outer out ${frame.type}`);
    return r;
  });
  hub.aroundFrame((frame, handle) => {
    log.push(`inner in ${frame.type}`);
    const r = handle();
    log.push(`inner out ${frame.type}`);
    return r;
  });
  const c = await connectMemory(hub);
  const id = ((await c.next()).data as { clientId: string }).clientId;
  c.send({ type: "hello" });
  assert.deepEqual(log.splice(0), [
    "outer in hello",
    "inner in hello",
    "handler hello",
    "inner out hello",
    "outer out hello",
  ]);
  assert.deepEqual(frames[0], {
    clientId: id,
    userId: "ada",
    type: "hello",
    bytes: 16,
    at: frames[0].at,
  });
  c.send("{bad");
  c.send(new Uint8Array([1, 2]));
  c.send({ type: "ping" });
  assert.deepEqual(frames.map((f) => f.type), ["hello", "invalid", "binary", "ping"]);
  stopOuter();
  log.length = 0;
  c.send({ type: "again" });
  assert.deepEqual(log, ["inner in again", "handler again", "inner out again"]);
  await hub.close();
});

test("Hub.aroundFrame(): the connection's next frame waits for the wrapper's promise", async () => {
  const order: string[] = [];
  const hub = new Hub({ onMessage: (_c, m) => void order.push(m.type) });
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  hub.aroundFrame((frame, handle) => {
    const r = handle();
    if (frame.type !== "first") return r;
    return gate.then(() => void order.push("first done"));
  });
  const c = await connectMemory(hub);
  await c.next();
  c.send({ type: "first" });
  c.send({ type: "second" });
  await Promise.resolve();
  assert.deepEqual(order, ["first"]);
  release();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(order, ["first", "first done", "second"]);
  await hub.close();
});

test("Hub.aroundFrame(): a throwing or forgetful wrapper is reported and the frame still handled", async () => {
  const errors: unknown[] = [];
  const handled: string[] = [];
  const hub = new Hub({
    onMessage: (_c, m) => void handled.push(m.type),
    onError: (e, source) => void errors.push([source, (e as Error).message]),
  });
  const stop = hub.aroundFrame(() => {
    throw new Error("boom");
  });
  const c = await connectMemory(hub);
  await c.next();
  c.send({ type: "a" });
  stop();
  hub.aroundFrame(() => undefined);
  c.send({ type: "b" });
  assert.deepEqual(handled, ["a", "b"]);
  assert.deepEqual(errors, [
    ["observer", "boom"],
    ["observer", "aroundFrame: the wrapper did not call handle()"],
  ]);
  await hub.close();
});

test("Hub.stats({ topRooms: 0 }) lists no rooms", async () => {
  const hub = new Hub({ canJoin: () => true });
  const c = await connectMemory(hub);
  await c.next();
  c.send({ type: "subscribe", room: "r" });
  await c.next("subscribed");
  assert.deepEqual(hub.stats({ topRooms: 0 }).topRooms, []);
  assert.equal(hub.stats().rooms, 1);
  await hub.close();
});
