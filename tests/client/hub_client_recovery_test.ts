// HubClient and history rooms (DESIGN.md "History and recovery"), against a scripted
// socket and manual timers: stream positions, recover on every reconnect, the recovery
// event, dedupe by offset, history() and close code 4004.
import assert from "node:assert/strict";
import { z } from "zod";
import { defineContract } from "../../src/protocol/contract.ts";
import {
  HubClient,
  type HubClientOptions,
  type RecoveryEvent,
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
  const log: string[] = [];
  const recoveries: RecoveryEvent[] = [];
  client.onLifecycle("close", (e) => log.push(`close ${e.code} ${e.reason} ${e.willReconnect}`));
  client.onLifecycle("error", (e) => log.push(`error ${e.source} ${(e.error as Error).message}`));
  client.onLifecycle("recovery", (e) => recoveries.push(e));
  const seen: string[] = [];
  client.on("said", (data, event) => seen.push(`${event.room}#${event.offset} ${data}`));
  return { client, fake, timers, log, recoveries, seen };
}

/** A message of history room `room` as the hub sends it: the envelope plus room and offset. */
function said(ws: FakeSocket, room: string, offset: number, text = `m${offset}`): void {
  ws.frame(JSON.stringify({ type: "said", data: text, timestamp: 1, room, offset }));
}

/** The last message the client sent, parsed. */
function lastSent(ws: FakeSocket): Record<string, unknown> {
  return ws.messages[ws.messages.length - 1];
}

/** subscribe(room) on an open client, acked with `data`. */
async function join(
  client: HubClient<typeof contract>,
  ws: FakeSocket,
  data: Record<string, unknown>,
) {
  const joined = client.subscribe(data.room as string);
  ws.event("subscribed", { ...data, id: lastSent(ws).id });
  await joined;
}

/** Drop the connection and let the client reconnect: the new socket, established. */
function reconnect(fake: ReturnType<typeof fakeWebSocket>, timers: ManualTimers, code = 1006) {
  fake.last().drop(code);
  timers.advance(1000);
  fake.last().establish("c2");
  return fake.last();
}

test("HubClient keeps each history room's epoch and last delivered offset, from subscribed and every room message", async () => {
  const { client, fake, seen } = setup();
  const ws = fake.last();
  ws.establish();
  await join(client, ws, { room: "lobby", epoch: "e1", offset: 5 });
  assert.deepEqual(client.position("lobby"), { epoch: "e1", offset: 5 });
  said(ws, "lobby", 6);
  said(ws, "lobby", 7);
  ws.event("said", "no offset"); // a message of no history room: passes, moves nothing
  assert.deepEqual(client.position("lobby"), { epoch: "e1", offset: 7 });
  await join(client, ws, { room: "plain" }); // no epoch: the room keeps no history
  assert.equal(client.position("plain"), undefined);
  assert.equal(client.position("nowhere"), undefined);
  assert.deepEqual(seen, ["lobby#6 m6", "lobby#7 m7", "undefined#undefined no offset"]);
  const left = client.unsubscribe("lobby");
  assert.equal(client.position("lobby"), undefined, "leaving a room forgets its position");
  ws.event("unsubscribed", { room: "lobby", id: lastSent(ws).id });
  await left;
  await client.close();
});

test("HubClient re-joins a history room with recover from its last delivered offset on every reconnect, other rooms plainly", async () => {
  const { client, fake, timers, recoveries } = setup();
  fake.last().establish();
  await join(client, fake.last(), { room: "lobby", epoch: "e1", offset: 5 });
  await join(client, fake.last(), { room: "plain" });
  said(fake.last(), "lobby", 6);
  said(fake.last(), "lobby", 7);
  assert.deepEqual(recoveries, [], "a first join is no recovery");
  let ws = reconnect(fake, timers);
  const [lobby, plain] = ws.sent;
  const lobbyId = JSON.parse(lobby).id;
  assert.equal(
    lobby,
    `{"type":"subscribe","room":"lobby","recover":{"epoch":"e1","offset":7},"id":${lobbyId}}`,
  );
  assert.deepEqual(JSON.parse(plain), {
    type: "subscribe",
    room: "plain",
    id: JSON.parse(plain).id,
  });
  ws.event("subscribed", { room: "lobby", epoch: "e1", offset: 7, recovered: true, id: lobbyId });
  ws.event("subscribed", { room: "plain", recovered: false, id: JSON.parse(plain).id });
  said(ws, "lobby", 8);
  // And again on the next reconnect, from where it got to.
  ws = reconnect(fake, timers);
  assert.deepEqual(ws.messages[0].recover, { epoch: "e1", offset: 8 });
  await client.close();
});

