// Presence over real sockets: two replicas in this process (a MemoryBus and one shared
// MemoryPresenceStore) behind the runtime's own adapter (Deno.serve or Bun.serve).
import assert from "node:assert/strict";
import { type HubOptions, MemoryBus, MemoryPresenceStore } from "../../mod.ts";
import { isBun, isDeno, test, until } from "../_harness.ts";
import { type Msg, TestClient } from "../_ws_client.ts";
import type { ServerHandle } from "../contract/transport_contract.ts";
import { startBun, startDeno } from "./_servers.ts";

const start: ((o: HubOptions) => Promise<ServerHandle>) | undefined = isDeno
  ? startDeno
  : isBun
  ? startBun
  : undefined;

function count(c: TestClient, type: string, clientId: string): number {
  return c.messages.filter((m: Msg) =>
    m.type === type && (m.data as { clientId: string }).clientId === clientId
  ).length;
}

test(
  "Presence over real sockets: two replicas list both members, announce each join and leave once",
  async () => {
    const bus = new MemoryBus();
    const store = new MemoryPresenceStore();
    const options = (): HubOptions => ({
      backplane: bus.connect(),
      presenceStore: store,
      presence: (room) => room === "chat",
      canJoin: () => true,
      identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? undefined }),
    });
    const servers = [await start!(options()), await start!(options())];
    const clients: TestClient[] = [];
    try {
      await Promise.all(servers.map((s) => s.hub.ready));
      const ada = await TestClient.connect(servers[0].url + "?user=ada");
      clients.push(ada);
      const bob = await TestClient.connect(servers[1].url + "?user=bob");
      clients.push(bob);
      const [adaId, bobId] = [await ada.clientId(), await bob.clientId()];
      await ada.request({ type: "subscribe", room: "chat" }, "subscribed");
      await ada.next("presence.join");
      await bob.request({ type: "subscribe", room: "chat" }, "subscribed");
      await until(() =>
        count(ada, "presence.join", bobId) === 1 && count(bob, "presence.join", bobId) === 1
      );
      for (const c of [ada, bob]) {
        const list = await c.request({ type: "presence", room: "chat", id: 1 }, "presence");
        const ids = (list.data as { clients: { clientId: string; userId: string }[] }).clients
          .map((e) => `${e.userId}:${e.clientId}`).sort();
        assert.deepEqual(ids, [`ada:${adaId}`, `bob:${bobId}`]);
        const stats = await c.request({ type: "presence.stats", room: "chat" }, "presence.stats");
        assert.deepEqual(stats.data, { room: "chat", clients: 2, users: 2 });
      }
      assert.deepEqual(await servers[0].hub.userPresence("bob"), { online: true, connections: 1 });
      await bob.shut();
      await until(() => count(ada, "presence.leave", bobId) === 1);
      assert.deepEqual(await servers[0].hub.presenceStats("chat"), { clients: 1, users: 1 });
      assert.deepEqual(await servers[0].hub.userPresence("bob"), { online: false, connections: 0 });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(count(ada, "presence.join", bobId), 1);
      assert.equal(count(ada, "presence.leave", bobId), 1);
      assert.equal(count(ada, "presence.join", adaId), 1);
    } finally {
      for (const c of clients) await c.shut();
      for (const s of servers) await s.close();
    }
  },
  { if: start !== undefined },
);
