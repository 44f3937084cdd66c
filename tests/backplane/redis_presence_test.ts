// RedisPresenceStore against a private redis-server (tests/_redis.ts): the presence store
// contract, then what only a shared store shows: two replicas' processes (two connections)
// removing and sweeping the same entries at once, counted; sweeps bounded per script run with
// a dead replica that comes back mid-sweep; kill -9 without persistence under the same store
// objects; a Redis that is down or does not answer; the keys it leaves behind.
import assert from "node:assert/strict";
import { createClient } from "redis";
import { Hub, MemoryBus, type PresenceEntry, type PresenceExpired } from "../../mod.ts";
import { RedisPresenceStore, redisPresenceStore } from "../../src/backplane/redis.ts";
import { connectMemory, ManualClock, type MemoryClient } from "../../src/testing/mod.ts";
import { delay, test, until } from "../_harness.ts";
import { hasRedis, redisCommand, type RedisServer, requireRedis, startRedis } from "../_redis.ts";
import { type Client, connected, release } from "../_redis_client.ts";
import { presenceStoreContract } from "../contract/presence_store_contract.ts";

requireRedis("Redis presence store tests (tests/backplane/redis_presence_test.ts)");

presenceStoreContract(
  "RedisPresenceStore",
  async () => {
    const server = await startRedis();
    const client = await connected(server.url);
    return {
      store: new RedisPresenceStore(client),
      // Real time: Redis expires by its own clock. Margins of 250 ms either side.
      ttlMs: 1000,
      advance: (ms) => delay(ms),
      async lose() {
        await server.down();
        await server.up();
        await until(() => client.isReady, 10_000, "the client to reconnect");
      },
      async close() {
        await release(client);
        await server.stop();
      },
    };
  },
  { if: hasRedis },
);

const LONG = 60_000;
const SHORT = 300;

/** Two replicas' stores on their own connections to one Redis. */
async function twoStores(server: RedisServer, options = {}) {
  const clients = [await connected(server.url), await connected(server.url)];
  const [a, b] = clients.map((c) => new RedisPresenceStore(c, options));
  return { a, b, close: () => release(...clients) };
}

function redisTest(name: string, fn: (server: RedisServer) => Promise<void>): void {
  test(`RedisPresenceStore ${name}`, async () => {
    const server = await startRedis();
    try {
      await fn(server);
    } finally {
      await server.stop();
    }
  }, { if: hasRedis, timeout: 30_000 });
}

