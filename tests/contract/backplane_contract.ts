// The backplane contract: two or three hubs sharing one bus act as one hub.
// Registered for the memory bus, BroadcastChannel and Redis.
import assert from "node:assert/strict";
import { type Backplane, Hub, type HubOptions } from "../../mod.ts";
import { connectMemory, type MemoryClient } from "../../src/testing/mod.ts";
import { test, type TestOptions, until } from "../_harness.ts";

/** One bus for a test: makes backplanes that share it. */
export interface BusFixture {
  /** A new backplane on this bus (one per hub). */
  connect(): Backplane;
  /** Make the bus fail (optional: only where the test can cause a real outage). */
  down?(): Promise<void>;
  /** Bring the bus back. */
  up?(): Promise<void>;
  /** Publish a raw payload on a channel, bypassing any hub (for malformed-input tests). */
  inject?(channel: string, payload: string): Promise<void>;
  /**
   * The bus sends a payload published to several channels once (so the hub never
   * sees the duplicate copies it would otherwise skip).
   */
  coalesces?: boolean;
  /** Release the bus. */
  close(): Promise<void>;
}

function hubOn(bus: BusFixture, extra: HubOptions = {}): Hub {
  return new Hub({
    backplane: bus.connect(),
    identify: (req) => {
      const user = new URL(req.url).searchParams.get("user");
      return user ? { userId: user } : undefined;
    },
    onError: () => {},
    ...extra,
  });
}

async function open(hub: Hub, user?: string): Promise<{ c: MemoryClient; id: string }> {
  const c = await connectMemory(hub, { url: `http://localhost/ws${user ? `?user=${user}` : ""}` });
  const id = ((await c.next("connection.established")).data as { clientId: string }).clientId;
  return { c, id };
}

function count(c: MemoryClient, type: string): number {
  return c.messages.filter((m) => m.type === type).length;
}

let fences = 0;
/**
 * A fence instead of a sleep: each hub broadcasts a marker after what it emitted, and every
 * client must get every marker. Each bus keeps one publisher's order, so once a client has a
 * hub's marker it has everything that hub sent it before: a duplicate would be here by now.
 */
async function fence(hubs: Hub[], clients: MemoryClient[]): Promise<void> {
  const type = `fence-${fences++}`;
  for (const hub of hubs) hub.emit(type, null);
  await until(
    () => clients.every((c) => count(c, type) === hubs.length),
    5000,
    `every client to get the ${hubs.length} fence(s)`,
  );
}

/** What a bus fixture can do, declared when the contract is registered. */
export interface BusCapabilities {
  /** The fixture has `down()` and `up()`: the outage case runs (else it is skipped, visibly). */
  outage: boolean;
  /** The fixture has `inject()`: the malformed-payload case runs (else it is skipped). */
  inject: boolean;
}

/**
 * Register the backplane contract.
 * @param name Implementation name.
 * @param makeBus Creates a fresh bus per test.
 * @param supports What the fixture can do: a case it cannot run is registered as skipped
 *   (so the run counts it), never as one that passes doing nothing.
 * @param options Skip conditions.
 */
