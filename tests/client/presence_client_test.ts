// HubClient and presence rooms (DESIGN.md "Presence and cluster-wide state"), against a
// scripted socket and manual timers: presence() and presenceStats() on the wire, typed
// presence.join/leave events, and members(): the live member list (tabs merged, events that
// race the load, reloads after a reconnect, retries, leaving).
import assert from "node:assert/strict";
import { z } from "zod";
import { defineContract } from "../../src/protocol/contract.ts";
import {
  HubClient,
  type HubClientOptions,
  type MemberList,
  type MemberListChange,
  type PresenceJoin,
  type PresenceLeave,
  RequestError,
} from "../../src/client/mod.ts";
import { test } from "../_harness.ts";
import { type FakeSocket, fakeWebSocket, ManualTimers, settle } from "./_fakes.ts";

const contract = defineContract({ client: {}, server: { said: z.string() } });

function setup(options: HubClientOptions = {}) {
  const fake = fakeWebSocket();
  const timers = new ManualTimers();
  const client = new HubClient<typeof contract>("ws://hub.test/ws", {
    WebSocket: fake.WebSocket,
    timers,
    random: () => 0.5,
    minDelayMs: 100,
    maxDelayMs: 1000,
    pingIntervalMs: 0,
    connectTimeoutMs: 0,
    batch: false,
    ...options,
  });
  const errors: string[] = [];
  client.onLifecycle("error", (e) => errors.push(`${e.source} ${(e.error as Error).message}`));
  return { client, fake, timers, errors };
}

/** The last message the client sent, parsed. */
function lastSent(ws: FakeSocket): Record<string, unknown> {
  return ws.messages[ws.messages.length - 1];
}

/** The last message of `type` the client sent, parsed. */
function lastOf(ws: FakeSocket, type: string): Record<string, unknown> {
  const m = ws.messages.filter((m) => m.type === type).at(-1);
  assert.ok(m !== undefined, `the client sent no ${type}`);
  return m;
}

function joinEvent(
  ws: FakeSocket,
  room: string,
  clientId: string,
  userId?: string,
  info?: unknown,
) {
  const data: Record<string, unknown> = { room, clientId };
  if (userId !== undefined) data.userId = userId;
  if (info !== undefined) data.info = info;
  ws.event("presence.join", data);
}

function leaveEvent(ws: FakeSocket, room: string, clientId: string, userId?: string) {
  ws.event(
    "presence.leave",
    userId === undefined ? { room, clientId } : { room, clientId, userId },
  );
}

/** Answer the client's last `presence` request with `clients`. */
function answerPresence(ws: FakeSocket, room: string, clients: Record<string, unknown>[]) {
  ws.event("presence", { room, clients, id: lastOf(ws, "presence").id });
}

/** The list as `user[tab,tab]` strings (anonymous members as `~[tab]`). */
function shown(list: MemberList): string[] {
  return list.members.map((m) => `${m.userId ?? "~"}[${m.clientIds.join(",")}]`);
}

/** Every change of `list`, as `kind user` strings. */
function changes(list: MemberList): string[] {
  const seen: string[] = [];
  list.onChange((c: MemberListChange) =>
    seen.push(c.kind === "load" ? "load" : `${c.kind} ${c.member.userId ?? c.member.clientIds}`)
  );
  return seen;
}

test("HubClient.presence() sends {type: presence, room, id} and resolves with the reply's clients", async () => {
  const { client, fake } = setup();
  const ws = fake.last();
  ws.establish("c1", "ada");
  const read = client.presence("lobby");
  const { id } = lastSent(ws);
  assert.equal(ws.sent.at(-1), `{"type":"presence","room":"lobby","id":${id}}`);
  const clients = [
    { clientId: "c1", userId: "ada" },
    { clientId: "c2", userId: "bob", info: { name: "Bob" } },
    { clientId: "c3" },
  ];
  ws.event("presence", { room: "lobby", clients: [...clients, { nope: 1 }], id });
  assert.deepEqual(await read, clients, "entries without a clientId are dropped");
  await client.close();
});