/** Assert each of `expected` (`room/clientId`) was returned exactly once, and nothing else. */
function assertOnce(
  got: readonly { room: string; entry: PresenceEntry }[],
  expected: readonly string[],
  what: string,
): void {
  const seen = new Map<string, number>();
  for (const { room, entry } of got) {
    const key = `${room}/${entry.clientId}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  const twice = [...seen].filter(([, n]) => n > 1).map(([k]) => k);
  assert.deepEqual(twice, [], `${what}: returned more than once`);
  const want = new Set(expected);
  assert.deepEqual(expected.filter((k) => !seen.has(k)), [], `${what}: never returned`);
  assert.deepEqual([...seen.keys()].filter((k) => !want.has(k)), [], `${what}: unexpected`);
  assert.equal(got.length, expected.length, `${what}: count`);
}

/** Every key in the server (KEYS is fine on a test's private Redis). */
async function keys(server: RedisServer): Promise<string[]> {
  const reply = await redisCommand(server.port, "KEYS", "*");
  const lines = reply.split("\r\n");
  const out: string[] = [];
  for (let i = 2; i < lines.length; i += 2) out.push(lines[i]);
  return out.filter((k) => k !== "").sort();
}

redisTest("gives each entry to exactly one of two replicas removing at once", async (server) => {
  const { a, b, close } = await twoStores(server);
  try {
    await a.heartbeat("A", LONG);
    const ids = Array.from({ length: 400 }, (_, i) => `c${i}`);
    await Promise.all(ids.map((id, i) => a.add("A", "r", { clientId: id, userId: `u${i % 40}` })));
    assert.deepEqual(await b.counts("r"), { clients: 400, users: 40 });
    // Ten at a time per connection, one from the front and one from the back, so that the
    // two replicas' removes interleave on Redis and meet in the middle.
    const remover = (s: RedisPresenceStore, order: string[]) => async () => {
      const won: { room: string; entry: PresenceEntry }[] = [];
      for (let i = 0; i < order.length; i += 10) {
        const got = await Promise.all(order.slice(i, i + 10).map((id) => s.remove("A", "r", id)));
        for (const entry of got) if (entry !== undefined) won.push({ room: "r", entry });
      }
      return won;
    };
    const [x, y] = await Promise.all([remover(a, ids)(), remover(b, [...ids].reverse())()]);
    assertOnce([...x, ...y], ids.map((id) => `r/${id}`), "remove");
    console.log(`  removes won: ${x.length} by one connection, ${y.length} by the other`);
    assert.ok(x.length > 0 && y.length > 0, "both replicas won some");
    assert.deepEqual(await a.counts("r"), { clients: 0, users: 0 });
  } finally {
    await close();
  }
});

redisTest(
  "sweeps a dead replica's 1,500 entries in 7 rooms once across two replicas sweeping at once, batch by batch",
  async (server) => {
    // 100 removals per script run: the two sweepers' runs interleave on Redis.
    const { a, b, close } = await twoStores(server, { sweepBatch: 100 });
    try {
      assert.equal(await a.heartbeat("dead", LONG), "lost");
      assert.equal(await b.heartbeat("live", LONG), "lost");
      const expected: string[] = [];
      const adds: Promise<unknown>[] = [];
      for (let i = 0; i < 1500; i++) {
        const room = `room${i % 7}`;
        adds.push(a.add("dead", room, { clientId: `d${i}`, userId: `u${i % 50}`, info: i }));
        expected.push(`${room}/d${i}`);
      }
      for (let i = 0; i < 21; i++) {
        adds.push(b.add("live", `room${i % 7}`, { clientId: `l${i}`, userId: "ada" }));
      }
      for (let u = 0; u < 50; u++) adds.push(a.setUserConnections("dead", `u${u}`, 2));
      adds.push(b.setUserConnections("live", "u1", 1));
      await Promise.all(adds);
      // Its last heartbeat, with a short TTL (1,500 adds may take longer than it).
      assert.equal(await a.heartbeat("dead", SHORT), "ok");
      assert.deepEqual(await b.sweep(), [], "nothing has expired yet");
      assert.deepEqual(await b.user("u1"), { online: true, connections: 3 });
      await delay(SHORT + 300);
      assert.equal(await b.heartbeat("live", LONG), "ok");
      const [x, y] = await Promise.all([a.sweep(), b.sweep()]);
      const all: PresenceExpired[] = [...x, ...y];
      assertOnce(all, expected, "sweep");
      console.log(`  swept: ${x.length} by one replica, ${y.length} by the other`);
      assert.ok(all.every((e) => e.replica === "dead"));
      const d8 = all.find((e) => e.entry.clientId === "d8");
      assert.deepEqual(d8, {
        room: "room1",
        replica: "dead",
        entry: { clientId: "d8", userId: "u8", info: 8 },
      });
      assert.deepEqual(await a.sweep(), [], "nothing left");
      for (let r = 0; r < 7; r++) {
        assert.deepEqual(await a.counts(`room${r}`), { clients: 3, users: 1 }, `room${r}`);
        const members = await a.members(`room${r}`);
        assert.ok(members.every((m) => m.clientId.startsWith("l")), `room${r}: live only`);
      }
      assert.deepEqual(await a.user("u1"), { online: true, connections: 1 }, "dead's gone");
      assert.deepEqual(await a.user("u2"), { online: false, connections: 0 });
      assert.equal(await a.heartbeat("dead", LONG), "expired");
      assert.equal(await a.heartbeat("dead", LONG), "ok");
    } finally {
      await close();
    }
  },
);

redisTest(
  "gives each entry of a dead replica to exactly one of its sweepers and its removers",
  async (
    server,
  ) => {
    const { a, b, close } = await twoStores(server, { sweepBatch: 50 });
    try {
      await a.heartbeat("dead", SHORT);
      const ids = Array.from({ length: 600 }, (_, i) => `d${i}`);
      await Promise.all(ids.map((id) => a.add("dead", "r", { clientId: id })));
      await delay(SHORT + 300);
      const removes = Promise.all(ids.map(async (id) => {
        const entry = await b.remove("dead", "r", id);
        return entry === undefined ? [] : [{ room: "r", entry }];
      }));
      const [s1, s2, removed] = await Promise.all([a.sweep(), b.sweep(), removes]);
      assertOnce([...s1, ...s2, ...removed.flat()], ids.map((id) => `r/${id}`), "sweep or remove");
      console.log(`  swept ${s1.length + s2.length}, removed ${removed.flat().length}`);
      assert.deepEqual(await a.counts("r"), { clients: 0, users: 0 });
    } finally {
      await close();
    }
  },
);

redisTest(
  "bounds a sweep's work; a dead replica back mid-sweep keeps the entries it adds again (no join, no leave)",
  async (server) => {
    const { a, b, close } = await twoStores(server, { sweepBatch: 40, sweepRuns: 2 });
    try {
      await a.heartbeat("A", LONG);
      const ids = Array.from({ length: 300 }, (_, i) => `a${i}`);
      await Promise.all(ids.map((id) => a.add("A", "r", { clientId: id, userId: "ada" })));
      await a.setUserConnections("A", "ada", 300);
      await a.heartbeat("A", SHORT);
      await delay(SHORT + 300);
      const first = await b.sweep();
      assert.equal(first.length, 80, "2 runs of 40");
      assert.equal((await b.counts("r")).clients, 220);
      // A was only paused: it learns it was declared dead and adds its members again, as the
      // hub does. The ones not swept yet stay (add: not new, so the hub sends no join).
      assert.equal(await a.heartbeat("A", LONG), "expired");
      const news = await Promise.all(
        ids.map((id) => a.add("A", "r", { clientId: id, userId: "ada" })),
      );
      await a.setUserConnections("A", "ada", 300);
      const swept = new Set(first.map((e) => e.entry.clientId));
      assert.deepEqual(
        ids.filter((_, i) => news[i]),
        ids.filter((id) => swept.has(id)),
        "new again: exactly the swept ones (their leaves were sent, so their joins are due)",
      );
      // Later sweeps return none of the entries that stayed (no leave without a join).
      const later: PresenceExpired[] = [];
      for (let i = 0; i < 10; i++) later.push(...await b.sweep());
      assert.deepEqual(later, []);
      assert.deepEqual(await b.counts("r"), { clients: 300, users: 1 });
      assert.deepEqual(await b.user("ada"), { online: true, connections: 300 });
      assert.equal(await a.heartbeat("A", LONG), "ok");
    } finally {
      await close();
    }
  },
);

redisTest(
  "keeps working under the same store objects after kill -9 without persistence: lost, re-registered, swept, via EVAL",
  async (server) => {
    const clients = [await connected(server.url), await connected(server.url)];
    const sent: string[] = [];
    const spy = {
      sendCommand: (args: string[], options?: { timeout?: number }) => {
        sent.push(args[0]);
        return clients[0].sendCommand(args, options);
      },
    };
    const a = new RedisPresenceStore(spy);
    const b = new RedisPresenceStore(clients[1]);
    try {
      await a.heartbeat("A", LONG);
      await b.heartbeat("B", LONG);
      await a.add("A", "r", { clientId: "a1", userId: "ada" });
      await b.add("B", "r", { clientId: "b1", userId: "bob" });
      await a.setUserConnections("A", "ada", 1);
      await server.down();
      const t0 = Date.now();
      await assert.rejects(() => a.counts("r"), /^Error: Cannot count presence: redis: /);
      await assert.rejects(() => b.heartbeat("B", LONG), /Cannot heartbeat: redis/);
      assert.ok(Date.now() - t0 < 1000, "a down Redis rejects at once, not after a timeout");
      await server.up();
      await until(() => clients.every((c) => c.isReady), 10_000, "both clients back");
      sent.length = 0;
      assert.equal(await a.heartbeat("A", SHORT), "lost");
      assert.deepEqual(sent, ["EVALSHA", "EVAL"], "the script cache was lost with the data");
      assert.equal(await b.heartbeat("B", LONG), "lost");
      assert.deepEqual(await b.counts("r"), { clients: 0, users: 0 }, "data lost");
      // Re-registration, as the hubs do after "lost".
      assert.equal(await a.add("A", "r", { clientId: "a1", userId: "ada" }), true);
      assert.equal(await b.add("B", "r", { clientId: "b1", userId: "bob" }), true);
      await a.setUserConnections("A", "ada", 1);
      assert.deepEqual(await b.counts("r"), { clients: 2, users: 2 });
      assert.deepEqual(await b.user("ada"), { online: true, connections: 1 });
      // And expiry works again: A stops heartbeating.
      await delay(SHORT + 300);
      assert.deepEqual(await b.sweep(), [{
        room: "r",
        replica: "A",
        entry: { clientId: "a1", userId: "ada" },
      }]);
      assert.deepEqual(await b.user("ada"), { online: false, connections: 0 });
      assert.equal(await a.heartbeat("A", LONG), "expired");
    } finally {
      await release(...clients);
    }
  },
);

redisTest(
  "a replica whose first heartbeat failed (Redis down) and whose adds then worked is swept after its TTL, exactly once",
  async (server) => {
    const clients = [await connected(server.url), await connected(server.url)];
    const [a, b] = clients.map((c) => new RedisPresenceStore(c, { sweepBatch: 50 }));
    try {
      await server.down();
      await assert.rejects(() => a.heartbeat("A", SHORT), /Cannot heartbeat: redis/);
      await server.up();
      await until(() => clients.every((c) => c.isReady), 10_000, "both clients back");
      // A's joins work now; A dies before its next heartbeat.
      const ids = Array.from({ length: 120 }, (_, i) => `a${i}`);
      await Promise.all(ids.map((id, i) => a.add("A", `r${i % 3}`, { clientId: id })));
      await a.setUserConnections("A", "ada", 2);
      assert.equal(await b.heartbeat("B", LONG), "lost");
      assert.deepEqual(await b.user("ada"), { online: true, connections: 2 });
      const t0 = Date.now();
      const swept: PresenceExpired[] = [];
      while (swept.length < ids.length && Date.now() - t0 < SHORT + 1000) {
        const [x, y] = await Promise.all([a.sweep(), b.sweep()]);
        swept.push(...x, ...y);
        await delay(20);
      }
      const took = Date.now() - t0;
      assertOnce(swept, ids.map((id, i) => `r${i % 3}/${id}`), "sweep");
      assert.ok(took <= SHORT + 300, `swept within the TTL (${took} ms)`);
      for (let i = 0; i < 5; i++) assert.deepEqual(await b.sweep(), [], "nothing twice");
      assert.deepEqual(await b.user("ada"), { online: false, connections: 0 });
      assert.deepEqual(await keys(server), [
        "hubbub:presence:r:{A}:t",
        "hubbub:presence:replicas",
      ]);
      assert.equal(await a.heartbeat("A", LONG), "expired");
    } finally {
      await release(...clients);
    }
  },
);

redisTest(
  "a hub whose first heartbeat failed while its store was connecting, killed before its next one: its members leave within the TTL, once each",
  async (server) => {
    const TTL = 1000;
    const bus = new MemoryBus();
    const stores: RedisPresenceStore[] = [];
    const errors: string[] = [];
    const hubWith = (clock?: ManualClock) => {
      // Not awaiting store.ready: the hub's first heartbeat goes out at construction.
      const store = redisPresenceStore({ url: server.url, createClient, maxReconnectDelayMs: 50 });
      stores.push(store);
      return new Hub({
        canJoin: () => true,
        identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? undefined }),
        presence: (room) => room.startsWith("p:"),
        presenceTtlMs: TTL,
        presenceStore: store,
        backplane: bus.connect(),
        onError: (e) => void errors.push(String(e)),
        ...(clock === undefined ? {} : { clock }),
      });
    };
    // Redis is unreachable when the doomed replica starts: its first heartbeat fails for sure.
    await server.down();
    // Its timers run on a clock nobody advances: it never heartbeats again, as if killed.
    const dead = hubWith(new ManualClock());
    await until(() => errors.some((e) => /Cannot heartbeat/.test(e)), 5000, "a failed heartbeat");
    await server.up();
    await eventually(
      "the doomed store to connect",
      5000,
      () => stores[0].counts("p:a").then(() => true),
    );
    const live = hubWith();
    const hubs = [dead, live];
    try {
      const member = async (hub: Hub, user: string): Promise<MemoryClient> => {
        const c = await connectMemory(hub, { url: `http://localhost/ws?user=${user}` });
        await c.next("connection.established");
        c.send({ type: "subscribe", room: "p:a" });
        await c.next("subscribed");
        return c;
      };
      const watcher = await member(live, "ada");
      // The doomed replica's joins work (its store is connected by now).
      const ghosts = [await member(dead, "g0"), await member(dead, "g1"), await member(dead, "g1")];
      await eventually(
        "the ghosts' adds",
        2000,
        async () => (await live.presenceStats("p:a")).clients === 4,
      );
      const t0 = Date.now();
      const ghostIds = dead.roomMembers("p:a").map((c) => c.id).sort();
      assert.equal(ghostIds.length, 3);
      assert.deepEqual(await live.userPresence("g1"), { online: true, connections: 2 });
      const leaves = () =>
        watcher.messages.filter((m) => m.type === "presence.leave").map((m) =>
          (m.data as { clientId: string }).clientId
        );
      // Swept by the live replica within TTL x 4/3 of the adds (plus a margin).
      await until(() => leaves().length >= 3, TTL * 4 / 3 + 700, "the ghosts' leaves");
      const took = Date.now() - t0;
      await delay(TTL); // later sweeps announce nothing more
      assert.deepEqual(leaves().sort(), ghostIds, "each ghost's leave, once");
      assert.deepEqual(await live.presenceStats("p:a"), { clients: 1, users: 1 });
      assert.deepEqual(await live.userPresence("g1"), { online: false, connections: 0 });
      console.log(`  ghosts gone ${took} ms after their joins (TTL ${TTL} ms)`);
      for (const g of ghosts) g.close();
      watcher.close();
    } finally {
      await Promise.all(hubs.map((h) => h.close()));
      for (const s of stores) await s.close();
    }
  },
);

