import assert from "node:assert/strict";
import {
  ErrorCode,
  Hub,
  type HubOptions,
  MemoryBus,
  MemoryPresenceStore,
  type PresenceEntry,
  type PresenceStore,
} from "../../mod.ts";
import { connectMemory, ManualClock, type MemoryClient } from "../../src/testing/mod.ts";
import { test, until } from "../_harness.ts";

type Data = Record<string, unknown>;
const TTL = 3000;

/** Rooms: "p:" presence with events, "q:" without events, "c:" counts only, else none. */
function presenceOf(room: string) {
  if (room.startsWith("p:")) return true;
  if (room.startsWith("q:")) return { events: false };
  if (room.startsWith("c:")) return { countsOnly: true };
  return false;
}

function hubWith(extra: HubOptions = {}): Hub {
  return new Hub({
    canJoin: () => true,
    identify: (req) => {
      const user = new URL(req.url).searchParams.get("user");
      return user === null ? {} : { userId: user, metadata: { name: user.toUpperCase() } };
    },
    presence: presenceOf,
    presenceTtlMs: TTL,
    ...extra,
  });
}

async function client(hub: Hub, user?: string): Promise<MemoryClient> {
  const c = await connectMemory(hub, {
    url: user === undefined ? "http://localhost/ws" : `http://localhost/ws?user=${user}`,
  });
  await c.next("connection.established");
  return c;
}

async function member(hub: Hub, room: string, user?: string): Promise<MemoryClient> {
  const c = await client(hub, user);
  c.send({ type: "subscribe", room });
  await c.next("subscribed");
  return c;
}

/** Let microtasks, timers at 0 and async presence ticks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
}

/** Move a manual clock in heartbeat-sized steps, letting each tick finish. */
async function advance(clock: ManualClock, ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= TTL / 3) {
    clock.advance(Math.min(TTL / 3, left));
    await settle();
  }
}

function events(c: MemoryClient, type: string): Data[] {
  return c.messages.filter((m) => m.type === type).map((m) => m.data as Data);
}

/** How many times each clientId appeared in `type` events for `room`. */
function tally(c: MemoryClient, type: string, room: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of events(c, type)) {
    if (d.room !== room) continue;
    out.set(d.clientId as string, (out.get(d.clientId as string) ?? 0) + 1);
  }
  return out;
}

async function ask(c: MemoryClient, message: Data): Promise<Data> {
  const type = message.type as string;
  c.send(message);
  while (true) {
    const m = await c.next();
    if (m.type === type || m.type === "error") return { type: m.type, ...(m.data as Data) };
  }
}

function ids(clients: readonly PresenceEntry[]): string[] {
  return clients.map((e) => e.clientId).sort();
}

test("presence and presence.stats list every member and count clients and distinct users", async () => {
  const hub = hubWith();
  const a1 = await member(hub, "p:a", "ada");
  const a2 = await member(hub, "p:a", "ada");
  const b = await member(hub, "p:a", "bob");
  const anon = await member(hub, "p:a");
  const list = await ask(a1, { type: "presence", room: "p:a", id: 7 });
  assert.equal(list.type, "presence");
  assert.equal(list.id, 7);
  assert.equal(list.room, "p:a");
  const clients = list.clients as PresenceEntry[];
  assert.deepEqual(ids(clients), ids(await hub.presence("p:a")));
  assert.equal(clients.length, 4);
  const byId = new Map(clients.map((e) => [e.clientId, e]));
  const conns = hub.roomMembers("p:a");
  for (const conn of conns) assert.equal(byId.get(conn.id)?.userId, conn.userId);
  assert.equal(clients.filter((e) => e.userId === undefined).length, 1);
  assert.deepEqual(await ask(b, { type: "presence.stats", room: "p:a" }), {
    type: "presence.stats",
    room: "p:a",
    clients: 4,
    users: 2,
  });
  assert.deepEqual(await hub.presenceStats("p:a"), { clients: 4, users: 2 });
  assert.deepEqual(await hub.userPresence("ada"), { online: true, connections: 2 });
  assert.deepEqual(await hub.userPresence("eve"), { online: false, connections: 0 });
  a2.close();
  anon.close();
  await settle();
  assert.deepEqual(await hub.presenceStats("p:a"), { clients: 2, users: 2 });
  assert.deepEqual(await hub.userPresence("ada"), { online: true, connections: 1 });
  await hub.close();
});

