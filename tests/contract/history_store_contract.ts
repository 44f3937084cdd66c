// The history store contract: what every HistoryStore does, whatever holds the streams.
// Registered for MemoryHistoryStore (tests/core/history_store_contract_test.ts) and
// RedisHistoryStore (tests/backplane/redis_history_test.ts). Age cases run on real time with
// margins of hundreds of ms either side, so a loaded machine does not flip them.
import assert from "node:assert/strict";
import type { HistoryAppend, HistoryPolicy, HistoryStore } from "../../mod.ts";
import { test, type TestOptions, until } from "../_harness.ts";

/** One store for a test. */
export interface HistoryStoreFixture {
  /** The store under test, empty. */
  readonly store: HistoryStore;
  /**
   * Receive what the store publishes on a channel (only for a store that publishes): resolves
   * once listening.
   */
  listen?(channel: string): Promise<Listener>;
  /** Release everything the fixture opened. */
  close(): Promise<void>;
}

/** Messages received on one channel, in order. */
export interface Listener {
  readonly messages: string[];
  close(): Promise<void>;
}

const POLICY: Required<HistoryPolicy> = { maxMessages: 100, maxAgeMs: 600_000 };

/** Rooms and texts that break naive quoting: quotes, backslashes, braces, unicode, `}:m`. */
export const AWKWARD_ROOMS: readonly string[] = [
  'a"b\\c',
  "{x}",
  "x}:m",
  "x}:s",
  "x",
  "}{",
  "ü😀 \u2028 room",
];

/** A frame's head as the hub makes it: the envelope up to the offset's digits. */
export function headOf(type: string, data: unknown, room: string): string {
  return `{"type":${JSON.stringify(type)},"data":${JSON.stringify(data)},"room":${
    JSON.stringify(room)
  },"offset":`;
}