test("HubClient.presenceStats() sends {type: presence.stats, room, id} and resolves with {clients, users}", async () => {
  const { client, fake } = setup();
  const ws = fake.last();
  ws.establish();
  const read = client.presenceStats("lobby");
  const { id } = lastSent(ws);
  assert.equal(ws.sent.at(-1), `{"type":"presence.stats","room":"lobby","id":${id}}`);
  ws.event("presence.stats", { room: "lobby", clients: 5, users: 3, id });
  assert.deepEqual(await read, { clients: 5, users: 3 });
  await assert.rejects(client.presence(""), TypeError);
  await assert.rejects(client.presenceStats(""), TypeError);
  await client.close();
  await assert.rejects(client.presence("lobby"), /Cannot read presence: the client is closed/);
  assert.throws(() => client.members("lobby"), /Cannot keep a member list: the client is closed/);
});

for (const code of ["NOT_SUBSCRIBED", "UNAVAILABLE"]) {
  test(`HubClient.presence() and presenceStats() reject with RequestError ${code} when the server answers with it`, async () => {
    const { client, fake } = setup();
    const ws = fake.last();
    ws.establish();
    for (const start of [() => client.presence("lobby"), () => client.presenceStats("lobby")]) {
      const read = start();
      ws.event("error", { id: lastSent(ws).id, code, message: `Cannot read presence: ${code}` });
      const error = await read.then(() => undefined, (e) => e);
      assert.ok(error instanceof RequestError);
      assert.equal(error.code, code);
      assert.equal(error.message, `Cannot read presence: ${code}`);
    }
    await client.close();
  });
}

test("HubClient.presence() cut off by a dropped connection is sent again after the re-joins on the next one", async () => {
  const { client, fake, timers } = setup();
  fake.last().establish();
  const read = client.presence("lobby");
  fake.last().drop();
  timers.advance(1000);
  const ws = fake.last();
  ws.establish("c2");
  assert.deepEqual(ws.messages.map((m) => m.type), ["presence"]);
  answerPresence(ws, "lobby", [{ clientId: "c2" }]);
  assert.deepEqual(await read, [{ clientId: "c2" }]);
  await client.close();
});

test("HubClient.on('presence.join'|'presence.leave') gets the typed events; a 'presence' app event without an id still reaches on()", async () => {
  const { client, fake } = setup();
  const ws = fake.last();
  ws.establish();
  const seen: string[] = [];
  client.on("presence.join", (data: PresenceJoin, event) => {
    assert.equal(event.type, "presence.join");
    seen.push(`join ${data.room} ${data.clientId} ${data.userId} ${JSON.stringify(data.info)}`);
  });
  client.on("presence.leave", (data: PresenceLeave) => {
    seen.push(`leave ${data.room} ${data.clientId} ${data.userId}`);
  });
  // deno-lint-ignore no-explicit-any
  const loose = client as HubClient<any>;
  loose.on("presence", (data) => seen.push(`app presence ${JSON.stringify(data)}`));
  joinEvent(ws, "lobby", "c9", "bob", { name: "Bob" });
  leaveEvent(ws, "lobby", "c9", "bob");
  ws.event("presence", { room: "lobby", user: "bob" }); // an app event named like the reply
  ws.event("presence", { room: "lobby", clients: [], id: 999 }); // a reply to nothing: dropped
  assert.deepEqual(seen, [
    'join lobby c9 bob {"name":"Bob"}',
    "leave lobby c9 bob",
    'app presence {"room":"lobby","user":"bob"}',
  ]);
  await client.close();
});