test("presence requests: members only (NOT_SUBSCRIBED), NOT_TRACKED elsewhere, counts-only refuses the list", async () => {
  const hub = hubWith();
  const c = await member(hub, "p:a", "ada");
  const notIn = await ask(c, { type: "presence", room: "p:b", id: 1 });
  assert.equal(notIn.code, ErrorCode.NOT_SUBSCRIBED);
  assert.equal(notIn.id, 1);
  assert.equal((await ask(c, { type: "presence.stats", room: "p:b" })).code, "NOT_SUBSCRIBED");
  c.send({ type: "subscribe", room: "plain" });
  await c.next("subscribed");
  assert.equal((await ask(c, { type: "presence", room: "plain" })).code, ErrorCode.NOT_TRACKED);
  assert.equal((await ask(c, { type: "presence.stats", room: "plain" })).code, "NOT_TRACKED");
  c.send({ type: "subscribe", room: "c:big" });
  await c.next("subscribed");
  const refused = await ask(c, { type: "presence", room: "c:big" });
  assert.equal(refused.code, ErrorCode.NOT_TRACKED);
  assert.equal(refused.countsOnly, true);
  assert.deepEqual(await ask(c, { type: "presence.stats", room: "c:big" }), {
    type: "presence.stats",
    room: "c:big",
    clients: 1,
    users: 1,
  });
  assert.equal((await ask(c, { type: "presence", room: "p:a", extra: 1 })).code, "INVALID_INPUT");
  await assert.rejects(hub.presence("plain"), TypeError);
  await assert.rejects(hub.presence("c:big"), TypeError);
  await assert.rejects(hub.presenceStats("plain"), TypeError);
  await hub.close();
});

test("A store that fails answers presence requests with UNAVAILABLE and reports to onError", async () => {
  const store = new MemoryPresenceStore();
  const errors: string[] = [];
  const hub = hubWith({
    presenceStore: store,
    onError: (_e, source) => void errors.push(source),
  });
  const c = await member(hub, "p:a", "ada");
  store.members = () => {
    throw new Error("store down");
  };
  (store as PresenceStore).counts = () => Promise.reject(new Error("store down"));
  assert.equal((await ask(c, { type: "presence", room: "p:a" })).code, ErrorCode.UNAVAILABLE);
  assert.equal((await ask(c, { type: "presence.stats", room: "p:a" })).code, "UNAVAILABLE");
  await assert.rejects(hub.presence("p:a"), /store down/);
  assert.deepEqual(errors, ["presence", "presence"]);
  await hub.close();
});

test("presence.join and presence.leave reach every member exactly once; a joiner sees subscribed, then its own join", async () => {
  const hub = hubWith();
  const a = await member(hub, "p:a", "ada");
  const b = await member(hub, "p:a", "bob");
  const c = await member(hub, "p:a");
  await settle();
  // Its own join comes right after its subscribed.
  const types = c.messages.map((m) => m.type);
  assert.deepEqual(types.slice(types.indexOf("subscribed")), ["subscribed", "presence.join"]);
  const joinsOfA = tally(a, "presence.join", "p:a");
  assert.deepEqual([...joinsOfA.values()], [1, 1, 1]);
  assert.deepEqual([...tally(b, "presence.join", "p:a").values()], [1, 1]);
  assert.deepEqual([...tally(c, "presence.join", "p:a").values()], [1]);
  const bJoin = events(a, "presence.join").find((d) => d.userId === "bob")!;
  assert.deepEqual(Object.keys(bJoin).sort(), ["clientId", "room", "userId"]);
  // Leaves: by unsubscribe, by disconnect, by server leave().
  const joined = hub.roomMembers("p:a").map((conn) => conn.id);
  b.send({ type: "unsubscribe", room: "p:a" });
  await b.next("unsubscribed");
  c.close();
  // A repeat join changes nothing (no second event).
  hub.join(joined[0], "p:a");
  await settle();
  const leaves = tally(a, "presence.leave", "p:a");
  assert.equal(leaves.size, 2);
  assert.deepEqual([...leaves.values()], [1, 1]);
  assert.deepEqual(events(a, "presence.leave").find((d) => d.userId === "bob"), {
    room: "p:a",
    clientId: joined[1],
    userId: "bob",
  });
  assert.equal(events(b, "presence.leave").length, 0); // it had left
  assert.equal(tally(a, "presence.join", "p:a").size, 3);
  const d = await member(hub, "p:a");
  await settle();
  hub.leave(joined[0], "p:a");
  await settle();
  assert.deepEqual([...tally(d, "presence.leave", "p:a").values()], [1]);
  assert.deepEqual(ids(await hub.presence("p:a")), [hub.roomMembers("p:a")[0].id]);
  await hub.close();
});