test("HubClient's recovery event says recovered: true, and the replay after it reaches the app once, in order", async () => {
  const { client, fake, timers, recoveries, seen } = setup();
  const all: number[] = [];
  fake.last().establish();
  const stream = client.events();
  await join(client, fake.last(), { room: "lobby", epoch: "e1", offset: 5 });
  said(fake.last(), "lobby", 6);
  const ws = reconnect(fake, timers);
  ws.event("subscribed", {
    room: "lobby",
    epoch: "e1",
    offset: 9,
    recovered: true,
    id: ws.messages[0].id,
  });
  assert.deepEqual(recoveries, [{ room: "lobby", recovered: true, epoch: "e1", offset: 9 }]);
  assert.deepEqual(client.position("lobby"), { epoch: "e1", offset: 6 }, "the replay comes next");
  for (const n of [7, 8, 9, 10]) said(ws, "lobby", n); // replayed 7..9, then live 10
  assert.deepEqual(seen, ["lobby#6 m6", "lobby#7 m7", "lobby#8 m8", "lobby#9 m9", "lobby#10 m10"]);
  await client.close();
  for await (const e of stream) all.push(e.offset!);
  assert.deepEqual(all, [6, 7, 8, 9, 10], "events() gets the same, once each");
});

test("HubClient's recovery event says recovered: false (position too old, or no history) and the position is the stream's head", async () => {
  const { client, fake, timers, recoveries, seen } = setup();
  fake.last().establish();
  await join(client, fake.last(), { room: "lobby", epoch: "e1", offset: 5 });
  await join(client, fake.last(), { room: "plain" });
  const ws = reconnect(fake, timers);
  const [lobby, plain] = ws.messages;
  ws.event("subscribed", {
    room: "lobby",
    epoch: "e1",
    offset: 40,
    recovered: false,
    id: lobby.id,
  });
  ws.event("subscribed", { room: "plain", recovered: false, id: plain.id });
  assert.deepEqual(recoveries, [
    { room: "lobby", recovered: false, epoch: "e1", offset: 40 },
    { room: "plain", recovered: false, epoch: undefined, offset: undefined },
  ]);
  assert.deepEqual(client.position("lobby"), { epoch: "e1", offset: 40 });
  said(ws, "lobby", 41);
  assert.deepEqual(seen, ["lobby#41 m41"]);
  await client.close();
});

test("HubClient does not trust recovered: true for another epoch than it asked for", async () => {
  const { client, fake, timers, recoveries } = setup();
  fake.last().establish();
  await join(client, fake.last(), { room: "lobby", epoch: "e1", offset: 5 });
  const ws = reconnect(fake, timers);
  ws.event("subscribed", {
    room: "lobby",
    epoch: "e2",
    offset: 3,
    recovered: true,
    id: ws.messages[0].id,
  });
  assert.equal(recoveries[0].recovered, false);
  assert.deepEqual(client.position("lobby"), { epoch: "e2", offset: 3 });
  await client.close();
});

test("HubClient drops a replayed duplicate and any offset not past the last one delivered in the epoch", async () => {
  const { client, fake, timers, seen } = setup();
  fake.last().establish();
  await join(client, fake.last(), { room: "lobby", epoch: "e1", offset: 5 });
  said(fake.last(), "lobby", 6);
  said(fake.last(), "lobby", 7);
  said(fake.last(), "lobby", 7, "live duplicate");
  said(fake.last(), "lobby", 5, "older than the subscribe");
  const ws = reconnect(fake, timers);
  ws.event("subscribed", {
    room: "lobby",
    epoch: "e1",
    offset: 8,
    recovered: true,
    id: ws.messages[0].id,
  });
  said(ws, "lobby", 7, "replayed again"); // a server that replays one too many
  said(ws, "lobby", 8);
  said(ws, "lobby", 8, "twice");
  assert.deepEqual(seen, ["lobby#6 m6", "lobby#7 m7", "lobby#8 m8"]);
  assert.deepEqual(client.position("lobby"), { epoch: "e1", offset: 8 });
  await client.close();
});

test("HubClient delivers room messages whose offsets skip (messages emitted except this client), with no error", async () => {
  const { client, fake, seen, log } = setup();
  fake.last().establish();
  await join(client, fake.last(), { room: "lobby", epoch: "e1", offset: 0 });
  for (const n of [1, 4, 5, 9]) said(fake.last(), "lobby", n);
  assert.deepEqual(seen, ["lobby#1 m1", "lobby#4 m4", "lobby#5 m5", "lobby#9 m9"]);
  assert.deepEqual(log, []);
  await client.close();
});

