// The client's presence against a real hub that tracks presence (memory store), on the current
// runtime: members() on every client lists each user once with all their tabs, whoever joins
// second included; presence() and presenceStats() agree with it; a leave reaches every list; a
// list reloads after a reconnect (who left meanwhile is gone, who came is there); across two
// replicas (one bus, one presence store) a user's tabs on both merge into one member.
import assert from "node:assert/strict";
import { type HubOptions, MemoryBus, MemoryPresenceStore } from "../../mod.ts";
import { connect, type HubClient, type MemberList, RequestError } from "../../src/client/mod.ts";
import { isBun, isDeno, test } from "../_harness.ts";

/** Registered on Deno and Bun (the Node adapter has its own suite). */
const onDenoOrBun = { if: isDeno || isBun };
import { startOnPort } from "./_servers.ts";

const options: HubOptions = {
  identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? undefined }),
  canJoin: () => true,
  presence: (room) => room.startsWith("p:"),
};

/** The list as `user×tabs` strings. */
function shown(list: MemberList): string[] {
  return list.members.map((m) => `${m.userId}×${m.clientIds.length}`);
}

/** Resolves once `list` reads `want` (checked now and after every change), or fails after 5 s. */
function until(list: MemberList, want: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (shown(list).join() !== want.join()) return false;
      off();
      clearTimeout(timer);
      resolve();
      return true;
    };
    const off = list.onChange(() => void check());
    const timer = setTimeout(() => {
      off();
      reject(
        new Error(`member list is ${JSON.stringify(shown(list))}, not ${JSON.stringify(want)}`),
      );
    }, 5000);
    check();
  });
}

test(
  "HubClient on a real hub: members() lists each user once with their tabs on every client, and presence() and presenceStats() agree",
  async () => {
    const s = await startOnPort(options);
    const clients: HubClient[] = [];
    const as = async (user: string) => {
      const c = await connect(`${s.url}?user=${user}`, { minDelayMs: 20, maxDelayMs: 50 });
      clients.push(c);
      return c;
    };
    try {
      const ada1 = await as("ada");
      const lists = [ada1.members("p:lobby")];
      await ada1.subscribe("p:lobby");
      await until(lists[0], ["ada×1"]);
      const bob = await as("bob");
      lists.push(bob.members("p:lobby"));
      await bob.subscribe("p:lobby");
      const ada2 = await as("ada");
      lists.push(ada2.members("p:lobby"));
      await ada2.subscribe("p:lobby");
      // Every list, the second and third joiners' too: both users, ada with both tabs.
      for (const list of lists) await until(list, ["ada×2", "bob×1"]);
      assert.ok(lists.every((l) => l.loaded));
      const read = await bob.presence("p:lobby");
      assert.deepEqual(
        read.map((c) => `${c.userId}:${c.clientId}`).sort(),
        [ada1, ada2, bob].map((c) => `${c.userId}:${c.clientId}`).sort(),
      );
      assert.deepEqual(await ada2.presenceStats("p:lobby"), { clients: 3, users: 2 });
      // bob leaves (the chat page's ×): gone from both of ada's lists; ada's first tab closes.
      await bob.unsubscribe("p:lobby");
      assert.deepEqual(shown(lists[1]), [], "bob's own list empties as he leaves");
      await until(lists[0], ["ada×2"]);
      await ada1.close();
      await until(lists[2], ["ada×1"]);
      assert.deepEqual(await ada2.presenceStats("p:lobby"), { clients: 1, users: 1 });
      const outside = await bob.presence("p:lobby").catch((e) => e);
      assert.ok(outside instanceof RequestError);
      assert.equal(outside.code, "NOT_SUBSCRIBED");
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await s.close();
    }
  },
  onDenoOrBun,
);

test(
  "HubClient on a real hub: members() reloads after the server closes the connection; who left meanwhile is gone, who came is there",
  async () => {
    const s = await startOnPort(options);
    const clients: HubClient[] = [];
    const as = async (user: string) => {
      const c = await connect(`${s.url}?user=${user}`, { minDelayMs: 20, maxDelayMs: 50 });
      clients.push(c);
      await c.subscribe("p:room");
      return c;
    };
    try {
      const ada = await as("ada");
      const list = ada.members("p:room"); // after the subscribe: loads at once
      const bob = await as("bob");
      await until(list, ["ada×1", "bob×1"]);
      const reopened = new Promise<void>((resolve) => {
        const off = ada.onLifecycle("open", () => {
          off();
          resolve();
        });
      });
      const before = ada.clientId!;
      s.hub.connection(before)!.close(4000, "slow client");
      await bob.unsubscribe("p:room"); // while ada is away
      const cy = await as("cy");
      await reopened;
      await until(list, ["ada×1", "cy×1"]);
      assert.deepEqual(list.members[0].clientIds, [ada.clientId], "only ada's new connection");
      assert.notEqual(ada.clientId, before);
      assert.ok(list.loaded);
      await cy.close();
      await until(list, ["ada×1"]);
      list.close();
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await s.close();
    }
  },
  onDenoOrBun,
);

test(
  "HubClient on two real hubs sharing a bus and a presence store: a user's tabs on both replicas are one member on every list",
  async () => {
    const bus = new MemoryBus();
    const presenceStore = new MemoryPresenceStore();
    const servers = await Promise.all(
      [0, 1].map(() => startOnPort({ ...options, backplane: bus.connect(), presenceStore })),
    );
    const clients: HubClient[] = [];
    const at = async (server: number, user: string) => {
      const url = `${servers[server].url}?user=${user}`;
      const c = await connect(url, { minDelayMs: 20, maxDelayMs: 50 });
      clients.push(c);
      const list = c.members("p:x");
      await c.subscribe("p:x");
      return list;
    };
    try {
      const lists = [await at(0, "ada"), await at(1, "ada"), await at(1, "bob")];
      for (const list of lists) await until(list, ["ada×2", "bob×1"]);
      assert.deepEqual(await clients[2].presenceStats("p:x"), { clients: 3, users: 2 });
      await clients[0].close(); // ada's tab on the first replica
      for (const list of lists.slice(1)) await until(list, ["ada×1", "bob×1"]);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(servers.map((s) => s.close()));
    }
  },
  onDenoOrBun,
);
