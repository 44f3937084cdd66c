// The transport contract on real Node (node:http + ws), for the ./node adapter and for Hono on
// @hono/node-server. Run by `npm test` as `node --import tsx --test`; skipped on Deno and Bun.
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import * as wsPackage from "ws";
import { type Connection, Hub, type HubOptions } from "../../mod.ts";
import { NodeTransport } from "../../src/adapters/_node_socket.ts";
import { resolveLimits } from "../../src/core/limits.ts";
import { utf8Length } from "../../src/protocol/envelope.ts";
import { isNode, test, until } from "../_harness.ts";
import { TestClient } from "../_ws_client.ts";
import { batchContract, transportContract } from "../contract/transport_contract.ts";
import type { StartServer } from "../contract/transport_contract.ts";
import { rawUpgrade } from "../node/_raw.ts";

// Imported lazily: the servers module names node:http and @hono/node-server.
const servers = isNode ? await import("../node/_servers.ts") : undefined;
const startNode: StartServer = (o) => servers!.startNode(o);
const startHonoNode: StartServer = (o) => servers!.startHonoNode(o);

transportContract("node adapter", startNode, { if: isNode });
batchContract("node adapter", startNode, { if: isNode });
transportContract("hono on node", startHonoNode, { if: isNode });
batchContract("hono on node", startHonoNode, { if: isNode });

// What the contract does not see on Node: the exact handshake on the wire, the raw refusals,
// slot release, drain under a low watermark, and one write per connection per turn.
const nodeTest = (name: string, fn: () => Promise<void>) =>
  test(`node adapter: ${name}`, fn, { if: isNode, timeout: 20_000 });

/** A node:http server on port 0 with createNodeHandler, exposing each upgrade's socket. */
async function nodeServer(
  options: HubOptions,
  handlerOptions: { params?: (request: Request) => Record<string, string> } = {},
): Promise<{
  hub: Hub;
  url: string;
  sockets: Duplex[];
  upgrades: Promise<void>[];
  close(): Promise<void>;
}> {
  const { createServer } = await import("node:http");
  const { WebSocketServer } = await import("ws");
  const { createNodeHandler } = await import("../../src/adapters/node.ts");
  const hub = new Hub({ onError: () => {}, ...options });
  const ws = createNodeHandler(hub, { WebSocketServer, ...handlerOptions });
  const sockets: Duplex[] = [];
  const upgrades: Promise<void>[] = [];
  const server = createServer((_req, res) => void res.writeHead(404).end());
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Uint8Array) => {
    sockets.push(socket);
    upgrades.push(ws.upgrade(req, socket, head));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    hub,
    url: `ws://127.0.0.1:${port}/ws`,
    sockets,
    upgrades,
    close: async () => {
      await hub.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

nodeTest("the 101 names exactly the subprotocol the hub decided", async () => {
  const s = await nodeServer({});
  const off = await nodeServer({ batchFraming: false });
  try {
    const cases: [string, string, string | undefined][] = [
      [s.url, "chat, hubbub.batch.v1", "hubbub.batch.v1"],
      [s.url, "chat", undefined],
      [off.url, "hubbub.batch.v1", undefined],
    ];
    for (const [url, offer, expected] of cases) {
      const answer = await rawUpgrade(url, { "sec-websocket-protocol": offer });
      assert.equal(answer.status, 101, offer);
      assert.equal(answer.headers["sec-websocket-protocol"], expected, offer);
      answer.socket.destroy();
      await answer.closed;
    }
    await until(() => s.hub.connectionCount + off.hub.connectionCount === 0, 5000, "closes");
  } finally {
    await s.close();
    await off.close();
  }
});

nodeTest("refusals are plain HTTP on the raw socket, which the server then closes", async () => {
  const s = await nodeServer({
    maxConnectionsPerUser: 1,
    identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? "anon" }),
  });
  try {
    const origin = await rawUpgrade(s.url, { origin: "https://evil.test" }, true);
    assert.equal(origin.status, 403);
    assert.equal(origin.body, "Origin not allowed");
    await origin.closed; // the server closed it: waitForClose read up to the close
    const ada = await TestClient.connect(s.url + "?user=ada");
    await ada.next();
    const second = await rawUpgrade(s.url + "?user=ada", {}, true);
    assert.equal(second.status, 429);
    assert.equal(second.headers["retry-after"], "5");
    assert.equal(second.headers["connection"], "close");
    assert.equal(Number(second.headers["content-length"]), second.body.length);
    await second.closed;
    await Promise.all(s.upgrades);
    assert.ok(s.sockets.slice(0, 1).every((x) => x.destroyed), "the refused socket is destroyed");
    await ada.shut();
  } finally {
    await s.close();
  }
});