test("HubClient resets a room's position on a new epoch: the restarted stream's low offsets are delivered", async () => {
  const { client, fake, timers, recoveries, seen } = setup();
  fake.last().establish();
  await join(client, fake.last(), { room: "lobby", epoch: "e1", offset: 50 });
  said(fake.last(), "lobby", 51);
  const ws = reconnect(fake, timers);
  assert.deepEqual(ws.messages[0].recover, { epoch: "e1", offset: 51 });
  ws.event("subscribed", {
    room: "lobby",
    epoch: "e2",
    offset: 2,
    recovered: false,
    id: ws.messages[0].id,
  });
  said(ws, "lobby", 3);
  said(ws, "lobby", 4);
  assert.deepEqual(recoveries, [{ room: "lobby", recovered: false, epoch: "e2", offset: 2 }]);
  assert.deepEqual(seen, ["lobby#51 m51", "lobby#3 m3", "lobby#4 m4"]);
  assert.deepEqual(client.position("lobby"), { epoch: "e2", offset: 4 });
  await client.close();
});

test("HubClient forgets positions of rooms it never subscribed to (server-side joins) when the connection drops", async () => {
  const { client, fake, timers, seen } = setup();
  fake.last().establish();
  said(fake.last(), "joined-by-server", 10);
  said(fake.last(), "joined-by-server", 10, "duplicate");
  assert.equal(client.position("joined-by-server"), undefined, "no epoch: not a position");
  const ws = reconnect(fake, timers);
  said(ws, "joined-by-server", 1, "a new connection, maybe a new stream");
  assert.deepEqual(seen, [
    "joined-by-server#10 m10",
    "joined-by-server#1 a new connection, maybe a new stream",
  ]);
  assert.deepEqual(ws.messages, [], "nothing to re-join");
  await client.close();
});

test("HubClient.history() sends {type: history, room, limit} and resolves with the history reply's data", async () => {
  const { client, fake, seen } = setup();
  const ws = fake.last();
  ws.establish();
  await join(client, ws, { room: "lobby", epoch: "e1", offset: 3 });
  const read = client.history("lobby", { limit: 2 });
  const id = lastSent(ws).id;
  assert.equal(ws.sent.at(-1), `{"type":"history","room":"lobby","limit":2,"id":${id}}`);
  const messages = [
    { type: "said", data: "m2", timestamp: 1, room: "lobby", offset: 2 },
    { type: "said", data: "m3", timestamp: 1, room: "lobby", offset: 3 },
  ];
  ws.event("history", { room: "lobby", epoch: "e1", offset: 3, messages, id });
  assert.deepEqual(await read, { room: "lobby", epoch: "e1", offset: 3, messages });
  assert.deepEqual(seen, [], "history is returned, not delivered to listeners");
  assert.deepEqual(client.position("lobby"), { epoch: "e1", offset: 3 });
  const all = client.history("lobby");
  assert.deepEqual(lastSent(ws), { type: "history", room: "lobby", id: lastSent(ws).id });
  ws.event("history", { room: "lobby", messages: [], id: lastSent(ws).id }); // no history kept
  assert.deepEqual(await all, {
    room: "lobby",
    epoch: undefined,
    offset: undefined,
    messages: [],
  });
  await assert.rejects(client.history("lobby", { limit: 0 }), RangeError);
  await assert.rejects(client.history("lobby", { limit: 1.5 }), RangeError);
  await assert.rejects(client.history(""), TypeError);
  await client.close();
  await assert.rejects(client.history("lobby"), /Cannot read history: the client is closed/);
});

for (const code of ["NOT_SUBSCRIBED", "UNAVAILABLE"]) {
  test(`HubClient.history() rejects with RequestError ${code} when the server answers with that error`, async () => {
    const { client, fake, log } = setup();
    const ws = fake.last();
    ws.establish();
    const read = client.history("lobby", { limit: 5 });
    ws.event("error", { id: lastSent(ws).id, code, message: `Cannot read history: ${code}` });
    const error = await read.catch((e) => e);
    assert.ok(error instanceof RequestError);
    assert.equal(error.code, code);
    assert.equal(error.message, `Cannot read history: ${code}`);
    assert.deepEqual(log, [], "a request's error is its rejection, not an error event");
    await client.close();
  });
}

test("HubClient.history() cut off by a dropped connection is sent again after the re-joins on the next one", async () => {
  const { client, fake, timers } = setup();
  fake.last().establish();
  await join(client, fake.last(), { room: "lobby", epoch: "e1", offset: 3 });
  const read = client.history("lobby", { limit: 1 });
  const ws = reconnect(fake, timers);
  assert.deepEqual(ws.messages.map((m) => m.type), ["subscribe", "history"]);
  const id = ws.messages[1].id;
  ws.event("history", { room: "lobby", epoch: "e1", offset: 3, messages: [], id });
  assert.equal((await read).offset, 3);
  await client.close();
});

