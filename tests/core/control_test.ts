// Cluster-wide control on the memory transport: hubs on one MemoryBus act as replicas; a
// command given on one reaches the targeted connections on every replica, and nobody else.
import assert from "node:assert/strict";
import { CloseCode, Hub, MemoryBus } from "../../mod.ts";
import { connectMemory, type MemoryClient } from "../../src/testing/mod.ts";
import { test } from "../_harness.ts";

function replicas(n: number, secret?: string): Hub[] {
  const bus = new MemoryBus();
  return [...Array(n)].map(() =>
    new Hub({
      backplane: bus.connect(),
      ...(secret === undefined ? {} : { backplaneSecret: secret }),
      canJoin: () => true,
      identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? undefined }),
    })
  );
}

async function as(hub: Hub, user: string): Promise<MemoryClient> {
  const c = await connectMemory(hub, { url: `http://localhost/ws?user=${user}` });
  await c.next("connection.established");
  return c;
}

const settle = () => new Promise((r) => setTimeout(r, 10));

for (const secret of [undefined, "a-shared-secret-of-16+"]) {
  const label = secret === undefined ? "" : " (signed bus)";
  test(
    "disconnect() closes every tab of a user on every replica, and nobody else" + label,
    async () => {
      const [a, b, c] = replicas(3, secret);
      const ada = [await as(a, "ada"), await as(c, "ada"), await as(c, "ada")];
      const others = [await as(a, "bob"), await as(b, "bob"), await as(c, "cy")];
      await settle();
      assert.equal(
        b.disconnect({ users: "ada" }, { code: CloseCode.UNAUTHENTICATED, reason: "banned" }),
        0,
      );
      const codes = await Promise.all(ada.map((x) => x.closed.then((e) => e.code)));
      assert.deepEqual(codes, [4001, 4001, 4001]);
      await settle();
      for (const o of others) assert.equal(o.isClosed, false);
      assert.equal(a.connectionCount + b.connectionCount + c.connectionCount, 3);
      for (const h of [a, b, c]) await h.close();
    },
  );
}

test("joinAll() and leaveAll() move a user's tabs on every replica; an emit then reaches them", async () => {
  const [a, b, c] = replicas(3);
  const tabs = [await as(a, "ada"), await as(c, "ada")];
  const bob = await as(b, "bob");
  await settle();
  assert.equal(b.joinAll({ users: "ada" }, "team"), 0);
  await settle();
  assert.deepEqual([a.roomSize("team"), b.roomSize("team"), c.roomSize("team")], [1, 0, 1]);
  b.emit("n", 1, { rooms: "team" });
  for (const t of tabs) assert.equal((await t.next("n")).data, 1);
  c.leaveAll({ users: "ada" }, "team");
  await settle();
  assert.deepEqual([a.roomSize("team"), c.roomSize("team")], [0, 0]);
  b.emit("n", 2, { rooms: "team" });
  await settle();
  for (const t of tabs) {
    assert.deepEqual(t.messages.filter((m) => m.type === "n").map((m) => m.data), [1]);
  }
  assert.equal(bob.messages.some((m) => m.type === "n"), false);
  for (const h of [a, b, c]) await h.close();
});

test("Control commands check their input; a malformed one on the bus is counted and skipped", async () => {
  const bus = new MemoryBus();
  const a = new Hub({ backplane: bus.connect() });
  assert.throws(() => a.disconnect({}), TypeError);
  assert.throws(() => a.joinAll({ users: "ada" }, ""), TypeError);
  assert.throws(() => a.disconnect({ users: "ada" }, { code: 1006 }), RangeError);
  const ch = a.backplaneStats();
  const conn = await connectMemory(a);
  const id = ((await conn.next("connection.established")).data as { clientId: string }).clientId;
  await settle();
  const bad = (k: unknown) =>
    JSON.stringify({ v: 1, o: "x", i: crypto.randomUUID(), t: { c: [id] }, k });
  const other = bus.connect();
  await other.start(() => {}, () => {});
  for (
    const k of [{ op: "explode" }, { op: "disconnect", code: 1006, reason: "" }, { op: "join" }]
  ) {
    await other.publish("hubbub:client:" + id, bad(k));
  }
  await settle();
  assert.equal(a.backplaneStats().malformed - ch.malformed, 3);
  assert.equal(conn.isClosed, false);
  await other.close();
  await a.close();
});
