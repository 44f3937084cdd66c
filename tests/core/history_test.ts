import assert from "node:assert/strict";
import {
  CloseCode,
  type HistoryAppend,
  type HistoryAppended,
  type HistoryPolicy,
  type HistoryRead,
  type HistoryReadOptions,
  type HistoryStore,
  Hub,
  type HubOptions,
  MemoryBus,
  MemoryHistoryStore,
} from "../../mod.ts";
import { connectMemory, ManualClock, type MemoryClient } from "../../src/testing/mod.ts";
import { BroadcastChannelBackplane } from "../../src/backplane/broadcast_channel.ts";
import { test } from "../_harness.ts";

type Data = Record<string, unknown>;

function hubWith(extra: HubOptions = {}): Hub {
  return new Hub({
    canJoin: () => true,
    history: (room) => room.startsWith("h:") ? { maxMessages: 50, maxAgeMs: 60_000 } : undefined,
    ...extra,
  });
}

async function member(hub: Hub, room: string, recover?: unknown): Promise<MemoryClient> {
  const c = await connectMemory(hub);
  await c.next("connection.established");
  c.send(
    recover === undefined ? { type: "subscribe", room } : { type: "subscribe", room, recover },
  );
  return c;
}

/** The room messages a client got, as [offset, n] pairs (n: the payload's sequence number). */
function seen(c: MemoryClient, type = "n"): [number, number][] {
  return c.messages.filter((m) => m.type === type).map((m) => [
    (m as unknown as { offset: number }).offset,
    m.data as number,
  ]);
}

test("Messages to a history room carry room and offset, increasing by one per message", async () => {
  const hub = hubWith();
  const c = await member(hub, "h:a");
  const sub = await c.next("subscribed");
  const { epoch, offset } = sub.data as { epoch: string; offset: number };
  assert.equal(typeof epoch, "string");
  assert.equal(offset, 0);
  for (let i = 1; i <= 5; i++) hub.emit("n", i, { rooms: "h:a" });
  const got = c.messages.filter((m) => m.type === "n") as unknown as Data[];
  assert.deepEqual(got.map((m) => [m.room, m.offset, m.data]), [
    ["h:a", 1, 1],
    ["h:a", 2, 2],
    ["h:a", 3, 3],
    ["h:a", 4, 4],
    ["h:a", 5, 5],
  ]);
  // A room without history: plain envelopes, a plain subscribed.
  const p = await member(hub, "plain");
  assert.deepEqual((await p.next("subscribed")).data, { room: "plain" });
  hub.emit("n", 9, { rooms: "plain" });
  assert.equal("offset" in ((await p.next("n")) as unknown as Data), false);
  await hub.close();
});

test("A client that recovers gets subscribed, then exactly what it missed in order, then live messages", async () => {
  const hub = hubWith();
  const first = await member(hub, "h:a");
  const { epoch } = (await first.next("subscribed")).data as { epoch: string };
  for (let i = 1; i <= 10; i++) hub.emit("n", i, { rooms: "h:a" });
  const last = seen(first).at(-1)![0];
  first.close();
  for (let i = 11; i <= 30; i++) hub.emit("n", i, { rooms: "h:a" }); // missed
  const again = await member(hub, "h:a", { epoch, offset: last });
  const sub = await again.next("subscribed");
  assert.deepEqual(sub.data, { room: "h:a", epoch, offset: 30, recovered: true });
  for (let i = 31; i <= 35; i++) hub.emit("n", i, { rooms: "h:a" });
  const all = [...seen(first), ...seen(again)];
  // Counted, not sampled: every message 1..35 exactly once, in offset order.
  assert.deepEqual(all.map(([o]) => o), [...Array(35).keys()].map((i) => i + 1));
  assert.deepEqual(all.map(([, n]) => n), [...Array(35).keys()].map((i) => i + 1));
  // subscribed came before the replay.
  const types = again.messages.map((m) => m.type);
  assert.ok(types.indexOf("subscribed") < types.indexOf("n"));
  await hub.close();
});

test("A message emitted with except a client is not sent to it live, nor in its history reply", async () => {
  const hub = hubWith();
  const a = await member(hub, "h:a");
  const b = await member(hub, "h:a");
  await a.next("subscribed");
  await b.next("subscribed");
  const aId = hub.connections()[0];
  hub.emit("n", 1, { rooms: "h:a" });
  hub.emit("n", 2, { rooms: "h:a", except: aId });
  hub.emit("n", 3, { rooms: "h:a" });
  assert.deepEqual(seen(a), [[1, 1], [3, 3]], "offsets skip: not an error");
  assert.deepEqual(seen(b), [[1, 1], [2, 2], [3, 3]]);
  a.send({ type: "history", room: "h:a", id: 1 });
  const h = (await a.next("history")).data as { messages: Data[] };
  assert.deepEqual(h.messages.map((m) => m.offset), [1, 3]);
  await hub.close();
});