test("HubClient reconnects after close code 4004 (insufficient state) and recovers its history rooms", async () => {
  const { client, fake, timers, log, recoveries, seen } = setup();
  fake.last().establish();
  await join(client, fake.last(), { room: "lobby", epoch: "e1", offset: 5 });
  said(fake.last(), "lobby", 6);
  fake.last().event("connection.closed", { code: 4004, reason: "insufficient state" });
  fake.last().drop(4004, "insufficient state");
  assert.equal(client.state, "reconnecting");
  assert.deepEqual(log, ["close 4004 insufficient state true"]);
  timers.advance(1000);
  assert.equal(fake.sockets.length, 2);
  const ws = fake.last();
  ws.establish("c2");
  assert.deepEqual(ws.messages[0].recover, { epoch: "e1", offset: 6 });
  ws.event("subscribed", {
    room: "lobby",
    epoch: "e1",
    offset: 8,
    recovered: true,
    id: ws.messages[0].id,
  });
  said(ws, "lobby", 7);
  said(ws, "lobby", 8);
  assert.equal(recoveries[0].recovered, true);
  assert.deepEqual(seen, ["lobby#6 m6", "lobby#7 m7", "lobby#8 m8"]);
  await client.close();
});

test("HubClient keeps a room whose re-join the server cannot serve now (UNAVAILABLE) and asks again after a backoff", async () => {
  const { client, fake, timers, log, recoveries } = setup();
  fake.last().establish();
  await join(client, fake.last(), { room: "lobby", epoch: "e1", offset: 5 });
  const ws = reconnect(fake, timers);
  ws.event("error", {
    id: ws.messages[0].id,
    code: "UNAVAILABLE",
    message: "Cannot subscribe now: history unavailable",
    room: "lobby",
  });
  assert.deepEqual(client.rooms, ["lobby"]);
  assert.equal(log.at(-1), "error resubscribe Cannot subscribe now: history unavailable");
  assert.deepEqual(timers.pending, [50], "backoff attempt 1: 0.5 × 100 ms");
  timers.advance(50);
  assert.equal(ws.sent.length, 2);
  assert.deepEqual(ws.messages[1].recover, { epoch: "e1", offset: 5 });
  ws.event("subscribed", {
    room: "lobby",
    epoch: "e1",
    offset: 5,
    recovered: true,
    id: ws.messages[1].id,
  });
  assert.deepEqual(recoveries, [{ room: "lobby", recovered: true, epoch: "e1", offset: 5 }]);
  // A first subscribe() refused with UNAVAILABLE rejects instead (the app asked: it decides).
  const first = client.subscribe("other");
  ws.event("error", { id: lastSent(ws).id, code: "UNAVAILABLE", message: "later" });
  await assert.rejects(first, (e: RequestError) => e.code === "UNAVAILABLE");
  assert.deepEqual(client.rooms, ["lobby"]);
  await settle();
  await client.close();
  assert.deepEqual(timers.pending, []);
});

test("HubClient re-joins plainly when a server refuses its recover field (INVALID_INPUT), and reports recovered: false", async () => {
  const { client, fake, timers, log, recoveries } = setup();
  fake.last().establish();
  await join(client, fake.last(), { room: "lobby", epoch: "e1", offset: 5 });
  const ws = reconnect(fake, timers);
  assert.ok(ws.messages[0].recover !== undefined);
  ws.event("error", { id: ws.messages[0].id, code: "INVALID_INPUT", message: "unknown field" });
  assert.deepEqual(client.rooms, ["lobby"]);
  assert.equal(log.at(-1), "error resubscribe unknown field");
  timers.advance(50);
  assert.deepEqual(ws.messages[1], { type: "subscribe", room: "lobby", id: ws.messages[1].id });
  ws.event("subscribed", { room: "lobby", id: ws.messages[1].id });
  assert.deepEqual(recoveries, [
    { room: "lobby", recovered: false, epoch: undefined, offset: undefined },
  ]);
  // A plain subscribe refused with INVALID_INPUT is a refusal as before: the room is dropped.
  const bad = client.subscribe("x");
  ws.event("error", { id: lastSent(ws).id, code: "INVALID_INPUT", message: "bad room" });
  await assert.rejects(bad, (e: RequestError) => e.code === "INVALID_INPUT");
  assert.deepEqual(client.rooms, ["lobby"]);
  await client.close();
});