export function backplaneContract(
  name: string,
  makeBus: () => Promise<BusFixture>,
  supports: BusCapabilities,
  options: TestOptions = {},
): void {
  const t = (title: string, fn: (bus: BusFixture) => Promise<void>, when = true) =>
    test(`${name} backplane: ${title}`, async () => {
      const bus = await makeBus();
      try {
        await fn(bus);
      } finally {
        await bus.close();
      }
    }, { timeout: 30_000, ...options, if: options.if !== false && when });

  t("a broadcast reaches every client on every hub exactly once", async (bus) => {
    const a = hubOn(bus);
    const b = hubOn(bus);
    const c = hubOn(bus);
    await Promise.all([a.ready, b.ready, c.ready]);
    const clients = await Promise.all([open(a), open(b), open(b), open(c)]);
    assert.equal(a.emit("hello", 1), 1, "emit counts local deliveries");
    await until(() => clients.every((x) => count(x.c, "hello") === 1), 5000, "the broadcast");
    await fence([a, b, c], clients.map((x) => x.c));
    assert.ok(clients.every((x) => count(x.c, "hello") === 1), "exactly once");
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  t("room, user, client and except targets work across hubs, each recipient once", async (bus) => {
    const a = hubOn(bus);
    const b = hubOn(bus);
    await Promise.all([a.ready, b.ready]);
    const ada1 = await open(a, "ada");
    const ada2 = await open(b, "ada");
    const bob = await open(b, "bob");
    const cat = await open(a, "cat");
    a.join(ada1.id, "r");
    b.join(bob.id, "r");
    b.join(ada2.id, "r");
    await new Promise((r) => setTimeout(r, 50)); // subscriptions settle (real buses are async)
    a.emit("room", 1, { rooms: "r" });
    await until(() => [ada1, ada2, bob].every((x) => count(x.c, "room") === 1), 5000, "room");
    b.emit("user", 2, { users: "ada" });
    await until(() => count(ada1.c, "user") === 1 && count(ada2.c, "user") === 1, 5000, "user");
    a.emit("client", 3, { clients: bob.id });
    await until(() => count(bob.c, "client") === 1, 5000, "client");
    a.sendTo(bob.id, "direct", 4);
    await until(() => count(bob.c, "direct") === 1, 5000, "sendTo across hubs");
    a.emit("others", 5, { rooms: "r", except: bob.id });
    await until(
      () => count(ada1.c, "others") === 1 && count(ada2.c, "others") === 1,
      5000,
      "except",
    );
    // A union whose parts overlap on one hub: ada2 is in room r AND is user ada.
    a.emit("union", 6, { rooms: "r", users: ["ada", "cat"] });
    await until(
      () => [ada1, ada2, bob, cat].every((x) => count(x.c, "union") === 1),
      5000,
      "union",
    );
    await fence([a, b], [ada1, ada2, bob, cat].map((x) => x.c));
    assert.equal(count(bob.c, "others"), 0);
    assert.equal(count(cat.c, "room"), 0);
    assert.equal(count(bob.c, "user"), 0);
    for (const x of [ada1, ada2, bob, cat]) assert.equal(count(x.c, "union"), 1);
    if (!bus.coalesces) {
      assert.ok(b.backplaneStats().duplicates >= 1, "the second copy of the union was skipped");
    }
    await Promise.all([a.close(), b.close()]);
  });

  t("a hub subscribes only to rooms and users it has local members for", async (bus) => {
    const a = hubOn(bus);
    const b = hubOn(bus);
    await Promise.all([a.ready, b.ready]);
    const base = b.backplaneStats().channels;
    const x = await open(a, "ada");
    a.join(x.id, "only-on-a");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(
      b.backplaneStats().channels,
      base,
      "b has no interest in a's room, user or client",
    );
    assert.equal(a.backplaneStats().channels, base + 3, "a: its room, its user, its client");
    a.emit("r", 1, { rooms: "only-on-a" });
    await until(() => count(x.c, "r") === 1, 5000, "local delivery");
    // A fence b does hear: a broadcast from a, sent after the room emit.
    const y = await open(b);
    await fence([a], [x.c, y.c]);
    assert.equal(b.backplaneStats().received, 1, "b received no traffic for a's room");
    x.c.close();
    await until(() => a.backplaneStats().channels === base, 5000, "a to drop its interest");
    await Promise.all([a.close(), b.close()]);
  });

  t("binary raw broadcasts cross hubs intact", async (bus) => {
    const a = hubOn(bus);
    const b = hubOn(bus);
    await Promise.all([a.ready, b.ready]);
    const y = await open(b);
    a.broadcastRaw(new Uint8Array([0, 1, 254, 255]));
    await until(() => y.c.binary.length === 1, 5000, "binary frame");
    assert.deepEqual([...y.c.binary[0]], [0, 1, 254, 255]);
    await Promise.all([a.close(), b.close()]);
  });

  t("malformed bus payloads are counted and skipped", async (bus) => {
    assert.ok(bus.inject, "the fixture declares inject but has no inject()");
    const a = hubOn(bus);
    await a.ready;
    const x = await open(a);
    for (
      const bad of [
        "not json",
        "[]",
        '{"v":2,"o":"x","i":"1","t":{"a":1},"f":"{}"}',
        '{"v":1,"o":"x","i":"2","t":{},"f":"{}"}',
        '{"v":1,"o":"x","i":"3","t":{"r":[1]},"f":"{}"}',
      ]
    ) await bus.inject!("hubbub:all", bad);
    await until(() => a.backplaneStats().malformed === 5, 5000, "malformed count");
    await bus.inject!(
      "hubbub:all",
      '{"v":1,"o":"x","i":"4","t":{"a":1},"f":"{\\"type\\":\\"ok\\"}"}',
    );
    await until(() => x.c.messages.some((m) => m.type === "ok"), 5000, "a good payload after");
    assert.equal(a.backplaneStats().malformed, 5, "the good payload is not counted as malformed");
    await a.close();
  }, supports.inject);

  t("an outage keeps local delivery, is reported and counted, and heals by itself", async (bus) => {
    assert.ok(bus.down && bus.up, "the fixture declares outages but has no down() and up()");
    const a = hubOn(bus);
    const b = hubOn(bus);
    await Promise.all([a.ready, b.ready]);
    const local = await open(a);
    const remote = await open(b);
    a.join(local.id, "r");
    b.join(remote.id, "r");
    await new Promise((r) => setTimeout(r, 50));
    a.emit("before", 0, { rooms: "r" });
    await until(() => count(remote.c, "before") === 1, 5000, "delivery before the outage");
    await bus.down!();
    await until(() => !a.backplaneHealth.ok, 10_000, "health to go red");
    for (let i = 0; i < 5; i++) a.emit("during", i, { rooms: "r" });
    await until(() => count(local.c, "during") === 5, 5000, "local delivery during the outage");
    await until(() => a.backplaneStats().publishFailed >= 1, 10_000, "lost messages to be counted");
    await bus.up!();
    await until(() => a.backplaneHealth.ok && b.backplaneHealth.ok, 20_000, "health to return");
    let n = 0;
    await until(
      () => {
        a.emit("after", n++, { rooms: "r" });
        return count(remote.c, "after") > 0;
      },
      20_000,
      "delivery across hubs to resume",
    );
    await Promise.all([a.close(), b.close()]);
  }, supports.outage);
}
