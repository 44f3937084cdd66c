import assert from "node:assert/strict";
import { Hub } from "../../mod.ts";
import { connectMemory } from "../../src/testing/mod.ts";
import { test } from "../_harness.ts";

/** A promise-like that is not a native Promise (as some libraries return). */
function later<T>(value: T): PromiseLike<T> {
  return { then: (ok, fail) => Promise.resolve(value).then(ok, fail) };
}

test("Every hook goes through one mechanism: a thenable result is awaited like a promise", async () => {
  const hub = new Hub({
    canJoin: (_c, room) => later(room === "yes") as unknown as Promise<boolean>,
    authenticate: () => later("ada") as unknown as Promise<string>,
    onConnect: (c) => later(c.query.get("ok") !== "no") as unknown as Promise<boolean>,
  });
  hub.on("add", () => later(42));
  const c = await connectMemory(hub);
  await c.next("connection.established");
  const reply = async (message: Record<string, unknown>) => {
    c.send(message);
    const m = await c.next(); // the very next message, whatever it is
    return { type: m.type, data: m.data };
  };
  assert.deepEqual(await reply({ type: "subscribe", room: "yes", id: 1 }), {
    type: "subscribed",
    data: { room: "yes", id: 1 },
  });
  const no = await reply({ type: "subscribe", room: "no", id: 2 });
  assert.equal((no.data as { code: string }).code, "SUBSCRIBE_REFUSED");
  assert.deepEqual(await reply({ type: "authenticate", id: 3 }), {
    type: "authenticated",
    data: { userId: "ada", status: "success", id: 3 },
  });
  assert.deepEqual(await reply({ type: "add", id: 4 }), {
    type: "ack",
    data: { result: 42, id: 4 },
  });
  const refused = await connectMemory(hub, { url: "http://localhost/ws?ok=no" });
  await refused.next("connection.established");
  const closed = await refused.next("connection.closed");
  assert.equal((closed.data as { code: number }).code, 1008);
  await hub.close();
});