test("A room with events: false lists members but sends no join or leave; counts-only sends none either", async () => {
  const hub = hubWith();
  const a = await member(hub, "q:a", "ada");
  const b = await member(hub, "q:a", "bob");
  const big = [];
  for (let i = 0; i < 20; i++) big.push(await member(hub, "c:big", `u${i % 5}`));
  b.close();
  big[0].close();
  await settle();
  assert.equal(events(a, "presence.join").length + events(a, "presence.leave").length, 0);
  for (const c of big.slice(1)) {
    assert.equal(events(c, "presence.join").length + events(c, "presence.leave").length, 0);
  }
  assert.equal((await hub.presence("q:a")).length, 1);
  assert.deepEqual(await hub.presenceStats("c:big"), { clients: 19, users: 5 });
  await hub.close();
});

test("presenceInfo rides on the entry and the join; info over 1024 bytes is dropped and reported", async () => {
  const errors: unknown[] = [];
  const hub = hubWith({
    presenceInfo: (conn, room) =>
      room === "p:huge" ? { blob: "x".repeat(2000) } : { name: conn.metadata.name },
    onError: (e, source) => {
      if (source === "presence") errors.push(e);
    },
  });
  const a = await member(hub, "p:a", "ada");
  await settle();
  const join = events(a, "presence.join")[0];
  assert.deepEqual(join.info, { name: "ADA" });
  assert.deepEqual((await hub.presence("p:a"))[0].info, { name: "ADA" });
  const h = await member(hub, "p:huge", "bob");
  await settle();
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof RangeError);
  const entry = (await hub.presence("p:huge"))[0];
  assert.equal(entry.userId, "bob");
  assert.equal("info" in entry, false);
  assert.equal("info" in events(h, "presence.join")[0], false);
  // Counts-only rooms never call it.
  await member(hub, "c:big", "cy");
  assert.equal(errors.length, 1);
  await hub.close();
});

test("hub.on('presence') is refused on a hub that tracks presence; elsewhere presence is an app message", async () => {
  const hub = hubWith();
  assert.throws(() => hub.on("presence", () => 1), TypeError);
  assert.throws(() => hub.on("presence.stats", () => 1), TypeError);
  await hub.close();
  const plain = new Hub({ canJoin: () => true });
  plain.on("presence", () => "mine");
  const c = await member(plain, "p:a");
  c.send({ type: "presence", room: "p:a", id: 1 });
  assert.deepEqual((await c.next("ack")).data, { id: 1, result: "mine" });
  await assert.rejects(plain.userPresence("ada"), TypeError);
  await plain.close();
  assert.throws(
    () => new Hub({ presence: () => true, backplane: new MemoryBus().connect() }),
    (e: unknown) => e instanceof TypeError && /presenceStore/.test(e.message),
  );
  assert.throws(() => new Hub({ presence: () => true, presenceTtlMs: 10 }), RangeError);
});