nodeTest(
  "an upgrade whose socket closes while identify runs releases its slot at once",
  async () => {
    let started!: () => void;
    const identifying = new Promise<void>((r) => started = r);
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    // One connection at most, and the open deadline far away: a slot kept by the dropped
    // upgrade would answer the next client 503 for 10 s.
    const s = await nodeServer({
      maxConnections: 1,
      openTimeoutMs: 10_000,
      identify: async (req) => {
        if (!new URL(req.url).searchParams.has("hold")) return undefined;
        started();
        await gate;
        return undefined;
      },
    });
    try {
      const { default: net } = await import("node:net");
      const u = new URL(s.url);
      const client = net.connect({ host: u.hostname, port: Number(u.port) });
      client.on("error", () => {});
      client.write(
        `GET /ws?hold HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${btoa("0123456789abcdef")}\r\n` +
          `Sec-WebSocket-Version: 13\r\n\r\n`,
      );
      await identifying;
      const serverSide = s.sockets[0];
      const serverClosed = new Promise<void>((r) => serverSide.once("close", () => r()));
      client.destroy(); // the client goes away while its upgrade is undecided
      await serverClosed;
      release(); // the hub now accepts it, for a socket that is gone
      await Promise.all(s.upgrades);
      assert.equal(s.hub.connectionCount, 0);
      assert.equal(await TestClient.status(s.url), 101, "the slot was released");
    } finally {
      release();
      await s.close();
    }
  },
);

nodeTest(
  "a handshake ws refuses (no key) is answered 400 and its slot released at once",
  async () => {
    const s = await nodeServer({ maxConnections: 1, openTimeoutMs: 10_000 });
    try {
      const bad = await rawUpgrade(s.url, { "sec-websocket-key": "" }, true);
      assert.equal(bad.status, 400);
      await bad.closed;
      await Promise.all(s.upgrades);
      // The hub had accepted it: a slot still held would answer 503 for 10 s.
      assert.equal(await TestClient.status(s.url), 101);
    } finally {
      await s.close();
    }
  },
);

nodeTest(
  "a Host or request target that would move the URL's authority is refused 400",
  async () => {
    const seen: string[] = [];
    const s = await nodeServer({ identify: (req) => void seen.push(req.url) });
    try {
      for (const headers of [{ host: "evil.test/x" }, { host: "a@evil.test" }]) {
        const answer = await rawUpgrade(s.url, headers, true);
        assert.equal(answer.status, 400, JSON.stringify(headers));
        await answer.closed;
      }
      const path = await rawUpgrade(s.url.replace("/ws", "//evil.test/ws"), {}, true);
      assert.equal(path.status, 400);
      await path.closed;
      assert.deepEqual(seen, [], "the hub never saw them");
      assert.equal(await TestClient.status(s.url), 101);
      assert.deepEqual(seen, [s.url.replace("ws://", "http://")]);
    } finally {
      await s.close();
    }
  },
);

