// The presence store contract: what every PresenceStore does, whatever holds the entries.
// Registered for MemoryPresenceStore (tests/core/presence_store_contract_test.ts); a shared
// store (Redis) registers it with a fixture whose `advance` waits real time (use a short TTL
// and margins of hundreds of ms) or moves the store's own clock.
import assert from "node:assert/strict";
import type { PresenceEntry, PresenceExpired, PresenceStore } from "../../mod.ts";
import { test, type TestOptions } from "../_harness.ts";

/** One store for a test. */
export interface PresenceStoreFixture {
  /** The store under test, empty. */
  readonly store: PresenceStore;
  /** The TTL the cases heartbeat with (ms). */
  readonly ttlMs: number;
  /** Let `ms` pass for the store (a manual clock, or a real wait). */
  advance(ms: number): Promise<void>;
  /** Make the store lose all its data (a restart without persistence). */
  lose(): Promise<void>;
  /** Release everything the fixture opened. */
  close(): Promise<void>;
}

/** Room names and ids that break naive key building or quoting. */
export const AWKWARD_NAMES: readonly string[] = [
  'a"b\\c',
  "{x}",
  "x:y:z",
  "*",
  "ü😀 \u2028 room",
];

function byId(entries: readonly PresenceEntry[]): PresenceEntry[] {
  return [...entries].sort((a, b) => a.clientId < b.clientId ? -1 : 1);
}

function expiredIds(expired: readonly PresenceExpired[]): string[] {
  return expired.map((e) => `${e.replica}/${e.room}/${e.entry.clientId}`).sort();
}

/**
 * Register the contract.
 * @param name Implementation name.
 * @param make A fresh, empty store per test.
 * @param options Skip conditions.
 */