test(
  "RedisPresenceStore keeps everything through kill -9 with AOF persistence: heartbeats answer ok",
  async () => {
    const server = await startRedis({ appendonly: true });
    const client = await connected(server.url);
    const store = new RedisPresenceStore(client);
    try {
      await store.heartbeat("A", LONG);
      await store.add("A", "r", { clientId: "a1", userId: "ada", info: { n: 1 } });
      await store.setUserConnections("A", "ada", 1);
      await server.down();
      await server.up();
      await until(() => client.isReady, 10_000, "the client to reconnect");
      assert.equal(await store.heartbeat("A", LONG), "ok");
      assert.deepEqual(await store.members("r"), [{
        clientId: "a1",
        userId: "ada",
        info: { n: 1 },
      }]);
      assert.deepEqual(await store.user("ada"), { online: true, connections: 1 });
    } finally {
      await release(client);
      await server.stop();
    }
  },
  { if: hasRedis, timeout: 30_000 },
);

test("RedisPresenceStore rejects after commandTimeoutMs when Redis never answers", async () => {
  const store = new RedisPresenceStore({ sendCommand: () => new Promise(() => {}) }, {
    commandTimeoutMs: 100,
  });
  const t0 = Date.now();
  await assert.rejects(
    () => store.members("r"),
    /Cannot read the presence of "r": redis: no answer within 100 ms/,
  );
  assert.ok(Date.now() - t0 < 1000);
  await store.close();
  await assert.rejects(() => store.counts("r"), /store is closed/);
});

