// The transport contract: every adapter (Deno, Bun, Hono on each) must pass these,
// with a real server on port 0 and real clients. Adapter test files register it.
import assert from "node:assert/strict";
import { CloseCode, type Hub, type HubOptions, MessageError } from "../../mod.ts";
import { test, type TestOptions, until } from "../_harness.ts";
import { type Msg, openStalledSocket, TestClient } from "../_ws_client.ts";

/** A running server. */
export interface ServerHandle {
  /** e.g. ws://127.0.0.1:1234/ws */
  url: string;
  /** e.g. http://127.0.0.1:1234 */
  origin: string;
  hub: Hub;
  /** Close the hub and stop the server. */
  close(): Promise<void>;
}

/** Start a server for the adapter under test with these hub options. */
export type StartServer = (options: HubOptions) => Promise<ServerHandle>;

function baseOptions(extra: HubOptions = {}): HubOptions {
  return {
    identify: (req) => {
      const user = new URL(req.url).searchParams.get("user");
      if (user === "nobody") return null;
      return user ? { userId: user } : undefined;
    },
    canJoin: (_c, room) => !room.startsWith("secret"),
    onError: () => {},
    ...extra,
  };
}

function code(m: Msg): string {
  assert.equal(m.type, "error", `expected an error, got ${JSON.stringify(m)}`);
  return (m.data as { code: string }).code;
}

/**
 * Register every contract test for one adapter.
 * @param name Adapter name, prefixed to each test.
 * @param start Server factory.
 * @param options Skip (e.g. wrong runtime).
 */
