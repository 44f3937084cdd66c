// The chat demo on a real server (Deno.serve or Bun.serve on port 0) with real `ws` clients.
import assert from "node:assert/strict";
import { type ChatApp, createChatApp } from "../../examples/chat/app.ts";
import { isDeno, test } from "../_harness.ts";
import { TestClient } from "../_ws_client.ts";

// deno-lint-ignore no-explicit-any
type Data = any;

/** A running chat server and how to stop it. */
interface Running {
  app: ChatApp;
  base: string;
  stop(): Promise<void>;
}

function startChat(): Running {
  const app = createChatApp({ onError: () => {} });
  if (isDeno) {
    const server = Deno.serve(
      { port: 0, hostname: "127.0.0.1", onListen: () => {} },
      async (req) => (await app.fetch(req))!,
    );
    return {
      app,
      base: `127.0.0.1:${server.addr.port}`,
      stop: async () => {
        await app.hub.close();
        await server.shutdown();
      },
    };
  }
  // deno-lint-ignore no-explicit-any
  const bun = (globalThis as any).Bun;
  const server = bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: app.fetch,
    websocket: app.websocket,
  });
  return {
    app,
    base: `127.0.0.1:${server.port}`,
    stop: async () => {
      await app.hub.close();
      await server.stop(true);
    },
  };
}

/** Connect as `user` and wait for `connection.established`. */
async function connect(base: string, user: string): Promise<TestClient> {
  const client = await TestClient.connect(`ws://${base}/ws?user=${encodeURIComponent(user)}`);
  const hello = await client.next("connection.established");
  assert.equal((hello.data as { userId: string }).userId, user);
  users.set(client, user);
  return client;
}

/**
 * Subscribe to `room` and wait for the ack (every room keeps a history: it names the stream's
 * epoch and latest offset), then for the joiner's own `presence.join`, which the hub sends to
 * every member after the ack. Returns the ack's data.
 */
async function join(client: TestClient, room: string): Promise<Data> {
  const ack = (await client.request({ type: "subscribe", room }, "subscribed")).data as Data;
  assert.equal(ack.room, room);
  assert.equal(typeof ack.epoch, "string");
  assert.equal(typeof ack.offset, "number");
  const own = await nextJoin(client, room, await client.clientId());
  assert.equal((own.data as Data).userId, users.get(client));
  return ack;
}

/** The `presence.join` of `clientId` in `room`, received already or next. */
async function nextJoin(client: TestClient, room: string, clientId: string) {
  const is = (m: { type: string; data: unknown }) =>
    m.type === "presence.join" && (m.data as Data).room === room &&
    (m.data as Data).clientId === clientId;
  const seen = client.messages.find(is);
  if (seen !== undefined) return seen;
  while (true) {
    const m = await client.next("presence.join");
    if (is(m)) return m;
  }
}

/** The user each test client connected as. */
const users = new WeakMap<TestClient, string>();

/** The data of the next message of `type`, typed loosely for assertions. */
async function next(client: TestClient, type: string): Promise<Data> {
  return (await client.next(type)).data as Data;
}

/** Messages of `type` received so far. */
function count(client: TestClient, type: string): number {
  return client.messages.filter((m) => m.type === type).length;
}

/** A round trip: everything the server sent before the pong has arrived. */
async function settle(client: TestClient): Promise<void> {
  await client.request({ type: "ping" }, "pong");
}