test("RedisPresenceStore and redisPresenceStore() refuse bad arguments", () => {
  const client = { sendCommand: () => Promise.resolve(null) };
  // deno-lint-ignore no-explicit-any
  const bad = (c: any, o: any = {}) => () => new RedisPresenceStore(c, o);
  assert.throws(bad({}), TypeError);
  assert.throws(bad(client, { prefix: "a{b" }), TypeError);
  assert.throws(bad(client, { commandTimeoutMs: 0 }), RangeError);
  assert.throws(bad(client, { sweepBatch: -1 }), RangeError);
  assert.throws(bad(client, { tombstoneMs: Infinity }), RangeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => redisPresenceStore({ url: 1, createClient } as any), TypeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => redisPresenceStore({ url: "redis://x", createClient: 1 } as any), TypeError);
});

redisTest(
  "redisPresenceStore() owns its client; keys are hash-tagged per room, replica and user, and none is left behind",
  async (server) => {
    const store = redisPresenceStore({ url: server.url, createClient });
    await store.ready;
    await store.heartbeat("R", LONG);
    await store.add("R", "lobby", { clientId: "c1", userId: "ada" });
    await store.setUserConnections("R", "ada", 1);
    assert.deepEqual(await keys(server), [
      "hubbub:presence:r:{R}:o",
      "hubbub:presence:r:{R}:u",
      "hubbub:presence:replicas",
      "hubbub:presence:u:{ada}",
      "hubbub:{lobby}:pc",
      "hubbub:{lobby}:pe",
      "hubbub:{lobby}:po",
      "hubbub:{lobby}:pu",
    ]);
    assert.ok(await store.remove("R", "lobby", "c1"));
    await store.setUserConnections("R", "ada", 0);
    assert.deepEqual(await keys(server), ["hubbub:presence:replicas"]);
    await store.add("R", "lobby", { clientId: "c2" });
    assert.equal((await store.goodbye("R")).length, 1);
    assert.deepEqual(await keys(server), [], "nothing left after a goodbye");
    await store.close();
    await store.close();
    await assert.rejects(() => store.counts("lobby"), /store is closed/);
  },
);