export function transportContract(
  name: string,
  start: StartServer,
  options: TestOptions = {},
): void {
  const t = (title: string, fn: () => Promise<void>) =>
    test(`${name}: ${title}`, fn, { timeout: 30_000, ...options });

  async function withServer(
    hubOptions: HubOptions,
    fn: (
      s: ServerHandle,
      open: (
        query?: string,
        o?: { headers?: Record<string, string>; autoPong?: boolean },
      ) => Promise<TestClient>,
    ) => Promise<void>,
  ): Promise<void> {
    const server = await start(baseOptions(hubOptions));
    const clients: TestClient[] = [];
    const open = async (
      query = "",
      o: { headers?: Record<string, string>; autoPong?: boolean } = {},
    ) => {
      const c = await TestClient.connect(server.url + query, o);
      clients.push(c);
      return c;
    };
    try {
      await fn(server, open);
    } finally {
      await Promise.all(clients.map((c) => c.shut()));
      await server.close();
    }
  }

  t("sends connection.established first, with the server-decided user id", async () => {
    await withServer({}, async (_s, open) => {
      const a = await open("?user=ada");
      const hello = await a.next();
      assert.equal(hello.type, "connection.established");
      const data = hello.data as { clientId: string; userId: string };
      assert.match(data.clientId, /^[0-9a-f-]{36}$/);
      assert.equal(data.userId, "ada");
      assert.equal(typeof hello.timestamp, "number");
      const anon = await open();
      assert.deepEqual(Object.keys((await anon.next()).data as object), ["clientId"]);
    });
  });

  t("answers ping with pong and keeps the envelope shape", async () => {
    await withServer({}, async (_s, open) => {
      const a = await open();
      await a.next();
      const pong = await a.request({ type: "ping" });
      assert.equal(pong.type, "pong");
      assert.equal(typeof (pong.data as { timestamp: number }).timestamp, "number");
      assert.deepEqual(Object.keys(pong).sort(), ["data", "timestamp", "type"]);
    });
  });

  t("subscribes through the room guard, acks, refuses, and unsubscribes", async () => {
    await withServer({}, async (s, open) => {
      const a = await open();
      await a.next();
      assert.deepEqual(await a.request({ type: "subscribe", room: "lobby" }), {
        ...a.messages.at(-1)!,
        type: "subscribed",
        data: { room: "lobby" },
      });
      assert.equal(
        code(await a.request({ type: "subscribe", room: "secret-1" })),
        "SUBSCRIBE_REFUSED",
      );
      assert.equal(s.hub.roomSize("lobby"), 1);
      assert.equal(s.hub.roomSize("secret-1"), 0);
      const un = await a.request({ type: "unsubscribe", room: "lobby" });
      assert.equal(un.type, "unsubscribed");
      assert.equal(s.hub.roomCount, 0);
    });
  });

  t("refuses every client subscribe when the app sets no room guard", async () => {
    await withServer({ canJoin: undefined }, async (s, open) => {
      const a = await open();
      await a.next();
      assert.equal(
        code(await a.request({ type: "subscribe", room: "lobby" })),
        "SUBSCRIBE_REFUSED",
      );
      assert.equal(s.hub.roomCount, 0);
    });
  });

  t("targets a room, a user across two tabs, a client, and everyone but the sender", async () => {
    await withServer({}, async (s, open) => {
      const ada1 = await open("?user=ada");
      const ada2 = await open("?user=ada");
      const bob = await open("?user=bob");
      for (const c of [ada1, ada2, bob]) await c.next();
      await ada1.request({ type: "subscribe", room: "r" });
      await bob.request({ type: "subscribe", room: "r" });
      assert.equal(s.hub.emit("room", 1, { rooms: "r" }), 2);
      assert.equal((await ada1.next("room")).data, 1);
      assert.equal((await bob.next("room")).data, 1);
      assert.equal(s.hub.emit("user", 2, { users: "ada" }), 2);
      assert.equal((await ada1.next("user")).data, 2);
      assert.equal((await ada2.next("user")).data, 2);
      assert.equal(s.hub.emit("client", 3, { clients: await bob.clientId() }), 1);
      assert.equal((await bob.next("client")).data, 3);
      assert.equal(s.hub.emit("others", 4, { rooms: "r", except: await ada1.clientId() }), 1);
      assert.equal((await bob.next("others")).data, 4);
      assert.equal(s.hub.emit("all", 5), 3);
      for (const c of [ada1, ada2, bob]) assert.equal((await c.next("all")).data, 5);
      // ada2 never got room traffic, bob never got ada's, ada1 never got "others".
      assert.equal(ada2.messages.filter((m) => m.type === "room").length, 0);
      assert.equal(bob.messages.filter((m) => m.type === "user").length, 0);
      assert.equal(ada1.messages.filter((m) => m.type === "others").length, 0);
    });
  });

  t("never lets a client claim a user id", async () => {
    await withServer({}, async (s, open) => {
      const a = await open();
      await a.next();
      assert.equal(
        code(await a.request({ type: "authenticate", userId: "admin" })),
        "UNAUTHENTICATED",
      );
      assert.equal(s.hub.userCount, 0);
      const b = await open("?user=bea");
      await b.next();
      const ok = await b.request({ type: "authenticate", userId: "admin" });
      assert.deepEqual(ok.data, { userId: "bea", status: "success" });
    });
  });

  t("answers 426, 403, 401 and 503 before opening a socket", async () => {
    await withServer({ maxConnections: 2, origins: ["https://*.example.com"] }, async (s, open) => {
      const plain = await fetch(s.url.replace("ws://", "http://"));
      assert.equal(plain.status, 426);
      await plain.body?.cancel();
      assert.equal(
        await TestClient.status(s.url, { headers: { origin: "https://evil.test" } }),
        403,
      );
      assert.equal(await TestClient.status(s.url, { headers: { origin: "null" } }), 403);
      assert.equal(await TestClient.status(s.url, { headers: { origin: s.origin } }), 101);
      assert.equal(
        await TestClient.status(s.url, { headers: { origin: "https://app.example.com" } }),
        101,
      );
      assert.equal(await TestClient.status(s.url), 101, "no Origin: a non-browser client");
      assert.equal(await TestClient.status(s.url + "?user=nobody"), 401);
      await until(() => s.hub.connectionCount === 0, 5000, "earlier probes to close");
      await open();
      await open();
      assert.equal(await TestClient.status(s.url), 503);
    });
  });

  t("closes with 1009 when a frame is over maxMessageBytes", async () => {
    const closes: number[] = [];
    await withServer(
      { maxMessageBytes: 1000, onDisconnect: (_c, i) => void closes.push(i.code) },
      async (s, open) => {
        const a = await open();
        await a.next();
        a.send({ type: "ping", pad: "x".repeat(2000) });
        assert.equal((await a.closed).code, 1009);
        await until(() => closes.length === 1, 5000, "disconnect hook");
        assert.equal(closes[0], 1009);
        assert.equal(s.hub.connectionCount, 0);
      },
    );
  });

  t("answers bad input with error events and keeps serving everyone", async () => {
    await withServer({
      onMessage: (_c, m) => {
        if (m.type === "boom") throw new Error("hidden");
        if (m.type === "refuse") throw new MessageError("NOT_ALLOWED", "Cannot do that");
      },
    }, async (s, open) => {
      const a = await open();
      const b = await open();
      await a.next();
      await b.next();
      const cases: [unknown, string][] = [
        ["{oops", "INVALID_JSON"],
        ["[]", "INVALID_INPUT"],
        ['"str"', "INVALID_INPUT"],
        [{ type: 7 }, "INVALID_INPUT"],
        [{ type: "subscribe", room: 5 }, "INVALID_INPUT"],
        [{ type: "subscribe", room: "a", extra: 1 }, "INVALID_INPUT"],
        [{ type: "subscribe", room: "x".repeat(10_000) }, "INVALID_INPUT"],
        [{ type: "ping", junk: true }, "INVALID_INPUT"],
        [{ type: "boom" }, "INTERNAL_ERROR"],
        [{ type: "refuse" }, "NOT_ALLOWED"],
      ];
      for (const [input, expected] of cases) {
        const reply = await a.request(typeof input === "string" ? input : JSON.stringify(input));
        assert.equal(code(reply), expected, JSON.stringify(input));
      }
      assert.equal(s.hub.roomCount, 0);
      assert.equal((await b.request({ type: "ping" })).type, "pong");
      assert.equal((await a.request({ type: "ping" })).type, "pong");
    });
  });

  t("passes binary frames to onBinary as bytes", async () => {
    const got: number[][] = [];
    await withServer({
      onBinary: (c, d) => {
        got.push([...d]);
        c.sendRaw(d);
      },
    }, async (_s, open) => {
      const a = await open();
      await a.next();
      a.send(new Uint8Array([1, 2, 250]));
      await until(() => a.binary.length === 1, 5000, "binary echo");
      assert.deepEqual(got, [[1, 2, 250]]);
      assert.deepEqual([...a.binary[0]], [1, 2, 250]);
    });
  });

  t("calls the disconnect hook exactly once, for client and server closes", async () => {
    const calls: number[] = [];
    await withServer({ onDisconnect: (_c, i) => void calls.push(i.code) }, async (s, open) => {
      const a = await open();
      const b = await open();
      await a.next();
      const bid = await b.clientId();
      await a.shut(4321);
      s.hub.connection(bid)!.close(4100, "kicked");
      const info = await b.closed;
      assert.deepEqual(info, { code: 4100, reason: "kicked" });
      assert.deepEqual(b.messages.at(-1)?.data, { code: 4100, reason: "kicked" });
      await until(() => calls.length === 2, 5000, "two disconnects");
      // A fence instead of a sleep: a third client's close goes through the same path after
      // both; once its hook ran, a second call for a or b would have run too.
      const fence = await open();
      await fence.next();
      await fence.shut(4999);
      await until(() => calls.includes(4999), 5000, "the fence's disconnect");
      assert.deepEqual(calls.sort(), [4100, 4321, 4999]);
    });
  });

  t("closes a client that stops answering pings with 1001, near idleTimeoutMs", async () => {
    const codes: number[] = [];
    const idleTimeoutMs = 1000;
    const pingIntervalMs = 200;
    await withServer({
      pingIntervalMs,
      idleTimeoutMs,
      onDisconnect: (_c, i) => void codes.push(i.code),
    }, async (s, open) => {
      const opened = Date.now();
      const deaf = await open("", { autoPong: false });
      const alive = await open();
      await deaf.next();
      await alive.next();
      const started = Date.now();
      await until(() => codes.length === 1, 8000, "the deaf client to be closed");
      const took = Date.now() - opened;
      assert.ok(Date.now() - started >= 500, "not closed before the idle timeout");
      // Silent since it opened: closed on the first keepalive tick past the timeout.
      assert.ok(took >= idleTimeoutMs - 50, `closed ${took} ms after opening, before the timeout`);
      assert.ok(
        took <= idleTimeoutMs + pingIntervalMs + 800,
        `closed ${took} ms after opening (idleTimeoutMs ${idleTimeoutMs}, ticks every ${pingIntervalMs})`,
      );
      assert.deepEqual(codes, [CloseCode.GOING_AWAY], "the hook saw 1001");
      const info = await deaf.closed;
      assert.equal(info.code, CloseCode.GOING_AWAY, "the client saw 1001");
      assert.equal(s.hub.connectionCount, 1);
      assert.equal((await alive.request({ type: "ping" })).type, "pong");
    });
  });

  t(
    "drops a client that stops reading while a fast client gets every message in order",
    async () => {
      const closes: { id: string; code: number }[] = [];
      await withServer({
        highWaterMark: 64 * 1024,
        lowWaterMark: 16 * 1024,
        maxQueueBytes: 256 * 1024,
        maxQueueMessages: 10_000,
        onDisconnect: (c, i) => void closes.push({ id: c.id, code: i.code }),
      }, async (s, open) => {
        const fast = await open();
        const fastId = await fast.clientId();
        const slow = await openStalledSocket(s.url);
        await until(() => s.hub.connectionCount === 2, 5000, "the stalled client to connect");
        const slowId = s.hub.connections().find((c) => c.id !== fastId)!.id;
        s.hub.join(fastId, "r");
        s.hub.join(slowId, "r");
        const pad = "x".repeat(16 * 1024);
        let sent = 0;
        try {
          // Up to 64 MiB, in bursts the fast client keeps up with; the slow one reads nothing.
          while (closes.length === 0 && sent < 4096) {
            for (let i = 0; i < 16; i++) s.hub.emit("n", { i: sent++, pad }, { rooms: "r" });
            await until(() => fast.messages.length >= sent + 1, 10_000, "fast client to keep up");
          }
          assert.equal(closes.length, 1, "the slow client was closed");
          assert.deepEqual(closes[0], { id: slowId, code: CloseCode.SLOW_CLIENT });
          for (let i = 0; i < 16; i++) s.hub.emit("n", { i: sent++, pad }, { rooms: "r" });
          await until(() => fast.messages.length >= sent + 1, 10_000, "fast client to finish");
          const seq = fast.messages.filter((m) => m.type === "n").map((m) =>
            (m.data as { i: number }).i
          );
          assert.deepEqual(seq, Array.from({ length: sent }, (_, i) => i));
          assert.equal(s.hub.roomSize("r"), 1);
          assert.equal(s.hub.connectionCount, 1);
        } finally {
          await slow.destroy();
        }
      });
    },
  );

  t("closes every connection with connection.closed and 1001 on hub.close()", async () => {
    const server = await start(baseOptions({}));
    const a = await TestClient.connect(server.url);
    const b = await TestClient.connect(server.url);
    await a.next();
    await b.next();
    await server.hub.close();
    for (const c of [a, b]) {
      const info = await c.closed;
      assert.equal(info.code, 1001);
      assert.equal(c.messages.at(-1)?.type, "connection.closed");
      assert.deepEqual(c.messages.at(-1)?.data, { code: 1001, reason: "server shutting down" });
    }
    assert.equal(await TestClient.status(server.url), 503);
    await server.close();
  });
}