// A self-signed certificate for 127.0.0.1, made with openssl for the run (none is committed).
async function selfSigned(): Promise<{ key: string; cert: string } | undefined> {
  const { execFileSync } = await import("node:child_process");
  const { mkdtempSync, readFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const dir = mkdtempSync(`${tmpdir()}/hubbub-tls-`);
  try {
    execFileSync("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
    ], { stdio: "ignore" });
    return {
      key: readFileSync(`${dir}/key.pem`, "utf8"),
      cert: readFileSync(`${dir}/cert.pem`, "utf8"),
    };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

nodeTest("on node:https the request is https: a same-origin https page is accepted", async () => {
  const tls = await selfSigned();
  assert.ok(tls !== undefined, "openssl could not make a certificate");
  const { createServer } = await import("node:https");
  const { WebSocketServer, default: WebSocket } = await import("ws");
  const { createNodeHandler } = await import("../../src/adapters/node.ts");
  const urls: string[] = [];
  const hub = new Hub({ onError: () => {}, identify: (req) => void urls.push(req.url) });
  const ws = createNodeHandler(hub, { WebSocketServer });
  const server = createServer(tls, (_req, res) => void res.writeHead(404).end());
  server.on("upgrade", (req, socket, head) => void ws.upgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const origin = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  const attempt = (pageOrigin: string) =>
    new Promise<number>((resolve) => {
      const client = new WebSocket(origin.replace("https:", "wss:") + "/ws", {
        rejectUnauthorized: false,
        headers: { origin: pageOrigin },
      });
      client.on("error", () => {});
      client.once("open", () => {
        client.close();
        client.once("close", () => resolve(101));
      });
      client.once("unexpected-response", (_req, res) => {
        res.resume();
        client.terminate();
        resolve(res.statusCode ?? 0);
      });
    });
  try {
    assert.equal(await attempt(origin), 101, "same origin: https");
    assert.equal(await attempt(origin.replace("https:", "http:")), 403, "http is another origin");
    assert.deepEqual(urls, [`${origin}/ws`]);
  } finally {
    await hub.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
});

nodeTest("keeps route params from the params option on connection.request.params", async () => {
  const s = await nodeServer({}, {
    params: (request) => ({ path: new URL(request.url).pathname }),
  });
  try {
    const a = await TestClient.connect(s.url);
    const id = await a.clientId();
    assert.deepEqual(s.hub.connection(id)?.request.params, { path: "/ws" });
    await a.shut();
  } finally {
    await s.close();
  }
});

nodeTest(
  "a paused reader gets every frame once it reads again (the writer waits for drain)",
  async () => {
    // Marks under Node's own 16 KiB: no `drain` is due there, the writer polls.
    // Large frames fill Node's buffer past its mark at once; 1 KiB frames stop under it.
    const cases = [[32 * 1024, 8 * 1024, 32 * 1024], [8 * 1024, 1024, 1024]];
    for (const [highWaterMark, lowWaterMark, frameBytes] of cases) {
      const closes: number[] = [];
      const s = await nodeServer({
        highWaterMark,
        lowWaterMark,
        maxQueueBytes: 64 * 1024 * 1024,
        maxQueueMessages: 100_000,
        onDisconnect: (_c, i) => void closes.push(i.code),
      });
      try {
        const a = await TestClient.connect(s.url);
        const id = await a.clientId();
        a.pause();
        const pad = "x".repeat(frameBytes);
        const burst = (512 * 1024) / frameBytes;
        const socket = s.sockets[0] as Duplex & { writableLength: number };
        let queued = 0;
        // Until the kernel's buffers are full (Node holds bytes it could not write) and the
        // hub holds frames the socket would not take.
        for (let i = 0; i < 2000 && (queued === 0 || socket.writableLength === 0); i++) {
          for (let j = 0; j < burst; j++) {
            s.hub.emit("n", { i: i * burst + j, pad }, { clients: id });
          }
          await new Promise((r) => setTimeout(r, 1));
          queued = s.hub.connection(id)?.queuedBytes ?? 0;
        }
        assert.ok(queued > 0 && socket.writableLength > 0, "the socket pushed back");
        const sent = s.hub.emit("n", { i: -1, pad: "" }, { clients: id });
        assert.equal(sent, 1);
        a.resume();
        await until(
          () => a.messages.some((m) => (m.data as { i: number }).i === -1),
          15_000,
          "last",
        );
        const seq = a.messages.filter((m) => m.type === "n").map((m) =>
          (m.data as { i: number }).i
        );
        assert.equal(seq.pop(), -1);
        assert.deepEqual(seq, Array.from({ length: seq.length }, (_, i) => i));
        assert.deepEqual(closes, [], "not dropped: its queue stayed under the limits");
        await a.shut();
      } finally {
        await s.close();
      }
    }
  },
);

nodeTest("the frames one turn sends a connection leave in one write (socket corked)", async () => {
  const s = await nodeServer({});
  try {
    const a = await TestClient.connect(s.url);
    const id = await a.clientId();
    // Count the writes the server's net.Socket hands to the kernel.
    // deno-lint-ignore no-explicit-any
    const socket = s.sockets[0] as any;
    let writes = 0;
    for (const name of ["_write", "_writev"]) {
      const original = socket[name];
      socket[name] = function (...args: unknown[]) {
        writes++;
        return original.apply(this, args);
      };
    }
    for (let i = 0; i < 100; i++) s.hub.emit("n", i, { clients: id });
    await until(() => a.messages.length === 101, 5000, "the burst");
    assert.deepEqual(
      a.messages.slice(1).map((m) => m.data),
      Array.from({ length: 100 }, (_, i) => i),
    );
    assert.equal(writes, 1, `100 frames in ${writes} writes`);
    await a.shut();
  } finally {
    await s.close();
  }
});

nodeTest(
  "frames written past ws.send arrive intact: every length class, UTF-8, binary",
  async () => {
    const conns: Connection[] = [];
    const s = await nodeServer({ onConnect: (c) => void conns.push(c) });
    try {
      const a = await TestClient.connect(s.url);
      const b = await TestClient.connect(s.url);
      await until(() => conns.length === 2, 5000, "both open");
      // Frames of 125, 126, 65535, 65536 and 70000 bytes (the header's three length forms and
      // their edges), padded with 2-, 3- and 4-byte characters, and one over the cache's
      // hashed length twice in one turn (two frames of one length).
      const frame = (bytes: number, pad: string) => {
        const room = bytes - utf8Length(`{"type":"t","data":""}`);
        const n = Math.floor(room / utf8Length(pad));
        return `{"type":"t","data":"${pad.repeat(n)}${"x".repeat(room - n * utf8Length(pad))}"}`;
      };
      const frames = [
        frame(125, "é"),
        frame(126, "€"),
        frame(65535, "😀"),
        frame(65536, "é"),
        frame(70000, "€"),
        frame(70000, "😀"),
        `{"type":"t","data":"\ud800"}`, // a lone surrogate, raw in the frame
      ];
      assert.deepEqual(
        frames.slice(0, 6).map(utf8Length),
        [125, 126, 65535, 65536, 70000, 70000],
      );
      const binary = [0, 125, 126, 65536].map((n) => Uint8Array.from({ length: n }, (_, i) => i));
      // One turn: each connection gets them all, in order, from the same shared bytes.
      for (const f of frames) for (const c of conns) c.sendRaw(f);
      for (const bytes of binary) for (const c of conns) c.sendRaw(bytes);
      for (const client of [a, b]) {
        await until(
          () => client.messages.filter((m) => m.type === "t").length === frames.length,
          10_000,
          "text frames",
        );
        await until(() => client.binary.length === binary.length, 10_000, "binary frames");
        const got = client.messages.filter((m) => m.type === "t").map((m) => m.data);
        const want = frames.map((f) => (JSON.parse(f) as { data: string }).data);
        want[6] = "\ufffd"; // a lone surrogate is sent as U+FFFD, as ws and TextEncoder do
        assert.deepEqual(got, want);
        assert.deepEqual(client.binary, binary);
      }
      await a.shut();
      await b.shut();
    } finally {
      await s.close();
    }
  },
);

nodeTest(
  "batched framing: a turn's frames arrive joined in one frame, a lone frame as it is",
  async () => {
    const { default: WebSocket } = await import("ws");
    const s = await nodeServer({ canJoin: () => true });
    const frames: string[] = [];
    const ws = new WebSocket(s.url, "hubbub.batch.v1");
    ws.on("message", (data: Uint8Array) => void frames.push(new TextDecoder().decode(data)));
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      assert.equal(ws.protocol, "hubbub.batch.v1");
      ws.send(JSON.stringify({ type: "subscribe", room: "r" }));
      await until(() => frames.some((f) => f.includes('"subscribed"')), 5000, "subscribed");
      frames.length = 0;
      const texts = ["é".repeat(100), "€", "😀".repeat(40)];
      for (const text of texts) s.hub.emit("t", text, { rooms: "r" }); // one turn: joined
      await until(() => frames.length === 1, 5000, "the batch");
      await new Promise((r) => setTimeout(r, 20));
      s.hub.emit("t", "alone", { rooms: "r" }); // a turn of its own: the shared frame
      await until(() => frames.length === 2, 5000, "the lone frame");
      const lines = frames.map((f) => f.split("\n").map((l) => JSON.parse(l).data));
      assert.deepEqual(lines, [texts, ["alone"]]);
    } finally {
      ws.terminate();
      await s.close();
    }
  },
);

/** A `ws` socket and its net.Socket, faked: what the transport writes is recorded. */
function fakeSockets(extensions = "") {
  const writes: Uint8Array[] = [];
  const sent: (string | Uint8Array)[] = [];
  const calls: string[] = [];
  const socket = {
    writableLength: 0,
    destroyed: false,
    writableNeedDrain: false,
    cork: () => void calls.push("cork"),
    uncork: () => void calls.push("uncork"),
    write: (data: Uint8Array) => {
      calls.push("write");
      writes.push(data);
    },
    end: () => {},
    destroy: () => {},
    on: () => {},
    once: () => {},
    off: () => {},
  };
  const ws = {
    readyState: 1,
    extensions,
    bufferedAmount: 0,
    send: (data: string | Uint8Array) => void sent.push(data),
    ping: () => {},
    close: () => {},
    terminate: () => {},
    on: () => {},
  };
  return { socket, ws, writes, sent, calls };
}

// ws's own framer (its Sender; not in its type definitions).
const { Sender } = wsPackage as unknown as {
  Sender: { frame(data: Uint8Array, options: Record<string, unknown>): Uint8Array[] };
};

/** The bytes `ws` itself frames `data` into (a server frame: final, unmasked). */
function wsFrame(data: string | Uint8Array): Uint8Array {
  const parts = Sender.frame(
    typeof data === "string" ? new TextEncoder().encode(data) : data,
    { fin: true, opcode: typeof data === "string" ? 1 : 2, mask: false, readOnly: true },
  );
  return concatBytes(parts);
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

nodeTest("a turn's frames leave as one write of the bytes ws would frame", () => {
  const { socket, ws, writes, calls } = fakeSockets();
  const limits = resolveLimits({ highWaterMark: 1000, lowWaterMark: 100 });
  const t = new NodeTransport(ws, socket, limits);
  const frames = ["a", "€".repeat(50), new Uint8Array([1, 2, 3])];
  const statuses: number[] = [];
  const buffered: number[] = [];
  t.cork(() => {
    for (const f of frames) {
      statuses.push(t.send(f));
      buffered.push(t.bufferedAmount());
    }
    assert.equal(writes.length, 0, "nothing is written before the turn's frames are all in");
  });
  assert.deepEqual(calls, ["write"]);
  assert.deepEqual(new Uint8Array(writes[0]), concatBytes(frames.map(wsFrame)));
  assert.deepEqual(buffered, [3, 3 + 154, 3 + 154 + 5]);
  assert.deepEqual(statuses, [1, 1, 1]);
  // Over the high-water mark (counting what the socket already holds): backpressure.
  socket.writableLength = 900;
  t.cork(() => {
    assert.equal(t.send("x".repeat(50)), 1);
    assert.equal(t.send("x".repeat(50)), -1);
  });
  // Outside a turn: written at once.
  calls.length = writes.length = 0;
  assert.equal(t.send("y"), 1);
  socket.writableLength = 1000;
  assert.equal(t.send("y"), -1);
  assert.deepEqual(calls, ["write", "write"]);
  assert.deepEqual(writes.map((w) => new Uint8Array(w)), [wsFrame("y"), wsFrame("y")]);
  return Promise.resolve();
});

nodeTest("a turn over 64 KiB is written frame by frame inside the socket's cork", () => {
  const { socket, ws, writes, calls } = fakeSockets();
  const t = new NodeTransport(ws, socket, resolveLimits({}));
  const frames = ["a".repeat(40_000), "b".repeat(40_000), "c"];
  t.cork(() => {
    for (const f of frames) t.send(f);
  });
  assert.deepEqual(calls, ["cork", "write", "write", "write", "uncork"]);
  assert.deepEqual(writes.map((w) => new Uint8Array(w)), frames.map(wsFrame));
  return Promise.resolve();
});

nodeTest("a closing socket takes no more frames; an extension keeps ws.send", () => {
  const closing = fakeSockets();
  const t = new NodeTransport(closing.ws, closing.socket, resolveLimits({}));
  closing.ws.readyState = 2; // our close frame (or the peer's) is out
  assert.equal(t.send("late"), 1);
  t.cork(() => void t.send("later"));
  assert.deepEqual(closing.writes, []);
  // Closed while its turn was being written: what the turn held stays unsent.
  const mid = fakeSockets();
  const m = new NodeTransport(mid.ws, mid.socket, resolveLimits({}));
  m.cork(() => {
    assert.equal(m.send("before the close"), 1);
    mid.ws.readyState = 2;
  });
  assert.deepEqual(mid.writes, []);
  const deflate = fakeSockets("permessage-deflate");
  const d = new NodeTransport(deflate.ws, deflate.socket, resolveLimits({}));
  d.cork(() => {
    d.send("one");
    d.send("two");
  });
  assert.deepEqual(deflate.sent, ["one", "two"], "ws compresses them");
  assert.deepEqual(deflate.calls, ["cork", "uncork"], "inside the socket's cork");
  assert.deepEqual(deflate.writes, []);
  return Promise.resolve();
});

test(
  "hono on node: the 101 names the hub's subprotocol, not the client's first offer",
  async () => {
    const s = await servers!.startHonoNode({ onError: () => {} });
    try {
      const answer = await rawUpgrade(s.url, { "sec-websocket-protocol": "chat, hubbub.batch.v1" });
      assert.equal(answer.status, 101);
      assert.equal(answer.headers["sec-websocket-protocol"], "hubbub.batch.v1");
      answer.socket.destroy();
      await answer.closed;
      const none = await rawUpgrade(s.url, { "sec-websocket-protocol": "chat" });
      assert.equal(none.status, 101);
      assert.equal(none.headers["sec-websocket-protocol"], undefined);
      none.socket.destroy();
      await none.closed;
      await until(() => s.hub.connectionCount === 0, 5000, "closes");
    } finally {
      await s.close();
    }
  },
  { if: isNode, timeout: 20_000 },
);