redisTest("a prefix keeps two apps' presence apart on one Redis", async (server) => {
  const { a, close } = await twoStores(server, { prefix: "one:" });
  const clients = [await connected(server.url)];
  const b = new RedisPresenceStore(clients[0], { prefix: "two:" });
  try {
    await a.heartbeat("A", LONG);
    await b.heartbeat("A", LONG).then((beat) => assert.equal(beat, "lost"));
    await a.add("A", "r", { clientId: "c" });
    assert.deepEqual(await b.counts("r"), { clients: 0, users: 0 });
    assert.deepEqual(await a.counts("r"), { clients: 1, users: 0 });
    assert.ok((await keys(server)).every((k) => k.startsWith("one:") || k.startsWith("two:")));
  } finally {
    await close();
    await release(...clients);
  }
});

/** Poll an async condition (Redis answers asynchronously), within `ms`. */
async function eventually(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await delay(20);
  }
}

redisTest(
  "serves hubs: joins counted once everywhere, a frozen replica's members leave within the TTL once each, a Redis restart heals by itself",
  async (server) => {
    const TTL = 1000;
    const bus = new MemoryBus();
    const clients: Client[] = [];
    const hubWith = async (clock?: ManualClock) => {
      const client = await connected(server.url);
      clients.push(client);
      return new Hub({
        canJoin: () => true,
        identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? undefined }),
        presence: (room) => room.startsWith("p:"),
        presenceTtlMs: TTL,
        presenceStore: new RedisPresenceStore(client),
        backplane: bus.connect(),
        onError: () => {},
        ...(clock === undefined ? {} : { clock }),
      });
    };
    const a = await hubWith();
    const b = await hubWith();
    // Its timers run on a clock nobody advances: after its first heartbeat, it never beats again.
    const dead = await hubWith(new ManualClock());
    const hubs = [a, b, dead];
    try {
      await Promise.all(hubs.map((h) => h.ready));
      const member = async (hub: Hub, user: string): Promise<MemoryClient> => {
        const c = await connectMemory(hub, { url: `http://localhost/ws?user=${user}` });
        await c.next("connection.established");
        c.send({ type: "subscribe", room: "p:a" });
        await c.next("subscribed");
        return c;
      };
      const onA = await member(a, "ada");
      const onB = await member(b, "bob");
      const ghosts = [await member(dead, "g0"), await member(dead, "g1"), await member(dead, "g1")];
      const ghostIds = dead.roomMembers("p:a").map((c) => c.id).sort();
      const all = [...a.roomMembers("p:a"), ...b.roomMembers("p:a")].map((c) => c.id)
        .concat(ghostIds).sort();
      const tally = (c: MemoryClient, type: string) => {
        const seen = new Map<string, number>();
        for (const m of c.messages) {
          if (m.type !== type) continue;
          const id = (m.data as { clientId: string }).clientId;
          seen.set(id, (seen.get(id) ?? 0) + 1);
        }
        return seen;
      };
      // onA joined first: it sees every join (its own too), each once.
      await until(() => tally(onA, "presence.join").size === 5, 5000, "5 joins at onA");
      for (const h of hubs) {
        assert.deepEqual((await h.presence("p:a")).map((e) => e.clientId).sort(), all);
        assert.deepEqual(await h.presenceStats("p:a"), { clients: 5, users: 4 });
      }
      assert.deepEqual(await a.userPresence("g1"), { online: true, connections: 2 });
      // The frozen replica's members: gone within the TTL and a heartbeat interval or two.
      const t0 = Date.now();
      await eventually(
        "the ghosts to leave",
        4 * TTL,
        async () => (await b.presenceStats("p:a")).clients === 2,
      );
      const took = Date.now() - t0;
      await until(() => tally(onB, "presence.leave").size === 3, 2000, "3 leaves at onB");
      await delay(TTL); // more sweeps announce nothing more
      for (const c of [onA, onB]) {
        const leaves = tally(c, "presence.leave");
        assert.deepEqual([...leaves.keys()].sort(), ghostIds);
        for (const n of leaves.values()) assert.equal(n, 1);
        for (const n of tally(c, "presence.join").values()) assert.equal(n, 1);
      }
      assert.deepEqual(await a.userPresence("g1"), { online: false, connections: 0 });
      console.log(
        `  ghosts gone ${took} ms after the joins (the frozen replica beat last when it started)`,
      );
      // Redis restarts without its data: presence is whole again by itself, without events.
      const before = [onA, onB].map((c) => c.messages.length);
      await server.down();
      await server.up();
      const t1 = Date.now();
      await eventually("presence to be whole again", 5 * TTL, async () => {
        const [s, u] = await Promise.all([a.presenceStats("p:a"), b.userPresence("ada")]);
        return s.clients === 2 && s.users === 2 && u.connections === 1;
      });
      console.log(`  whole again ${Date.now() - t1} ms after Redis came back`);
      assert.deepEqual(
        (await b.presence("p:a")).map((e) => e.clientId).sort(),
        [
          ...a.roomMembers("p:a"),
          ...b.roomMembers("p:a"),
        ].map((c) => c.id).sort(),
      );
      assert.deepEqual([onA, onB].map((c) => c.messages.length), before, "no events");
      for (const g of ghosts) g.close();
    } finally {
      await Promise.all(hubs.map((h) => h.close()));
      await release(...clients);
    }
  },
);