/** Batched framing over a real socket: negotiated by subprotocol, several envelopes per frame. */
export function batchContract(name: string, start: StartServer, options: TestOptions = {}): void {
  test(
    `${name}: negotiates hubbub.batch.v1 and packs a burst into few frames, in order`,
    async () => {
      const server = await start(baseOptions({}));
      const { default: WebSocket } = await import("ws");
      const ws = new WebSocket(server.url, ["hubbub.batch.v1"]);
      const messages: Msg[] = [];
      let frames = 0;
      const opened = new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
      ws.on("message", (data: Uint8Array) => {
        frames++;
        for (const part of new TextDecoder().decode(data).split("\n")) {
          messages.push(JSON.parse(part));
        }
      });
      try {
        await opened;
        assert.equal(ws.protocol, "hubbub.batch.v1");
        await until(() => messages.length === 1, 5000, "connection.established");
        const before = frames;
        for (let i = 0; i < 200; i++) server.hub.emit("n", i);
        await until(() => messages.length === 201, 5000, "the burst");
        assert.deepEqual(
          messages.slice(1).map((m) => m.data),
          Array.from({ length: 200 }, (_, i) => i),
        );
        assert.ok(frames - before < 20, `200 messages in ${frames - before} frames`);
      } finally {
        ws.close();
        await closed;
        await server.close();
      }
    },
    { timeout: 30_000, ...options },
  );
}