function msg(room: string, data: unknown, except?: string[]): HistoryAppend {
  const head = headOf("m", data, room);
  return except === undefined ? { head } : { head, except };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What a store fixture can do, declared when the contract is registered. */
export interface HistoryStoreCapabilities {
  /** The store publishes (`publishes: true`) and the fixture has `listen()`: else skipped. */
  publishes: boolean;
}

/**
 * Register the contract.
 * @param name Implementation name.
 * @param make A fresh, empty store per test.
 * @param supports What the fixture can do: a case it cannot run is registered as skipped.
 * @param options Skip conditions.
 */
export function historyStoreContract(
  name: string,
  make: () => Promise<HistoryStoreFixture>,
  supports: HistoryStoreCapabilities,
  options: TestOptions = {},
): void {
  function contract(
    title: string,
    fn: (f: HistoryStoreFixture) => Promise<void>,
    runs = true,
  ): void {
    test(`${name}: ${title}`, async () => {
      const fixture = await make();
      try {
        await fn(fixture);
      } finally {
        await fixture.close();
      }
    }, { timeout: 20_000, ...options, ...(runs ? {} : { if: false }) });
  }

  contract(
    "appends get offsets 1, 2, 3... in one epoch; each frame is head + offset + }",
    async ({ store }) => {
      const before = Date.now();
      const got = [];
      for (let i = 0; i < 5; i++) got.push(await store.append("r", msg("r", i), POLICY));
      const after = Date.now();
      assert.deepEqual(got.map((e) => e.offset), [1, 2, 3, 4, 5]);
      assert.equal(new Set(got.map((e) => e.epoch)).size, 1, "one epoch");
      assert.equal(typeof got[0].epoch, "string");
      assert.ok(got[0].epoch.length > 0);
      for (const [i, e] of got.entries()) {
        assert.equal(e.frame, headOf("m", i, "r") + (i + 1) + "}");
        assert.deepEqual(JSON.parse(e.frame), { type: "m", data: i, room: "r", offset: i + 1 });
        assert.ok(e.at >= before - 1000 && e.at <= after + 1000, `at ${e.at} is about now`);
        assert.equal(e.except, undefined);
      }
      const read = await store.read("r", {}, POLICY);
      assert.equal(read.epoch, got[0].epoch);
      assert.equal(read.offset, 5);
      assert.deepEqual(
        read.entries.map((e) => [e.offset, e.frame, e.at]),
        got.map((e) => [e.offset, e.frame, e.at]),
      );
      // Rooms are independent.
      const other = await store.append("r2", msg("r2", "x"), POLICY);
      assert.equal(other.offset, 1);
      assert.notEqual(other.epoch, got[0].epoch);
    },
  );

  contract(
    "a read of a room without a stream starts an empty one; the next append is 1 in its epoch",
    async ({ store }) => {
      const first = await store.read("new", {}, POLICY);
      // (`complete` is about a read `after` an offset: not asserted without one.)
      assert.deepEqual([typeof first.epoch, first.offset, first.entries], ["string", 0, []]);
      const again = await store.read("new", { after: 0 }, POLICY);
      assert.equal(again.epoch, first.epoch, "the same stream");
      assert.equal(again.complete, true, "after 0: nothing missing");
      assert.equal((await store.read("new", { after: 3 }, POLICY)).complete, false, "after 3");
      assert.equal(
        (await store.read("other", { after: 3 }, POLICY)).complete,
        false,
        "new, after 3",
      );
      const e = await store.append("new", msg("new", 1), POLICY);
      assert.deepEqual([e.offset, e.epoch], [1, first.epoch]);
      assert.equal((await store.read("new", { after: 0, limit: 0 }, POLICY)).offset, 1);
    },
  );

  contract(
    "trims by count: the latest maxMessages are kept, complete only after the held ones",
    async ({ store }) => {
      const policy = { maxMessages: 3, maxAgeMs: 600_000 };
      let epoch = "";
      for (let i = 1; i <= 7; i++) epoch = (await store.append("c", msg("c", i), policy)).epoch;
      const read = await store.read("c", {}, policy);
      assert.deepEqual([read.epoch, read.offset], [epoch, 7]);
      assert.deepEqual(read.entries.map((e) => e.offset), [5, 6, 7]);
      assert.deepEqual(read.entries.map((e) => JSON.parse(e.frame).data), [5, 6, 7]);
      const complete = [];
      for (let after = 0; after <= 8; after++) {
        const r = await store.read("c", { after }, policy);
        complete.push(r.complete);
        assert.deepEqual(
          r.entries.map((e) => e.offset),
          [5, 6, 7].filter((o) => o > after),
          `entries after ${after}`,
        );
        assert.equal(r.offset, 7);
      }
      assert.deepEqual(complete, [false, false, false, false, true, true, true, true, false]);
    },
  );

  contract(
    "limit gives the latest entries, also after an offset; 0 gives none",
    async ({ store }) => {
      for (let i = 1; i <= 6; i++) await store.append("l", msg("l", i), POLICY);
      const offsets = async (options: { after?: number; limit?: number }) =>
        (await store.read("l", options, POLICY)).entries.map((e) => e.offset);
      assert.deepEqual(await offsets({ limit: 2 }), [5, 6]);
      assert.deepEqual(await offsets({ limit: 10 }), [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(await offsets({ limit: 0 }), []);
      assert.deepEqual(await offsets({ after: 2, limit: 2 }), [5, 6]);
      assert.deepEqual(await offsets({ after: 4, limit: 10 }), [5, 6]);
      assert.deepEqual(await offsets({ after: 6, limit: 10 }), []);
      assert.deepEqual(await offsets({ after: 2 }), [3, 4, 5, 6]);
      const zero = await store.read("l", { limit: 0 }, POLICY);
      assert.deepEqual([zero.offset, zero.entries.length], [6, 0]);
    },
  );

  contract("except is kept per entry (and absent when empty)", async ({ store }) => {
    const ids = ['c"1', "c\\2", "ü😀"];
    const a = await store.append("x", msg("x", 1, ids), POLICY);
    const b = await store.append("x", msg("x", 2, []), POLICY);
    const c = await store.append("x", msg("x", 3), POLICY);
    assert.deepEqual(a.except, ids);
    assert.equal(b.except, undefined);
    assert.equal(c.except, undefined);
    const read = await store.read("x", {}, POLICY);
    assert.deepEqual(read.entries.map((e) => e.except), [ids, undefined, undefined]);
  });

  contract(
    "rooms and frames with quotes, backslashes, braces and unicode round-trip",
    async ({ store }) => {
      const data = { text: 'say "hi" \\ } { ü 😀 \u2028 \0', n: [1, { "}": "{" }] };
      const epochs = new Set<string>();
      for (const room of AWKWARD_ROOMS) {
        for (let i = 1; i <= 2; i++) {
          const e = await store.append(room, msg(room, { ...data, i }), POLICY);
          assert.equal(e.offset, i, `${room}: offset`);
          assert.deepEqual(JSON.parse(e.frame), {
            type: "m",
            data: { ...data, i },
            room,
            offset: i,
          });
          epochs.add(e.epoch);
        }
      }
      assert.equal(epochs.size, AWKWARD_ROOMS.length, "a stream per room");
      for (const room of AWKWARD_ROOMS) {
        const read = await store.read(room, {}, POLICY);
        assert.equal(read.offset, 2, `${room}: its own stream`);
        assert.deepEqual(
          read.entries.map((e) => JSON.parse(e.frame)),
          [1, 2].map((i) => ({ type: "m", data: { ...data, i }, room, offset: i })),
        );
      }
    },
  );

  contract(
    "trims by age; a stream emptied by age is gone and the next one has a new epoch",
    async ({ store }) => {
      // Margins: entries 1-2 are ~1100 ms old when read, entry 3 ~500 ms, against 800 ms.
      const policy = { maxMessages: 100, maxAgeMs: 800 };
      const t0 = Date.now();
      const first = await store.append("age", msg("age", 1), policy);
      await store.append("age", msg("age", 2), policy);
      await sleep(600);
      await store.append("age", msg("age", 3), policy);
      await sleep(Math.max(0, 1100 - (Date.now() - t0)));
      const read = await store.read("age", { after: 2 }, policy);
      assert.equal(read.epoch, first.epoch);
      assert.equal(read.offset, 3);
      assert.deepEqual(read.entries.map((e) => e.offset), [3], "1 and 2 are too old");
      assert.equal(read.complete, true, "after 2: all held");
      assert.equal((await store.read("age", { after: 1 }, policy)).complete, false, "2 is gone");
      // Then 3 is too old too: the stream is gone, a read starts an empty one, new epoch.
      await sleep(Math.max(0, 1700 - (Date.now() - t0)));
      const gone = await store.read("age", { after: 3 }, policy);
      assert.notEqual(gone.epoch, first.epoch, "a new epoch");
      assert.deepEqual([gone.offset, gone.entries, gone.complete], [0, [], false]);
      const next = await store.append("age", msg("age", 4), policy);
      assert.deepEqual([next.offset, next.epoch], [1, gone.epoch]);
      // An empty stream lives maxAgeMs too: afterwards a read gets yet another epoch, and so
      // does an append to a room whose entries all aged out.
      const empty = await store.read("empty", {}, policy);
      await sleep(1100);
      const emptyLater = await store.read("empty", {}, policy);
      assert.notEqual(emptyLater.epoch, empty.epoch, "an empty stream ages out");
      const aged = await store.append("age", msg("age", 5), policy);
      assert.equal(aged.offset, 1, "after its entries aged out, offsets restart");
      assert.notEqual(aged.epoch, next.epoch);
    },
  );

  contract("publishes payload + offset + ',\"e\":' + epoch + } in offset order", async (f) => {
    assert.equal(f.store.publishes, true);
    assert.ok(f.listen !== undefined, "the fixture listens");
    const room = 'p"{}\\ü';
    const channel = `hubbub:room:${room}`;
    const listener = await f.listen(channel);
    try {
      const payload = (i: number) => `{"f":${JSON.stringify(headOf("m", i, room))},"n":`;
      const got = [];
      for (let i = 1; i <= 5; i++) {
        got.push(
          await f.store.append(
            room,
            { ...msg(room, i), publish: { channel, payload: payload(i) } },
            POLICY,
          ),
        );
      }
      await f.store.append(room, msg(room, "unpublished"), POLICY);
      await until(() => listener.messages.length >= 5, 5000, "5 published messages");
      assert.deepEqual(
        listener.messages,
        got.map((e, i) => payload(i + 1) + e.offset + ',"e":' + JSON.stringify(e.epoch) + "}"),
      );
      for (const [i, m] of listener.messages.entries()) {
        const parsed = JSON.parse(m) as { f: string; n: number; e: string };
        assert.deepEqual([parsed.n, parsed.e], [i + 1, got[0].epoch]);
        assert.equal(parsed.f + parsed.n + "}", got[i].frame);
      }
    } finally {
      await listener.close();
    }
  }, supports.publishes);
}