test("HubClient.members() loads after the subscribe ack, merges tabs, and lays the events that raced the load over its reply", async () => {
  const { client, fake } = setup();
  const ws = fake.last();
  ws.establish("c1", "ada");
  const lobby = client.members("lobby");
  const seen = changes(lobby);
  const joined = client.subscribe("lobby");
  // The joiner's own join can come before its ack: it shows at once.
  joinEvent(ws, "lobby", "c1", "ada");
  assert.deepEqual(shown(lobby), ["ada[c1]"]);
  assert.equal(lobby.loaded, false);
  assert.equal(
    ws.messages.filter((m) => m.type === "presence").length,
    0,
    "no read before the ack",
  );
  ws.event("subscribed", { room: "lobby", id: lastOf(ws, "subscribe").id });
  await joined;
  assert.deepEqual(lastSent(ws), { type: "presence", room: "lobby", id: lastSent(ws).id });
  // While the read is in flight: cy joins and dan leaves; the reply was read before both.
  joinEvent(ws, "lobby", "c7", "cy");
  leaveEvent(ws, "lobby", "c5", "dan");
  answerPresence(ws, "lobby", [
    { clientId: "c1", userId: "ada" },
    { clientId: "c3", userId: "bob" },
    { clientId: "c4", userId: "bob" },
    { clientId: "c5", userId: "dan" },
    { clientId: "c6" },
  ]);
  await settle();
  assert.equal(lobby.loaded, true);
  assert.deepEqual(shown(lobby), ["ada[c1]", "bob[c3,c4]", "cy[c7]", "~[c6]"]);
  assert.ok(lobby.has("bob") && !lobby.has("dan"));
  // Live: a third tab of bob, two of his tabs leave, then his last; an anonymous one leaves.
  joinEvent(ws, "lobby", "c8", "bob");
  leaveEvent(ws, "lobby", "c3", "bob");
  leaveEvent(ws, "lobby", "c4", "bob");
  assert.deepEqual(shown(lobby), ["ada[c1]", "bob[c8]", "cy[c7]", "~[c6]"]);
  leaveEvent(ws, "lobby", "c8", "bob");
  leaveEvent(ws, "lobby", "c6");
  joinEvent(ws, "other", "c9", "eve"); // another room: not this list's
  leaveEvent(ws, "lobby", "c404", "zed"); // never seen: nothing changes
  assert.deepEqual(shown(lobby), ["ada[c1]", "cy[c7]"]);
  assert.deepEqual(seen, [
    "join ada",
    "join cy",
    "load",
    "update bob",
    "update bob",
    "update bob",
    "leave bob",
    "leave c6",
  ]);
  await client.close();
});

test("HubClient.members() keeps the list while offline and reloads it after the re-join; a read cut off by the drop is ignored", async () => {
  const { client, fake, timers } = setup();
  let ws = fake.last();
  ws.establish("c1", "ada");
  const joined = client.subscribe("lobby");
  ws.event("subscribed", { room: "lobby", id: lastOf(ws, "subscribe").id });
  await joined;
  const lobby = client.members("lobby"); // after the ack: loads at once
  const seen = changes(lobby);
  answerPresence(ws, "lobby", [{ clientId: "c1", userId: "ada" }, {
    clientId: "c2",
    userId: "bob",
  }]);
  await settle();
  assert.deepEqual(shown(lobby), ["ada[c1]", "bob[c2]"]);
  // A second re-load cut off by the drop: its answer never counts.
  ws.drop();
  assert.equal(lobby.loaded, false);
  assert.deepEqual(shown(lobby), ["ada[c1]", "bob[c2]"], "stale, not empty, while offline");
  timers.advance(1000);
  ws = fake.last();
  ws.establish("c3", "ada");
  const rejoin = lastOf(ws, "subscribe");
  joinEvent(ws, "lobby", "c3", "ada"); // our own re-join, as the new connection
  assert.deepEqual(shown(lobby), ["ada[c1,c3]", "bob[c2]"]);
  ws.event("subscribed", { room: "lobby", id: rejoin.id });
  assert.equal(lastSent(ws).type, "presence");
  answerPresence(ws, "lobby", [{ clientId: "c3", userId: "ada" }]); // bob left meanwhile
  await settle();
  assert.deepEqual(shown(lobby), ["ada[c3]"]);
  assert.equal(lobby.loaded, true);
  assert.deepEqual(seen, ["load", "update ada", "load"]);
  await client.close();
});