export function presenceStoreContract(
  name: string,
  make: () => Promise<PresenceStoreFixture>,
  options: TestOptions = {},
): void {
  function contract(title: string, fn: (f: PresenceStoreFixture) => Promise<void>): void {
    test(`${name}: ${title}`, async () => {
      const fixture = await make();
      try {
        await fn(fixture);
      } finally {
        await fixture.close();
      }
    }, { timeout: 20_000, ...options });
  }

  contract("a first heartbeat answers lost, later ones ok", async ({ store, ttlMs }) => {
    assert.equal(await store.heartbeat("A", ttlMs), "lost");
    assert.equal(await store.heartbeat("A", ttlMs), "ok");
    assert.equal(await store.heartbeat("B", ttlMs), "lost");
  });

  contract(
    "add is an upsert that says whether the entry is new; members and counts see every replica",
    async ({ store, ttlMs }) => {
      await store.heartbeat("A", ttlMs);
      await store.heartbeat("B", ttlMs);
      assert.equal(await store.add("A", "r", { clientId: "c1", userId: "ada" }), true);
      assert.equal(await store.add("A", "r", { clientId: "c2", userId: "ada" }), true);
      assert.equal(await store.add("B", "r", { clientId: "c3", userId: "bob" }), true);
      assert.equal(await store.add("B", "r", { clientId: "c4" }), true);
      const info = { name: "Ada ü😀", tags: ["x", 1, null, { deep: true }] };
      assert.equal(await store.add("A", "r", { clientId: "c1", userId: "ada", info }), false);
      assert.deepEqual(byId(await store.members("r")), [
        { clientId: "c1", userId: "ada", info },
        { clientId: "c2", userId: "ada" },
        { clientId: "c3", userId: "bob" },
        { clientId: "c4" },
      ]);
      assert.deepEqual(await store.counts("r"), { clients: 4, users: 2 });
      // A re-add under another user id moves the user count.
      await store.add("A", "r", { clientId: "c2", userId: "cy" });
      assert.deepEqual(await store.counts("r"), { clients: 4, users: 3 });
      assert.deepEqual(await store.members("other"), []);
      assert.deepEqual(await store.counts("other"), { clients: 0, users: 0 });
    },
  );

  contract("adding a room's only entry again keeps it", async ({ store, ttlMs }) => {
    await store.heartbeat("A", ttlMs);
    assert.equal(await store.add("A", "r", { clientId: "c1", userId: "ada" }), true);
    assert.equal(await store.add("A", "r", { clientId: "c1", userId: "ada", info: 1 }), false);
    assert.deepEqual(await store.members("r"), [{ clientId: "c1", userId: "ada", info: 1 }]);
    assert.deepEqual(await store.counts("r"), { clients: 1, users: 1 });
    assert.deepEqual(await store.remove("A", "r", "c1"), {
      clientId: "c1",
      userId: "ada",
      info: 1,
    });
  });

  contract("remove returns the entry once, then undefined", async ({ store, ttlMs }) => {
    await store.heartbeat("A", ttlMs);
    await store.add("A", "r", { clientId: "c1", userId: "ada", info: "hi" });
    await store.add("A", "r", { clientId: "c2", userId: "ada" });
    const removed = await Promise.all([
      store.remove("A", "r", "c1"),
      store.remove("A", "r", "c1"),
      store.remove("A", "r", "c1"),
    ]);
    assert.deepEqual(removed.filter((e) => e !== undefined), [
      { clientId: "c1", userId: "ada", info: "hi" },
    ]);
    assert.equal(await store.remove("A", "r", "nobody"), undefined);
    assert.equal(await store.remove("A", "nowhere", "c2"), undefined);
    assert.deepEqual(await store.counts("r"), { clients: 1, users: 1 });
    assert.deepEqual(await store.remove("A", "r", "c2"), { clientId: "c2", userId: "ada" });
    assert.deepEqual(await store.counts("r"), { clients: 0, users: 0 });
    assert.deepEqual(await store.members("r"), []);
  });

  contract("awkward room names and ids round-trip", async ({ store, ttlMs }) => {
    await store.heartbeat("A", ttlMs);
    for (const room of AWKWARD_NAMES) {
      for (const id of AWKWARD_NAMES) {
        await store.add("A", room, { clientId: id, userId: id, info: { room, id } });
      }
    }
    for (const room of AWKWARD_NAMES) {
      assert.deepEqual(
        byId(await store.members(room)),
        byId(AWKWARD_NAMES.map((id) => ({ clientId: id, userId: id, info: { room, id } }))),
      );
      assert.deepEqual(await store.counts(room), {
        clients: AWKWARD_NAMES.length,
        users: AWKWARD_NAMES.length,
      });
    }
    assert.deepEqual(await store.remove("A", AWKWARD_NAMES[0], AWKWARD_NAMES[1]), {
      clientId: AWKWARD_NAMES[1],
      userId: AWKWARD_NAMES[1],
      info: { room: AWKWARD_NAMES[0], id: AWKWARD_NAMES[1] },
    });
  });

  contract("user presence sums the replicas' counts; 0 removes", async ({ store, ttlMs }) => {
    await store.heartbeat("A", ttlMs);
    await store.heartbeat("B", ttlMs);
    assert.deepEqual(await store.user("ada"), { online: false, connections: 0 });
    await store.setUserConnections("A", "ada", 2);
    await store.setUserConnections("B", "ada", 1);
    await store.setUserConnections("B", "bob", 1);
    assert.deepEqual(await store.user("ada"), { online: true, connections: 3 });
    await store.setUserConnections("A", "ada", 1); // idempotent: a count, not a delta
    await store.setUserConnections("A", "ada", 1);
    assert.deepEqual(await store.user("ada"), { online: true, connections: 2 });
    await store.setUserConnections("A", "ada", 0);
    await store.setUserConnections("B", "ada", 0);
    assert.deepEqual(await store.user("ada"), { online: false, connections: 0 });
    assert.deepEqual(await store.user("bob"), { online: true, connections: 1 });
  });

  contract(
    "a replica that stops heartbeating is swept after its TTL: its entries go to exactly one sweep, with its user counts",
    async ({ store, ttlMs, advance }) => {
      await store.heartbeat("A", ttlMs);
      await store.heartbeat("B", ttlMs);
      await store.add("A", "r", { clientId: "a1", userId: "ada" });
      await store.add("B", "r", { clientId: "b1", userId: "bob", info: { n: 1 } });
      await store.add("B", "r", { clientId: "b2", userId: "bob" });
      await store.add("B", "s", { clientId: "b1", userId: "bob" });
      await store.setUserConnections("A", "ada", 1);
      await store.setUserConnections("B", "bob", 2);
      await store.setUserConnections("B", "ada", 1);
      // Before the TTL: nothing is swept.
      await advance(ttlMs / 2);
      await store.heartbeat("A", ttlMs);
      assert.deepEqual(await store.sweep(), []);
      // After it: B's entries, to one sweep among several at once.
      await advance(ttlMs / 2 + ttlMs / 4);
      await store.heartbeat("A", ttlMs);
      const sweeps = await Promise.all([store.sweep(), store.sweep(), store.sweep()]);
      const all = sweeps.flat();
      assert.deepEqual(expiredIds(all), ["B/r/b1", "B/r/b2", "B/s/b1"]);
      assert.equal(sweeps.filter((s) => s.length > 0).length, 1, "one sweep claims B");
      const b1 = all.find((e) => e.room === "r" && e.entry.clientId === "b1")!;
      assert.deepEqual(b1.entry, { clientId: "b1", userId: "bob", info: { n: 1 } });
      assert.deepEqual(await store.sweep(), []);
      assert.deepEqual(await store.members("r"), [{ clientId: "a1", userId: "ada" }]);
      assert.deepEqual(await store.counts("r"), { clients: 1, users: 1 });
      assert.deepEqual(await store.counts("s"), { clients: 0, users: 0 });
      assert.deepEqual(await store.user("bob"), { online: false, connections: 0 });
      assert.deepEqual(await store.user("ada"), { online: true, connections: 1 });
      // Its own late removes find nothing (the leave was the sweeper's to announce).
      assert.equal(await store.remove("B", "r", "b1"), undefined);
      // Its late heartbeat learns that it was declared dead; then it is a replica again.
      assert.equal(await store.heartbeat("B", ttlMs), "expired");
      assert.equal(await store.heartbeat("B", ttlMs), "ok");
      assert.equal(await store.add("B", "r", { clientId: "b1", userId: "bob" }), true);
      assert.deepEqual(await store.counts("r"), { clients: 2, users: 2 });
    },
  );

  contract("an entry that remove returned is never returned by a sweep", async (f) => {
    const { store, ttlMs } = f;
    await store.heartbeat("B", ttlMs);
    await store.add("B", "r", { clientId: "b1" });
    await store.add("B", "r", { clientId: "b2" });
    assert.deepEqual(await store.remove("B", "r", "b1"), { clientId: "b1" });
    await f.advance(ttlMs + ttlMs / 4);
    assert.deepEqual(expiredIds(await store.sweep()), ["B/r/b2"]);
  });

  contract(
    "a store that lost its data answers lost to every replica's next heartbeat",
    async ({ store, ttlMs, lose }) => {
      await store.heartbeat("A", ttlMs);
      await store.add("A", "r", { clientId: "a1", userId: "ada" });
      await store.setUserConnections("A", "ada", 1);
      await lose();
      assert.deepEqual(await store.counts("r"), { clients: 0, users: 0 });
      assert.deepEqual(await store.user("ada"), { online: false, connections: 0 });
      assert.equal(await store.heartbeat("A", ttlMs), "lost");
      assert.equal(await store.add("A", "r", { clientId: "a1", userId: "ada" }), true);
      assert.equal(await store.heartbeat("A", ttlMs), "ok");
    },
  );

  contract(
    "entries added again after a lost heartbeat belong to the replica (swept with it)",
    async ({ store, ttlMs, lose, advance }) => {
      await store.heartbeat("A", ttlMs);
      await lose();
      assert.equal(await store.heartbeat("A", ttlMs), "lost");
      await store.add("A", "r", { clientId: "a1" });
      await advance(ttlMs + ttlMs / 4);
      assert.deepEqual(expiredIds(await store.sweep()), ["A/r/a1"]);
    },
  );

  // A replica's adds can reach the store before any heartbeat of it did (its first one failed
  // while the store was connecting, or the store restarted between two heartbeats). Its entries
  // must still expire with it (a replica that dies then leaves no ghosts), and its next
  // heartbeat must still say what the store did not know ("lost" or "expired").
  contract(
    "adds and user counts of a replica the store has no record of are swept after the TTL (not extended by more adds), exactly once",
    async ({ store, ttlMs, lose, advance }) => {
      await store.heartbeat("A", ttlMs);
      await lose(); // A's record is gone, as when its first heartbeat failed
      await store.heartbeat("B", ttlMs);
      assert.equal(await store.add("A", "r", { clientId: "a1", userId: "ada" }), true);
      await store.setUserConnections("A", "ada", 2);
      await store.add("B", "r", { clientId: "b1", userId: "bob" });
      await advance(ttlMs / 2);
      // More adds and counts do not extend A's life: only a heartbeat does.
      assert.equal(await store.add("A", "r", { clientId: "a2" }), true);
      assert.equal(await store.add("A", "s", { clientId: "a1", userId: "ada" }), true);
      await store.setUserConnections("A", "ada", 3);
      await store.heartbeat("B", ttlMs);
      assert.deepEqual(await store.sweep(), []);
      assert.deepEqual(await store.user("ada"), { online: true, connections: 3 });
      await advance(ttlMs / 2 + ttlMs / 4);
      await store.heartbeat("B", ttlMs);
      const sweeps = await Promise.all([store.sweep(), store.sweep(), store.sweep()]);
      assert.deepEqual(expiredIds(sweeps.flat()), ["A/r/a1", "A/r/a2", "A/s/a1"]);
      assert.equal(sweeps.filter((s) => s.length > 0).length, 1, "one sweep claims A");
      assert.deepEqual(await store.sweep(), []);
      assert.deepEqual(await store.members("r"), [{ clientId: "b1", userId: "bob" }]);
      assert.deepEqual(await store.counts("s"), { clients: 0, users: 0 });
      assert.deepEqual(await store.user("ada"), { online: false, connections: 0 });
      // Had it been alive after all, its late heartbeat learns that its entries were swept.
      assert.equal(await store.heartbeat("A", ttlMs), "expired");
      assert.equal(await store.heartbeat("A", ttlMs), "ok");
    },
  );

  contract(
    "a heartbeat that finds only what adds created answers lost, then ok; those entries are the replica's",
    async ({ store, ttlMs, advance }) => {
      // Before any heartbeat at all: a count, then an entry.
      await store.setUserConnections("A", "ada", 1);
      assert.equal(await store.add("A", "r", { clientId: "a1", userId: "ada" }), true);
      assert.equal(await store.heartbeat("A", ttlMs), "lost");
      assert.equal(await store.heartbeat("A", ttlMs), "ok");
      assert.equal(await store.add("A", "r", { clientId: "a1", userId: "ada" }), false);
      assert.deepEqual(await store.counts("r"), { clients: 1, users: 1 });
      await advance(ttlMs + ttlMs / 4);
      assert.deepEqual(expiredIds(await store.sweep()), ["A/r/a1"]);
      assert.deepEqual(await store.user("ada"), { online: false, connections: 0 });
    },
  );

  contract(
    "after a store restart, an add before the replica's next heartbeat does not hide the loss",
    async ({ store, ttlMs, lose }) => {
      await store.heartbeat("A", ttlMs);
      await store.add("A", "r", { clientId: "a1" });
      await store.setUserConnections("A", "ada", 1);
      await lose();
      // A join lands between the restart and A's next heartbeat.
      assert.equal(await store.add("A", "r", { clientId: "a2" }), true);
      assert.equal(await store.heartbeat("A", ttlMs), "lost", "so that A adds a1 again");
      assert.equal(await store.add("A", "r", { clientId: "a1" }), true);
      assert.equal(await store.add("A", "r", { clientId: "a2" }), false);
      assert.equal(await store.heartbeat("A", ttlMs), "ok");
      assert.deepEqual(await store.counts("r"), { clients: 2, users: 0 });
    },
  );

  contract(
    "a swept replica's add before its late heartbeat: swept again if it never beats, and its heartbeat still answers expired",
    async ({ store, ttlMs, advance }) => {
      await store.heartbeat("A", ttlMs);
      await store.add("A", "r", { clientId: "a1" });
      await advance(ttlMs + ttlMs / 4);
      assert.deepEqual(expiredIds(await store.sweep()), ["A/r/a1"]);
      // A was only paused: a join of its lands before its next heartbeat.
      assert.equal(await store.add("A", "r", { clientId: "a2" }), true);
      await advance(ttlMs + ttlMs / 4);
      assert.deepEqual(expiredIds(await store.sweep()), ["A/r/a2"]);
      assert.equal(await store.add("A", "r", { clientId: "a3" }), true);
      assert.equal(await store.heartbeat("A", ttlMs), "expired", "its a2 and a1 left");
      assert.equal(await store.heartbeat("A", ttlMs), "ok");
      assert.deepEqual(await store.members("r"), [{ clientId: "a3" }]);
    },
  );

  contract(
    "goodbye removes the replica with what is left of its entries and user counts",
    async ({ store, ttlMs }) => {
      await store.heartbeat("A", ttlMs);
      await store.heartbeat("B", ttlMs);
      await store.add("A", "r", { clientId: "a1", userId: "ada" });
      await store.add("B", "r", { clientId: "b1", userId: "bob" });
      await store.setUserConnections("A", "ada", 1);
      assert.deepEqual(expiredIds(await store.goodbye("A")), ["A/r/a1"]);
      assert.deepEqual(await store.members("r"), [{ clientId: "b1", userId: "bob" }]);
      assert.deepEqual(await store.user("ada"), { online: false, connections: 0 });
      assert.deepEqual(await store.goodbye("A"), []);
      assert.equal(await store.heartbeat("A", ttlMs), "lost"); // not "expired": it said goodbye
    },
  );
}
