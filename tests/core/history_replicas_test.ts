// History across replicas on the memory transport: several hubs on one MemoryBus sharing one
// store that publishes each append (as the Redis store does). Every client's view of a room is
// counted: each offset exactly once, in order. Lost bus messages are repaired from the store; a
// lost stream (a new epoch) or a gap the store no longer holds closes the members with 4004.
import assert from "node:assert/strict";
import {
  type Backplane,
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
import { connectMemory, type MemoryClient } from "../../src/testing/mod.ts";
import { test } from "../_harness.ts";

/** A store shared by replicas whose inner store can be lost (a Redis restart without data). */
class SharedStore implements HistoryStore {
  readonly publishes = true;
  inner: MemoryHistoryStore;
  /** Appends whose bus message is dropped (1-based append count): a lost pub/sub message. */
  readonly drop = new Set<number>();
  appends = 0;
  reads = 0;
  constructor(readonly bus: MemoryBus) {
    this.inner = new MemoryHistoryStore({ bus });
  }
  append(room: string, m: HistoryAppend, policy: Required<HistoryPolicy>): HistoryAppended {
    this.appends++;
    const message = this.drop.has(this.appends) ? { head: m.head, except: m.except } : m;
    return this.inner.append(room, message, policy);
  }
  read(room: string, o: HistoryReadOptions, policy: Required<HistoryPolicy>): HistoryRead {
    this.reads++;
    return this.inner.read(room, o, policy);
  }
  /** Lose every stream. */
  lose(): void {
    this.inner = new MemoryHistoryStore({ bus: this.bus });
  }
}

function replicas(n: number, extra: HubOptions = {}): { hubs: Hub[]; store: SharedStore } {
  const bus = new MemoryBus();
  const store = new SharedStore(bus);
  const hubs = [...Array(n)].map(() =>
    new Hub({
      canJoin: () => true,
      history: (room) => room.startsWith("h:") ? { maxMessages: 50, maxAgeMs: 60_000 } : undefined,
      historyStore: store,
      backplane: bus.connect(),
      ...extra,
    })
  );
  return { hubs, store };
}

async function member(hub: Hub, room: string, recover?: unknown): Promise<MemoryClient> {
  const c = await connectMemory(hub);
  await c.next("connection.established");
  c.send(
    recover === undefined ? { type: "subscribe", room } : { type: "subscribe", room, recover },
  );
  await c.next("subscribed");
  return c;
}

function offsets(c: MemoryClient): number[] {
  return c.messages.filter((m) => m.type === "n").map((m) =>
    (m as unknown as { offset: number }).offset
  );
}

const tick = () => new Promise((r) => setTimeout(r, 0));
async function until(ok: () => boolean, what: string, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const range = (a: number, b: number) => [...Array(b - a + 1).keys()].map((i) => i + a);

test("Replicas sharing a store agree on offsets: every member on every replica gets each once, in order", async () => {
  const { hubs } = replicas(3);
  const members: MemoryClient[] = [];
  for (const hub of hubs) for (let i = 0; i < 2; i++) members.push(await member(hub, "h:a"));
  for (let i = 1; i <= 30; i++) hubs[i % 3].emit("n", i, { rooms: "h:a" });
  await until(() => members.every((c) => offsets(c).length === 30), "30 each");
  await tick();
  for (const c of members) assert.deepEqual(offsets(c), range(1, 30));
  for (const hub of hubs) await hub.close();
});

test("A lost bus message is repaired from the store: no gap, no duplicate, one read", async () => {
  const { hubs: [a, b], store } = replicas(2);
  const onB = await member(b, "h:a");
  const onA = await member(a, "h:a");
  store.drop.add(3); // the 3rd append's bus message never reaches B
  const readsBefore = store.reads;
  for (let i = 1; i <= 6; i++) await a.publish("h:a", "n", i);
  await until(() => offsets(onB).length === 6, "B repaired");
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(offsets(onB), range(1, 6));
  assert.deepEqual(offsets(onA), range(1, 6));
  assert.equal(store.reads - readsBefore, 1, "one repair read");
  assert.deepEqual(b.stats().history, { repairs: 1, lost: 0 });
  await a.close();
  await b.close();
});

test("The last message lost during a bus outage is repaired when the bus comes back", async () => {
  const { hubs: [a, b], store } = replicas(2);
  const onB = await member(b, "h:a");
  await a.publish("h:a", "n", 1);
  await until(() => offsets(onB).length === 1, "first");
  store.bus.down = true;
  await a.publish("h:a", "n", 2); // stored; the bus is down so B never hears of it
  await a.publish("h:a", "n", 3);
  assert.deepEqual(offsets(onB), [1]);
  store.bus.down = false; // no later message comes: B repairs because the bus is back
  await until(() => offsets(onB).length === 3, "repaired after the outage");
  assert.deepEqual(offsets(onB), [1, 2, 3]);
  await a.close();
  await b.close();
});

test("A lost stream (new epoch) closes members on every replica with 4004; they learn recovered: false", async () => {
  const { hubs: [a, b], store } = replicas(2);
  const onA = await member(a, "h:a");
  const onB = await member(b, "h:a");
  await a.publish("h:a", "n", 1);
  await until(() => offsets(onB).length === 1, "first");
  const old = (onB.messages.find((m) => m.type === "subscribed")!.data as { epoch: string }).epoch;
  store.lose();
  await a.publish("h:a", "n", 2); // offset 1 of a new epoch
  assert.equal((await onA.closed).code, CloseCode.INSUFFICIENT_STATE);
  assert.equal((await onB.closed).code, CloseCode.INSUFFICIENT_STATE);
  assert.deepEqual(offsets(onB), [1], "nothing of the new epoch was passed off as the old one");
  const again = await connectMemory(b);
  await again.next("connection.established");
  again.send({ type: "subscribe", room: "h:a", recover: { epoch: old, offset: 1 } });
  const sub = (await again.next("subscribed")).data as { epoch: string; recovered: boolean };
  assert.equal(sub.recovered, false);
  assert.notEqual(sub.epoch, old);
  await a.close();
  await b.close();
});

test("A gap the store no longer holds closes the replica's members with 4004, never a silent gap", async () => {
  const { hubs: [a, b], store } = replicas(2, {
    history: (room) => room.startsWith("h:") ? { maxMessages: 3, maxAgeMs: 60_000 } : undefined,
  });
  const onB = await member(b, "h:a");
  store.drop.add(2);
  for (let i = 1; i <= 8; i++) await a.publish("h:a", "n", i); // 2 is trimmed before B reads
  assert.equal((await onB.closed).code, CloseCode.INSUFFICIENT_STATE);
  assert.deepEqual(offsets(onB), [1], "B delivered nothing after the gap");
  assert.equal(b.stats().history.lost, 1);
  await a.close();
  await b.close();
});

test("Messages arriving while a replica's first subscriber reads its position wait for it", async () => {
  // An async store: reads answer later, so bus messages arrive before the position.
  const bus = new MemoryBus();
  const inner = new MemoryHistoryStore({ bus });
  const slow: HistoryStore = {
    publishes: true,
    append: (room, m, p) => inner.append(room, m, p),
    read: (room, o, p) => {
      const r = inner.read(room, o, p);
      return new Promise((resolve) => setTimeout(() => resolve(r), 20));
    },
  };
  const opts = {
    canJoin: () => true,
    history: () => ({}),
    historyStore: slow,
  };
  const a = new Hub({ ...opts, backplane: bus.connect() });
  const b = new Hub({ ...opts, backplane: bus.connect() });
  await member(a, "h:a");
  for (let i = 1; i <= 3; i++) await a.publish("h:a", "n", i);
  const c = await connectMemory(b);
  await c.next("connection.established");
  c.send({ type: "subscribe", room: "h:a" });
  await new Promise((r) => setTimeout(r, 5)); // B's read is in flight
  for (let i = 4; i <= 6; i++) await a.publish("h:a", "n", i);
  const sub = (await c.next("subscribed")).data as { offset: number };
  for (let i = 7; i <= 9; i++) await a.publish("h:a", "n", i);
  await until(() => offsets(c).at(-1) === 9, "live after the position");
  assert.deepEqual(offsets(c), range(sub.offset + 1, 9));
  await a.close();
  await b.close();
});

test("A backplane that takes no store publishes (Redis Cluster): the hub publishes each entry; replicas still agree, in order, once", async () => {
  const bus = new MemoryBus();
  const store = new SharedStore(bus);
  // A backplane that renames its channels (as sharded Redis Cluster channels are): what the
  // store publishes under the hub's channel name reaches nobody.
  const sharded = (): Backplane => {
    const bp = bus.connect();
    const named = (c: string) => "S:" + c;
    return {
      acceptsStorePublishes: false,
      start: (onMessage, onHealth) => bp.start((c, p) => onMessage(c.slice(2), p), onHealth),
      publish: (c, p) => bp.publish(named(c), p),
      subscribe: (c) => bp.subscribe(named(c)),
      unsubscribe: (c) => bp.unsubscribe(named(c)),
      health: () => bp.health(),
      close: () => bp.close(),
    };
  };
  const hubs = [0, 1, 2].map(() =>
    new Hub({
      canJoin: () => true,
      history: () => ({ maxMessages: 100 }),
      historyStore: store,
      backplane: sharded(),
    })
  );
  const members: MemoryClient[] = [];
  for (const hub of hubs) members.push(await member(hub, "h:a"));
  const published = [];
  for (let i = 1; i <= 30; i++) published.push(hubs[i % 3].publish("h:a", "n", i));
  await Promise.all(published);
  await until(() => members.every((c) => offsets(c).length === 30), "30 each");
  await tick();
  for (const c of members) assert.deepEqual(offsets(c), range(1, 30));
  // Through the bus, not by reading the store: no replica had to repair.
  assert.deepEqual(hubs.map((h) => h.stats().history.repairs), [0, 0, 0]);
  for (const hub of hubs) await hub.close();
});