test("HubClient.members() retries a load answered UNAVAILABLE or timed out after a backoff, and reports any other failure", async () => {
  const { client, fake, timers, errors } = setup();
  const ws = fake.last();
  ws.establish("c1", "ada");
  const lobby = client.members("lobby");
  const joined = client.subscribe("lobby");
  ws.event("subscribed", { room: "lobby", id: lastOf(ws, "subscribe").id });
  await joined;
  ws.event("error", { id: lastSent(ws).id, code: "UNAVAILABLE", message: "store down" });
  await settle();
  const reads = () => ws.messages.filter((m) => m.type === "presence").length;
  assert.equal(reads(), 1);
  timers.advance(49);
  assert.equal(reads(), 1, "backoff: half of the 100 ms ceiling with random 0.5");
  timers.advance(1);
  assert.equal(reads(), 2);
  joinEvent(ws, "lobby", "c2", "bob"); // seen while the retry is in flight: kept over its reply
  answerPresence(ws, "lobby", [{ clientId: "c1", userId: "ada" }]);
  await settle();
  assert.deepEqual(shown(lobby), ["ada[c1]", "bob[c2]"]);
  // A read that times out is retried too.
  const slow = client.members("lobby");
  timers.advance(10_000); // requestTimeoutMs: no answer
  await settle();
  assert.equal(reads(), 3);
  timers.advance(50);
  assert.equal(reads(), 4, "asked again after the backoff");
  answerPresence(ws, "lobby", [{ clientId: "c1", userId: "ada" }]);
  await settle();
  assert.ok(slow.loaded);
  slow.close();
  // Another code (here a server that does not know presence): reported, not retried.
  const other = client.members("lobby");
  ws.event("error", { id: lastSent(ws).id, code: "UNKNOWN_TYPE", message: "no presence here" });
  await settle();
  assert.deepEqual(errors, ["members no presence here"]);
  assert.equal(other.loaded, false);
  timers.advance(10_000);
  assert.equal(reads(), 5);
  await client.close();
});

test("HubClient.members() empties when the client leaves the room, loads again on a new join, and stops after close()", async () => {
  const { client, fake } = setup();
  const ws = fake.last();
  ws.establish("c1", "ada");
  const lobby = client.members("lobby");
  const seen = changes(lobby);
  let joined = client.subscribe("lobby");
  ws.event("subscribed", { room: "lobby", id: lastOf(ws, "subscribe").id });
  await joined;
  answerPresence(ws, "lobby", [{ clientId: "c1", userId: "ada" }, {
    clientId: "c2",
    userId: "bob",
  }]);
  await settle();
  const left = client.unsubscribe("lobby");
  assert.deepEqual(shown(lobby), []);
  assert.equal(lobby.loaded, false);
  ws.event("unsubscribed", { room: "lobby", id: lastSent(ws).id });
  await left;
  joined = client.subscribe("lobby");
  ws.event("subscribed", { room: "lobby", id: lastOf(ws, "subscribe").id });
  await joined;
  answerPresence(ws, "lobby", [{ clientId: "c1", userId: "ada" }]);
  await settle();
  assert.deepEqual(shown(lobby), ["ada[c1]"]);
  lobby.close();
  lobby.close(); // idempotent
  joinEvent(ws, "lobby", "c5", "cy");
  assert.deepEqual(shown(lobby), ["ada[c1]"], "a closed list no longer changes");
  assert.deepEqual(seen, ["load", "load", "load"]);
  await client.close();
});

test("HubClient.members() empties when a re-join is refused after a reconnect", async () => {
  const { client, fake, timers } = setup();
  let ws = fake.last();
  ws.establish("c1", "ada");
  const lobby = client.members("lobby");
  const joined = client.subscribe("lobby");
  ws.event("subscribed", { room: "lobby", id: lastOf(ws, "subscribe").id });
  await joined;
  answerPresence(ws, "lobby", [{ clientId: "c1", userId: "ada" }]);
  await settle();
  ws.drop();
  timers.advance(1000);
  ws = fake.last();
  ws.establish("c2", "ada");
  ws.event("error", {
    id: lastOf(ws, "subscribe").id,
    code: "SUBSCRIBE_REFUSED",
    message: "banned",
  });
  assert.deepEqual(shown(lobby), []);
  assert.deepEqual(client.rooms, []);
  await client.close();
});