/** Replicas: hubs on one bus and one presence store, sharing a manual clock. */
function replicas(n: number, clock: ManualClock, store: MemoryPresenceStore) {
  const bus = new MemoryBus();
  const hubs: Hub[] = [];
  for (let i = 0; i < n; i++) {
    hubs.push(hubWith({ backplane: bus.connect(), presenceStore: store, clock }));
  }
  return hubs;
}

test("Replicas on one bus and store: each join and leave reaches every replica's members exactly once; presence agrees everywhere", async () => {
  const clock = new ManualClock();
  const store = new MemoryPresenceStore({ now: () => clock.now() });
  const hubs = replicas(3, clock, store);
  await Promise.all(hubs.map((h) => h.ready));
  const members: MemoryClient[] = [];
  for (let i = 0; i < 6; i++) {
    members.push(await member(hubs[i % 3], "p:a", `u${i % 4}`));
    await settle();
  }
  const all = hubs.flatMap((h) => h.roomMembers("p:a").map((c) => c.id)).sort();
  assert.equal(all.length, 6);
  for (const h of hubs) {
    assert.deepEqual(ids(await h.presence("p:a")), all);
    assert.deepEqual(await h.presenceStats("p:a"), { clients: 6, users: 4 });
  }
  // The i-th member saw the join of itself and of every later one, once each.
  for (let i = 0; i < 6; i++) {
    const seen = tally(members[i], "presence.join", "p:a");
    assert.equal(seen.size, 6 - i);
    for (const n of seen.values()) assert.equal(n, 1);
  }
  assert.deepEqual(await hubs[2].userPresence("u0"), { online: true, connections: 2 });
  members[1].close();
  members[5].send({ type: "unsubscribe", room: "p:a" });
  await settle();
  for (const i of [0, 2, 3, 4]) {
    const seen = tally(members[i], "presence.leave", "p:a");
    assert.equal(seen.size, 2, `member ${i}`);
    for (const n of seen.values()) assert.equal(n, 1);
  }
  for (const h of hubs) assert.deepEqual(await h.presenceStats("p:a"), { clients: 4, users: 3 });
  // u1: members[1] closed, members[5] only left the room (still connected).
  assert.deepEqual(await hubs[0].userPresence("u1"), { online: true, connections: 1 });
  await Promise.all(hubs.map((h) => h.close()));
  assert.equal(store.size, 0);
});

test("A replica that dies without goodbye: its members expire within the TTL and the survivors send presence.leave for each exactly once", async () => {
  const clock = new ManualClock();
  const store = new MemoryPresenceStore({ now: () => clock.now() });
  const bus = new MemoryBus();
  const [a, b] = [0, 1].map(() =>
    hubWith({ backplane: bus.connect(), presenceStore: store, clock })
  );
  // The doomed replica's timers run on a clock nobody advances: it never heartbeats again.
  const frozen = new ManualClock();
  const dead = hubWith({ backplane: bus.connect(), presenceStore: store, clock: frozen });
  await Promise.all([a.ready, b.ready, dead.ready]);
  const onA = await member(a, "p:a", "ada");
  const onB = await member(b, "p:a", "bob");
  const ghosts: MemoryClient[] = [];
  for (let i = 0; i < 3; i++) ghosts.push(await member(dead, "p:a", `g${i}`));
  await member(dead, "q:quiet", "g0"); // a room without events: removed, not announced
  await settle();
  const ghostIds = dead.roomMembers("p:a").map((c) => c.id).sort();
  assert.equal((await a.presence("p:a")).length, 5);
  assert.deepEqual(await a.userPresence("g0"), { online: true, connections: 2 });
  // Just before the TTL runs out nothing has left...
  await advance(clock, TTL - TTL / 3);
  assert.equal((await b.presence("p:a")).length, 5);
  assert.equal(events(onA, "presence.leave").length, 0);
  // ...and within one more heartbeat interval after it, every ghost has, announced once.
  await advance(clock, (2 * TTL) / 3);
  assert.deepEqual(ids(await b.presence("p:a")), ids(await a.presence("p:a")));
  assert.equal((await b.presence("p:a")).length, 2);
  assert.equal((await a.presence("q:quiet")).length, 0);
  assert.deepEqual(await a.userPresence("g0"), { online: false, connections: 0 });
  for (const c of [onA, onB]) {
    const seen = tally(c, "presence.leave", "p:a");
    assert.deepEqual([...seen.keys()].sort(), ghostIds);
    for (const n of seen.values()) assert.equal(n, 1);
  }
  // More sweeps, and the zombie's own late leaves, announce nothing more.
  await advance(clock, 2 * TTL);
  for (const g of ghosts) g.close();
  await settle();
  for (const c of [onA, onB]) assert.equal(events(c, "presence.leave").length, 3);
  await Promise.all([a.close(), b.close(), dead.close()]);
});