test("recovered is false for another epoch, a position the history no longer holds, or a room without history", async () => {
  const clock = new ManualClock();
  const hub = new Hub({
    clock,
    canJoin: () => true,
    history: (room) => room === "h:a" ? { maxMessages: 5, maxAgeMs: 10_000 } : undefined,
  });
  const a = await member(hub, "h:a");
  const { epoch } = (await a.next("subscribed")).data as { epoch: string };
  for (let i = 1; i <= 12; i++) hub.emit("n", i, { rooms: "h:a" });
  const cases: [string, unknown, boolean][] = [
    ["h:a", { epoch: "another", offset: 12 }, false],
    ["h:a", { epoch, offset: 3 }, false], // by count: only 8..12 are held
    ["h:a", { epoch, offset: 7 }, true],
    ["plain", { epoch, offset: 1 }, false],
  ];
  for (const [room, recover, expected] of cases) {
    const c = await member(hub, room, recover);
    const d = (await c.next("subscribed")).data as { recovered: boolean };
    assert.equal(d.recovered, expected, JSON.stringify({ room, recover }));
    if (!expected) assert.deepEqual(seen(c), [], "nothing replayed");
    else assert.deepEqual(seen(c).map(([o]) => o), [8, 9, 10, 11, 12]);
  }
  clock.advance(11_000); // by age: everything aged out
  const late = await member(hub, "h:a", { epoch, offset: 10 });
  const d = (await late.next("subscribed")).data as { recovered: boolean; epoch: string };
  assert.equal(d.recovered, false);
  await hub.close();
});

test("A malformed recover gets INVALID_INPUT and the connection stays open", async () => {
  const hub = hubWith();
  for (
    const recover of [5, { epoch: 1, offset: 1 }, { epoch: "e", offset: -1 }, { epoch: "e" }, {
      epoch: "e",
      offset: 1.5,
    }, { epoch: "e", offset: 1, x: 1 }]
  ) {
    const c = await member(hub, "h:a", recover);
    const e = await c.next("error");
    assert.equal((e.data as { code: string }).code, "INVALID_INPUT", JSON.stringify(recover));
    c.send({ type: "ping" });
    await c.next("pong");
    assert.equal(hub.roomSize("h:a"), 0);
    c.close();
  }
  await hub.close();
});

test("history requests: members only, the last k messages oldest first, as sent", async () => {
  const hub = hubWith();
  const outsider = await connectMemory(hub);
  await outsider.next("connection.established");
  const a = await member(hub, "h:a");
  await a.next("subscribed");
  for (let i = 1; i <= 8; i++) hub.emit("n", i, { rooms: "h:a" });
  outsider.send({ type: "history", room: "h:a", id: 1 });
  assert.equal(((await outsider.next("error")).data as { code: string }).code, "NOT_SUBSCRIBED");
  a.send({ type: "history", room: "h:a", limit: 3, id: 2 });
  const h = (await a.next("history")).data as Data & { messages: Data[] };
  assert.equal(h.room, "h:a");
  assert.equal(h.offset, 8);
  assert.deepEqual(h.messages.map((m) => m.offset), [6, 7, 8]);
  const live = a.messages.filter((m) => m.type === "n") as unknown as Data[];
  assert.deepEqual(h.messages, live.slice(5), "each envelope exactly as first sent");
  a.send({ type: "history", room: "h:a", limit: 0, id: 3 });
  assert.equal(((await a.next("error")).data as { code: string }).code, "INVALID_INPUT");
  await hub.close();
});

test("hub.publish() resolves with the offset, hub.history() reads the stream, and both refuse plain rooms", async () => {
  const hub = hubWith();
  const a = await member(hub, "h:a");
  await a.next("subscribed");
  const r1 = await hub.publish("h:a", "n", 1);
  const r2 = await hub.publish("h:a", "n", 2, { except: hub.connections()[0] });
  assert.equal(r1.offset, 1);
  assert.equal(r2.offset, 2);
  assert.equal(r1.epoch, r2.epoch);
  assert.equal(r1.delivered, 1);
  assert.equal(r2.delivered, 0);
  const h = await hub.history("h:a", { since: 1 });
  assert.deepEqual(h.messages.map((m) => [m.offset, m.data]), [[2, 2]]);
  await assert.rejects(hub.publish("plain", "n", 1), TypeError);
  await assert.rejects(hub.history("plain"), TypeError);
  await hub.close();
});

test("History with a backplane needs a shared historyStore, said at construction", () => {
  const bus = new MemoryBus();
  assert.throws(
    () => new Hub({ backplane: bus.connect(), history: () => ({}) }),
    (e: unknown) => e instanceof TypeError && /historyStore/.test(e.message),
  );
  // Isolates behind a BroadcastChannel (any backplane but an in-process MemoryBus) cannot
  // share a memory store: refused, with a pointer to one they can share.
  const bc = new BroadcastChannelBackplane({ name: "hubbub-test-" + crypto.randomUUID() });
  assert.throws(
    () => new Hub({ backplane: bc, history: () => ({}), historyStore: new MemoryHistoryStore() }),
    (e: unknown) => e instanceof TypeError && /RedisHistoryStore/.test(e.message),
  );
  // Hubs on one MemoryBus are in one process: they may share one.
  const store = new MemoryHistoryStore({ bus });
  const hub = new Hub({ backplane: bus.connect(), history: () => ({}), historyStore: store });
  return hub.close().then(() => bc.close());
});