test("The chat demo serves its page at / and answers 404 elsewhere", async () => {
  const chat = startChat();
  try {
    const page = await fetch(`http://${chat.base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    const html = await page.text();
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /DEMO ONLY/);
    const missing = await fetch(`http://${chat.base}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await chat.stop();
  }
});

test("The chat demo refuses an upgrade without a valid user name with 401", async () => {
  const chat = startChat();
  try {
    const url = `ws://${chat.base}/ws`;
    assert.equal(await TestClient.status(url), 401);
    assert.equal(await TestClient.status(`${url}?user=`), 401);
    assert.equal(await TestClient.status(`${url}?user=${"x".repeat(33)}`), 401);
    assert.equal(chat.app.hub.connectionCount, 0);
  } finally {
    await chat.stop();
  }
});

test("The chat demo delivers a room message to every member with its offset, and presence.join on every join", async () => {
  const chat = startChat();
  const ada = await connect(chat.base, "ada");
  const bob = await connect(chat.base, "bob");
  const eve = await connect(chat.base, "eve");
  try {
    await join(ada, "lobby"); // ada heard her own join
    await join(bob, "lobby"); // and bob his
    const bobId = await bob.clientId();
    assert.deepEqual((await nextJoin(ada, "lobby", bobId)).data, {
      room: "lobby",
      clientId: bobId,
      userId: "bob",
    });
    // Whoever joins second asks for the member list: both are in it.
    const list = (await bob.request({ type: "presence", room: "lobby", id: 1 }, "presence"))
      .data as Data;
    assert.deepEqual(list.clients.map((c: Data) => c.userId).sort(), ["ada", "bob"]);
    ada.send({ type: "message", room: "lobby", text: "hello, lobby" });
    for (const c of [ada, bob]) {
      const m = await c.next("message");
      assert.deepEqual(m.data, { room: "lobby", user: "ada", text: "hello, lobby" });
      assert.equal(typeof m.timestamp, "number");
      assert.equal((m as Data).room, "lobby");
      assert.equal((m as Data).offset, 1);
    }
    await settle(eve);
    assert.equal(count(eve, "message"), 0);
    assert.equal(count(eve, "presence.join"), 0);
  } finally {
    await Promise.all([ada.shut(), bob.shut(), eve.shut()]);
    await chat.stop();
  }
});

test("The chat demo answers a message to a room the sender has not joined with NOT_IN_ROOM", async () => {
  const chat = startChat();
  const ada = await connect(chat.base, "ada");
  const bob = await connect(chat.base, "bob");
  try {
    await join(bob, "secret-plans");
    ada.send({ type: "message", room: "secret-plans", text: "let me in" });
    const err = await next(ada, "error");
    assert.equal(err.code, "NOT_IN_ROOM");
    assert.equal(err.room, "secret-plans");
    await settle(bob);
    assert.equal(count(bob, "message"), 0);
    // The connection stays open and usable.
    await join(ada, "secret-plans");
    ada.send({ type: "message", room: "secret-plans", text: "in now" });
    assert.equal((await next(bob, "message")).text, "in now");
  } finally {
    await Promise.all([ada.shut(), bob.shut()]);
    await chat.stop();
  }
});

test("The chat demo refuses room names outside ^[a-z0-9-]{1,32}$ and validates text", async () => {
  const chat = startChat();
  const ada = await connect(chat.base, "ada");
  try {
    for (const room of ["Lobby", "has space", "x".repeat(33), "émoji", "a/b"]) {
      const err = await ada.request({ type: "subscribe", room }, "error");
      assert.equal((err.data as Data).code, "SUBSCRIBE_REFUSED", room);
    }
    assert.equal(chat.app.hub.roomCount, 0);
    await join(ada, "r-1");
    for (const text of ["", "x".repeat(2001), 42]) {
      const err = await ada.request({ type: "message", room: "r-1", text }, "error");
      assert.equal((err.data as Data).code, "INVALID_INPUT");
      assert.deepEqual((err.data as Data).issues[0].path, ["text"]);
    }
    const unknown = await ada.request({ type: "shout", text: "hi" }, "error");
    assert.equal((unknown.data as Data).code, "INVALID_INPUT");
    ada.send({ type: "message", room: "r-1", text: "x".repeat(2000) });
    assert.equal((await next(ada, "message")).text.length, 2000);
  } finally {
    await ada.shut();
    await chat.stop();
  }
});

test("The chat demo delivers a whisper to every tab of the recipient and a copy to the sender", async () => {
  const chat = startChat();
  const tab1 = await connect(chat.base, "ada");
  const tab2 = await connect(chat.base, "ada");
  const bob = await connect(chat.base, "bob");
  const eve = await connect(chat.base, "eve");
  try {
    bob.send({ type: "whisper", to: "ada", text: "psst" });
    const expected = { from: "bob", to: "ada", text: "psst" };
    for (const c of [tab1, tab2, bob]) assert.deepEqual(await next(c, "whisper"), expected);
    await settle(eve);
    assert.equal(count(eve, "whisper"), 0);
    const err = await bob.request({ type: "whisper", to: "nobody", text: "hello?" }, "error");
    assert.deepEqual(err.data, {
      to: "nobody",
      code: "USER_OFFLINE",
      message: "Cannot whisper: user is not online",
    });
  } finally {
    await Promise.all([tab1.shut(), tab2.shut(), bob.shut(), eve.shut()]);
    await chat.stop();
  }
});

test("The chat demo announces presence.leave for each tab that disconnects", async () => {
  const chat = startChat();
  const ada = await connect(chat.base, "ada");
  const bob1 = await connect(chat.base, "bob");
  const bob2 = await connect(chat.base, "bob");
  try {
    await join(ada, "lobby");
    await join(bob1, "lobby");
    await join(bob2, "lobby");
    const tabs = [await bob1.clientId(), await bob2.clientId()].sort();
    for (const id of tabs) await nextJoin(ada, "lobby", id);
    await bob1.shut();
    await bob2.shut();
    const left: Data[] = [];
    for (let i = 0; i < 2; i++) left.push((await ada.next("presence.leave")).data);
    assert.deepEqual(
      left.sort((a, b) => a.clientId < b.clientId ? -1 : 1),
      tabs.map((clientId) => ({ room: "lobby", clientId, userId: "bob" })),
    );
    const list = (await ada.request({ type: "presence", room: "lobby", id: 1 }, "presence"))
      .data as Data;
    assert.deepEqual(list.clients, [{ clientId: await ada.clientId(), userId: "ada" }]);
  } finally {
    await Promise.all([ada.shut(), bob1.shut(), bob2.shut()]);
    await chat.stop();
  }
});

test("The chat demo announces presence.leave when a user unsubscribes (the page's ×)", async () => {
  const chat = startChat();
  const ada = await connect(chat.base, "ada");
  const bob = await connect(chat.base, "bob");
  try {
    await join(ada, "lobby");
    await join(bob, "lobby");
    const bobId = await bob.clientId();
    await nextJoin(ada, "lobby", bobId);
    const ack = await bob.request({ type: "unsubscribe", room: "lobby" }, "unsubscribed");
    assert.equal(ack.type, "unsubscribed");
    assert.deepEqual((await ada.next("presence.leave")).data, {
      room: "lobby",
      clientId: bobId,
      userId: "bob",
    });
    await settle(bob);
    assert.equal(count(bob, "presence.leave"), 0, "bob, out of the room, hears no leave");
    const err = await bob.request({ type: "presence", room: "lobby", id: 2 }, "error");
    assert.equal((err.data as Data).code, "NOT_SUBSCRIBED");
  } finally {
    await Promise.all([ada.shut(), bob.shut()]);
    await chat.stop();
  }
});

test("The chat demo keeps a room's last 100 messages: a late joiner reads them, a reconnecting client recovers what it missed", async () => {
  const chat = startChat();
  const ada = await connect(chat.base, "ada");
  let bob = await connect(chat.base, "bob");
  try {
    await join(ada, "lobby");
    for (let i = 1; i <= 103; i++) {
      chat.app.hub.emit("message", { room: "lobby", user: "ada", text: `m${i}` }, {
        rooms: "lobby",
      });
    }
    const ack = await join(bob, "lobby");
    assert.equal(ack.offset, 103);
    const read = { type: "history", room: "lobby", limit: 1000, id: 1 };
    const h = (await bob.request(read, "history")).data as Data;
    assert.equal(h.epoch, ack.epoch);
    assert.deepEqual(
      h.messages.map((m: Data) => `${m.offset} ${m.data.text}`),
      Array.from({ length: 100 }, (_, i) => `${i + 4} m${i + 4}`),
      "the last 100, oldest first",
    );
    // bob drops; ada says two things meanwhile; bob comes back and recovers exactly those.
    await bob.shut();
    ada.send({ type: "message", room: "lobby", text: "while you were away" });
    ada.send({ type: "message", room: "lobby", text: "and this" });
    for (let i = 0; i < 105; i++) await ada.next("message");
    bob = await connect(chat.base, "bob");
    const recover = { epoch: ack.epoch, offset: 103 };
    const again = await bob.request({ type: "subscribe", room: "lobby", recover }, "subscribed");
    assert.deepEqual(again.data, {
      room: "lobby",
      epoch: ack.epoch,
      offset: 105,
      recovered: true,
    });
    const replayed = [await bob.next("message"), await bob.next("message")];
    assert.deepEqual(replayed.map((m) => [(m as Data).offset, (m.data as Data).text]), [
      [104, "while you were away"],
      [105, "and this"],
    ]);
    await settle(bob);
    assert.equal(count(bob, "message"), 2, "each missed message once, nothing more");
  } finally {
    await Promise.all([ada.shut(), bob.shut()]);
    await chat.stop();
  }
});

test("The chat demo's hub.close() closes every client with connection.closed and 1001", async () => {
  const chat = startChat();
  const ada = await connect(chat.base, "ada");
  try {
    await chat.app.hub.close();
    assert.equal((await ada.closed).code, 1001);
    assert.deepEqual(await next(ada, "connection.closed"), {
      code: 1001,
      reason: "server shutting down",
    });
  } finally {
    await ada.shut();
    await chat.stop();
  }
});

/** A child process running one of this repo's scripts on the current runtime. */
interface Child {
  stdout: ReadableStream<Uint8Array>;
  kill(signal: "SIGTERM" | "SIGKILL"): void;
  /** The exit code, or `null` when killed by a signal. */
  status: Promise<number | null>;
}

function runScript(path: string, env: Record<string, string>): Child {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (isDeno) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", path],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    return {
      stdout: child.stdout,
      kill: (signal) => child.kill(signal),
      status: child.status.then((s) => s.signal === null ? s.code : null),
    };
  }
  const child = g.Bun.spawn({
    cmd: [process.execPath, path],
    env: { ...process.env, ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  return {
    stdout: child.stdout,
    kill: (signal) => child.kill(signal),
    status: child.exited.then((code: number) => child.signalCode ? null : code),
  };
}

test("examples/chat/main.ts serves on $PORT and exits 0 on SIGTERM after closing its clients", async () => {
  const main = new URL("../../examples/chat/main.ts", import.meta.url).pathname;
  const child = runScript(main, { PORT: "0", HOST: "127.0.0.1", NO_COLOR: "1" });
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  async function readUntil(pattern: RegExp): Promise<RegExpExecArray> {
    while (true) {
      const m = pattern.exec(out);
      if (m) return m;
      const { value, done } = await reader.read();
      if (done) throw new Error(`Cannot find ${pattern} in the output: ${out}`);
      out += value;
    }
  }
  let status: number | null | undefined;
  try {
    const [, port] = await readUntil(/hubbub chat demo on http:\/\/localhost:(\d+)\//);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.match(await page.text(), /<title>hubbub chat<\/title>/);
    const ada = await connect(`127.0.0.1:${port}`, "ada");
    child.kill("SIGTERM");
    assert.equal((await ada.closed).code, 1001);
    await readUntil(/shutting down/);
    status = await child.status;
    assert.equal(status, 0);
  } finally {
    if (status === undefined) {
      child.kill("SIGKILL");
      await child.status;
    }
    await reader.cancel();
  }
});
