import assert from "node:assert/strict";
import { Hub, MemoryBus } from "../../mod.ts";
import { connectMemory } from "../../src/testing/mod.ts";
import { test } from "../_harness.ts";
import { backplaneContract } from "../contract/backplane_contract.ts";

backplaneContract("memory", () => {
  const bus = new MemoryBus();
  return Promise.resolve({
    connect: () => bus.connect(),
    down: () => {
      bus.down = true;
      return Promise.resolve();
    },
    up: () => {
      bus.down = false;
      return Promise.resolve();
    },
    inject: (channel, payload) => {
      const probe = bus.connect();
      return probe.publish(channel, payload).finally(() => probe.close());
    },
    close: () => Promise.resolve(),
  });
}, { outage: true, inject: true });

test("Hub calls onJoin and onLeave only when membership changes, with the cause", async () => {
  const events: string[] = [];
  const hub = new Hub({
    canJoin: () => true,
    onJoin: (_c, room) => void events.push(`join ${room}`),
    onLeave: (_c, room, cause) => void events.push(`leave ${room} ${cause}`),
  });
  const a = await connectMemory(hub);
  const id = ((await a.next()).data as { clientId: string }).clientId;
  a.send({ type: "subscribe", room: "x" });
  a.send({ type: "subscribe", room: "x" });
  a.send({ type: "unsubscribe", room: "x" });
  a.send({ type: "unsubscribe", room: "x" });
  await a.next("unsubscribed");
  hub.join(id, "y");
  hub.leave(id, "y");
  hub.join(id, "z");
  a.close();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(events, [
    "join x",
    "leave x unsubscribe",
    "join y",
    "leave y server",
    "join z",
    "leave z disconnect",
  ]);
  await hub.close();
});