test("A replica declared dead that comes back re-registers its members and announces them again", async () => {
  const clock = new ManualClock();
  const store = new MemoryPresenceStore({ now: () => clock.now() });
  const bus = new MemoryBus();
  const a = hubWith({ backplane: bus.connect(), presenceStore: store, clock });
  const paused = new ManualClock();
  const p = hubWith({ backplane: bus.connect(), presenceStore: store, clock: paused });
  await Promise.all([a.ready, p.ready]);
  const watcher = await member(a, "p:a", "ada");
  await member(p, "p:a", "bob");
  await settle();
  await advance(clock, TTL + TTL / 3);
  assert.equal(events(watcher, "presence.leave").length, 1);
  assert.equal((await a.presence("p:a")).length, 1);
  // The paused replica heartbeats again: "expired", so it adds bob back and says so.
  await advance(paused, TTL / 3);
  assert.equal((await a.presence("p:a")).length, 2);
  assert.deepEqual(await a.userPresence("bob"), { online: true, connections: 1 });
  const joins = events(watcher, "presence.join").filter((d) => d.userId === "bob");
  assert.equal(joins.length, 2); // the first join, and the one after it was declared dead
  await Promise.all([a.close(), p.close()]);
});

test("After the store loses its data, replicas register their members again at the next heartbeat, without events", async () => {
  const clock = new ManualClock();
  const store = new MemoryPresenceStore({ now: () => clock.now() });
  const hubs = replicas(2, clock, store);
  await Promise.all(hubs.map((h) => h.ready));
  const cs = [
    await member(hubs[0], "p:a", "ada"),
    await member(hubs[1], "p:a", "bob"),
    await member(hubs[1], "c:big", "bob"),
  ];
  await settle();
  const before = cs.map((c) => c.messages.length);
  store.clear(); // a restart without its data
  assert.deepEqual(await hubs[0].presenceStats("p:a"), { clients: 0, users: 0 });
  assert.deepEqual(await hubs[0].userPresence("bob"), { online: false, connections: 0 });
  await advance(clock, TTL / 3);
  for (const h of hubs) {
    assert.deepEqual(await h.presenceStats("p:a"), { clients: 2, users: 2 });
    assert.deepEqual(await h.presenceStats("c:big"), { clients: 1, users: 1 });
    assert.deepEqual(await h.userPresence("bob"), { online: true, connections: 2 });
  }
  assert.deepEqual(cs.map((c) => c.messages.length), before); // no join or leave events
  // And it stays whole: entries are the replicas' again, refreshed by their heartbeats.
  await advance(clock, 3 * TTL);
  assert.deepEqual(await hubs[1].presenceStats("p:a"), { clients: 2, users: 2 });
  await Promise.all(hubs.map((h) => h.close()));
});

test("Presence timers run on the hub's clock and stop at close", async () => {
  const clock = new ManualClock();
  const before = clock.timerCount;
  const hub = hubWith({ clock });
  assert.ok(clock.timerCount > before);
  await hub.close();
  assert.equal(clock.timerCount, before);
});