test("One emit to a history room and a plain target: the room's members get its offset frame once", async () => {
  const hub = hubWith();
  const both = await member(hub, "h:a");
  await both.next("subscribed");
  both.send({ type: "subscribe", room: "plain" });
  await both.next("subscribed");
  const plainOnly = await member(hub, "plain");
  await plainOnly.next("subscribed");
  assert.equal(hub.emit("n", 1, { rooms: ["h:a", "plain"] }), 2);
  assert.deepEqual(seen(both), [[1, 1]]);
  const plain = plainOnly.messages.filter((m) => m.type === "n") as unknown as Data[];
  assert.equal(plain.length, 1);
  assert.equal(plain[0].offset, undefined);
  await hub.close();
});

/** A store that answers later (like one over the network), around a memory store. */
class SlowStore implements HistoryStore {
  readonly #inner = new MemoryHistoryStore();
  append(
    room: string,
    message: HistoryAppend,
    policy: Required<HistoryPolicy>,
  ): Promise<HistoryAppended> {
    const e = this.#inner.append(room, message, policy);
    return new Promise((r) => setTimeout(() => r(e), 1));
  }
  read(
    room: string,
    options: HistoryReadOptions,
    policy: Required<HistoryPolicy>,
  ): Promise<HistoryRead> {
    const r = this.#inner.read(room, options, policy);
    return new Promise((resolve) => setTimeout(() => resolve(r), 5));
  }
}

test("With an async store, messages during a recovering subscribe are held: no gap, no duplicate", async () => {
  const hub = hubWith({ historyStore: new SlowStore() });
  const first = await member(hub, "h:a");
  const { epoch } = (await first.next("subscribed")).data as { epoch: string };
  const published: Promise<unknown>[] = [];
  for (let i = 1; i <= 10; i++) published.push(hub.publish("h:a", "n", i));
  await Promise.all(published);
  first.close();
  for (let i = 11; i <= 20; i++) published.push(hub.publish("h:a", "n", i));
  await Promise.all(published);
  const again = await member(hub, "h:a", { epoch, offset: 10 });
  // Published while its read is in flight: held, then sent after the replay.
  for (let i = 21; i <= 30; i++) published.push(hub.publish("h:a", "n", i));
  await Promise.all(published);
  await again.next("subscribed");
  while (seen(again).length < 20) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(seen(again).map(([o]) => o), [...Array(20).keys()].map((i) => i + 11));
  await hub.close();
});

test("A slow client closed with 4000 reconnects, recovers, and has missed nothing the history holds", async () => {
  const hub = hubWith({ maxQueueMessages: 8, highWaterMark: 256, lowWaterMark: 64 });
  const c = await connectMemory(hub, { cork: true });
  await c.next("connection.established");
  c.send({ type: "subscribe", room: "h:a" });
  const { epoch } = (await c.next("subscribed")).data as { epoch: string };
  c.pause();
  for (let i = 1; i <= 40; i++) hub.emit("n", i, { rooms: "h:a" });
  assert.equal((await c.closed).code, CloseCode.SLOW_CLIENT);
  const got = seen(c);
  const last = got.length === 0 ? 0 : got.at(-1)![0];
  assert.ok(last < 40, "it missed some");
  const again = await member(hub, "h:a", { epoch, offset: last });
  assert.equal(((await again.next("subscribed")).data as { recovered: boolean }).recovered, true);
  // The replay (over a quarter of this tiny queue) is paced by the client's reading.
  for (let i = 0; i < 200 && got.length + seen(again).length < 40; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(again.isClosed, false, "the replay itself did not overflow the queue");
  const all = [...got, ...seen(again)].map(([o]) => o);
  assert.deepEqual(all, [...Array(40).keys()].map((i) => i + 1));
  await hub.close();
});

test("MemoryHistoryStore trims by count and age, and a stream that emptied starts a new epoch", () => {
  let now = 0;
  const store = new MemoryHistoryStore({ now: () => now });
  const policy = { maxMessages: 3, maxAgeMs: 100 };
  const a = store.append("r", { head: "f" }, policy);
  for (let i = 0; i < 4; i++) store.append("r", { head: "f" }, policy);
  const read = store.read("r", { after: 1 }, policy);
  assert.deepEqual(read.entries.map((e) => e.offset), [3, 4, 5]);
  assert.equal(read.complete, false, "2 was trimmed by count");
  assert.equal(store.read("r", { after: 2 }, policy).complete, true);
  now = 1000;
  const b = store.append("r", { head: "f" }, policy);
  assert.notEqual(b.epoch, a.epoch, "everything aged out: a new stream");
  assert.equal(b.offset, 1);
});

test("On a hub that keeps history, history is a built-in: hub.on refuses it; elsewhere it is an app type", () => {
  assert.throws(() => hubWith().on("history", () => {}), TypeError);
  const plain = new Hub();
  assert.equal(plain.on("history", () => 1), plain);
});