/** A store that answers later (like one over the network), around a memory store. */
function slow(inner: MemoryPresenceStore): PresenceStore {
  const later = <T>(f: () => T) =>
    new Promise<T>((resolve, reject) =>
      setTimeout(() => {
        try {
          resolve(f());
        } catch (e) {
          reject(e);
        }
      }, 1)
    );
  return {
    heartbeat: (r, ttl) => later(() => inner.heartbeat(r, ttl)),
    add: (r, room, e) => later(() => inner.add(r, room, e)),
    remove: (r, room, id) => later(() => inner.remove(r, room, id)),
    members: (room) => later(() => inner.members(room)),
    counts: (room) => later(() => inner.counts(room)),
    setUserConnections: (r, u, n) => later(() => inner.setUserConnections(r, u, n)),
    user: (u) => later(() => inner.user(u)),
    sweep: () => later(() => inner.sweep()),
    goodbye: (r) => later(() => inner.goodbye(r)),
  };
}

test("With an async store: a join then an immediate leave are announced once each, in order; a closing hub's leaves still reach the other replica", async () => {
  const inner = new MemoryPresenceStore();
  const store = slow(inner);
  const bus = new MemoryBus();
  const [a, b] = [0, 1].map(() => hubWith({ backplane: bus.connect(), presenceStore: store }));
  await Promise.all([a.ready, b.ready]);
  const watcher = await member(a, "p:a", "ada");
  const churn: MemoryClient[] = [];
  for (let i = 0; i < 10; i++) {
    const c = await member(b, "p:a", `u${i}`);
    if (i % 2 === 0) c.send({ type: "unsubscribe", room: "p:a" });
    else c.close();
    churn.push(c);
  }
  const stay = [await member(b, "p:a", "bob"), await member(b, "p:a", "cy")];
  await until(() => events(watcher, "presence.leave").length === 10);
  await until(() => events(watcher, "presence.join").length === 13);
  const joins = tally(watcher, "presence.join", "p:a");
  const leaves = tally(watcher, "presence.leave", "p:a");
  assert.equal(joins.size, 13);
  for (const n of joins.values()) assert.equal(n, 1);
  assert.equal(leaves.size, 10);
  for (const [id, n] of leaves) {
    assert.equal(n, 1);
    const order = watcher.messages.filter((m) => (m.data as Data)?.clientId === id).map((m) =>
      m.type
    );
    assert.deepEqual(order, ["presence.join", "presence.leave"]);
  }
  assert.deepEqual(await a.presenceStats("p:a"), { clients: 3, users: 3 });
  // b closes: its two members' leaves reach a's member before b's backplane goes.
  await b.close();
  await until(() => events(watcher, "presence.leave").length === 12);
  assert.deepEqual(await a.presenceStats("p:a"), { clients: 1, users: 1 });
  assert.deepEqual(await a.userPresence("bob"), { online: false, connections: 0 });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(events(watcher, "presence.leave").length, 12);
  await a.close();
  assert.equal(inner.size, 0);
  void stay;
});

test("A write that fails is reported and repaired at the next heartbeat: the entry is added and announced once", async () => {
  const clock = new ManualClock();
  const store = new MemoryPresenceStore({ now: () => clock.now() });
  const errors: string[] = [];
  const hub = hubWith({ clock, presenceStore: store, onError: (_e, s) => void errors.push(s) });
  const watcher = await member(hub, "p:a", "ada");
  await settle();
  const add = store.add.bind(store);
  let failures = 1;
  store.add = (replica, room, entry) => {
    if (failures-- > 0) throw new Error("store down");
    return add(replica, room, entry);
  };
  const bob = await member(hub, "p:a", "bob");
  await settle();
  assert.deepEqual(errors, ["presence"]);
  assert.equal((await hub.presence("p:a")).length, 1);
  assert.equal(events(watcher, "presence.join").length, 1);
  await advance(clock, TTL / 3);
  assert.equal((await hub.presence("p:a")).length, 2);
  const joins = events(watcher, "presence.join").map((d) => d.userId);
  assert.deepEqual(joins, ["ada", "bob"]);
  await advance(clock, TTL);
  assert.equal(events(watcher, "presence.join").length, 2);
  bob.close();
  await settle();
  assert.deepEqual(events(watcher, "presence.leave").map((d) => d.userId), ["bob"]);
  await hub.close();
});
