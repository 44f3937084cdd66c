import assert from "node:assert/strict";
import { Hub } from "../../mod.ts";
import { connectMemory } from "../../src/testing/mod.ts";
import {
  createInspector,
  inspectorRoute,
  type InspectorSnapshot,
} from "../../src/inspector/mod.ts";
import { SCRIPT, STYLE } from "../../src/inspector/_page.ts";
import { isDeno, test } from "../_harness.ts";

const allow = () => true;

function chatHub(): Hub {
  const hub = new Hub({
    identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? undefined }),
    canJoin: () => true,
    onMessage: (_conn, msg) => {
      if (msg.type === "say") hub.emit("said", msg, { rooms: "lobby" });
    },
    highWaterMark: 10,
    lowWaterMark: 5,
  });
  return hub;
}

async function json(res: Response | undefined): Promise<InspectorSnapshot> {
  assert.ok(res);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  return await res.json();
}

async function sha256(text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return btoa(String.fromCharCode(...d));
}

test("The inspector answers 403 on every path when authorize refuses, and ignores other paths", async () => {
  const hub = new Hub();
  const asked: string[] = [];
  const inspector = createInspector(hub, {
    authorize: async (req) => {
      asked.push(new URL(req.url).pathname);
      return await Promise.resolve(req.headers.get("x-admin") === "yes");
    },
  });
  for (const p of ["/inspect", "/inspect/", "/inspect/data", "/inspect/events", "/inspect/x"]) {
    const res = await inspector.fetch(new Request(`http://x${p}`));
    assert.equal(res?.status, 403, p);
    assert.equal(await res?.text(), "Forbidden");
  }
  assert.equal(await inspector.fetch(new Request("http://x/ws")), undefined);
  assert.equal(await inspector.fetch(new Request("http://x/inspector")), undefined);
  assert.equal(asked.length, 5, "authorize runs only for the inspector's paths");
  const ok = await inspector.fetch(
    new Request("http://x/inspect/nope", { headers: { "x-admin": "yes" } }),
  );
  assert.equal(ok?.status, 404);
  await ok?.body?.cancel();
  const post = await inspector.fetch(
    new Request("http://x/inspect/data", { method: "POST", headers: { "x-admin": "yes" } }),
  );
  assert.equal(post?.status, 405);
  await post?.body?.cancel();
  inspector.close();
  await hub.close();
});

test("The inspector serves a self-contained page whose CSP allows exactly its inline script and style", async () => {
  const hub = new Hub({ endpoint: { description: "Chat <demo>" } });
  const inspector = createInspector(hub, { authorize: allow, path: "/admin/hub" });
  const res = await inspector.fetch(new Request("http://x/admin/hub"));
  assert.equal(res?.status, 200);
  assert.equal(res?.headers.get("content-type"), "text/html; charset=utf-8");
  const csp = res!.headers.get("content-security-policy")!;
  assert.match(csp, /default-src 'none'/);
  assert.ok(csp.includes(`'sha256-${await sha256(SCRIPT)}'`), csp);
  assert.ok(csp.includes(`'sha256-${await sha256(STYLE)}'`), csp);
  const html = await res!.text();
  assert.ok(html.includes(`<script>${SCRIPT}</script>`));
  assert.ok(html.includes(`<style>${STYLE}</style>`));
  assert.ok(html.includes('data-base="/admin/hub"'));
  assert.ok(html.includes("Chat &lt;demo&gt;"), "the title is escaped");
  assert.doesNotMatch(html, /https?:\/\//, "no CDN, no external URL");
  const head = await inspector.fetch(new Request("http://x/admin/hub/", { method: "HEAD" }));
  assert.equal(head?.status, 200);
  assert.equal(head?.body, null);
  inspector.close();
  await hub.close();
});

test("The inspector page draws its charts as inline SVG, with no style attribute its CSP would block", async () => {
  const hub = new Hub();
  const inspector = createInspector(hub, { authorize: allow });
  const html = await (await inspector.fetch(new Request("http://x/inspect")))!.text();
  for (
    const [id, keys] of [
      ["chart-connections", ["connections"]],
      ["chart-messages", ["in", "out"]],
      ["chart-queued", ["queued"]],
    ] as const
  ) {
    const svg = html.match(new RegExp(`<svg id="${id}"[^>]*>(.*?)</svg>`))?.[1];
    assert.ok(svg !== undefined, `${id} is on the page`);
    for (const key of keys) assert.ok(svg.includes(`<polyline class="line ${key}"/>`), svg);
  }
  // The CSP allows the one hashed <style> element: a style attribute would be refused.
  assert.doesNotMatch(html, /\sstyle=/);
  assert.doesNotMatch(SCRIPT, /setAttribute\("style"|\.innerHTML|\.style\b/);
  inspector.close();
  await hub.close();
});

test("The inspector's data reflects scripted traffic exactly, and never payloads", async () => {
  const hub = chatHub();
  const inspector = createInspector(hub, { authorize: allow, recentFrames: 4 });
  const ada = await connectMemory(hub, { url: "http://x/ws?user=ada" });
  const bob = await connectMemory(hub, { url: "http://x/ws?user=bob" });
  const anon = await connectMemory(hub);
  const id = async (c: typeof ada) => ((await c.next()).data as { clientId: string }).clientId;
  const adaId = await id(ada);
  const bobId = await id(bob);
  const anonId = await id(anon);
  ada.send({ type: "subscribe", room: "lobby" });
  bob.send({ type: "subscribe", room: "lobby" });
  bob.send({ type: "subscribe", room: "side" });
  ada.send({ type: "say", text: "top secret words" });
  await bob.next("said");
  anon.send({ type: "ping" });
  await anon.next("pong");
  anon.close();
  const plain = await hub.upgrade(new Request("http://x/ws"));
  if (!plain.ok) await plain.response.body?.cancel();

  const res = await inspector.fetch(new Request("http://x/inspect/data"));
  const body = await res!.clone().text();
  const s = await json(res);
  assert.doesNotMatch(body, /top secret/);
  assert.equal(s.connections, 2);
  assert.equal(s.users, 2);
  assert.equal(s.rooms, 2);
  assert.deepEqual(s.topRooms, [{ room: "lobby", members: 2 }, { room: "side", members: 1 }]);
  assert.equal(s.connectionsOpened, 3);
  assert.equal(s.connectionsClosed, 1);
  assert.deepEqual(s.in, hub.stats().in);
  assert.equal(s.in.messages, 5);
  assert.deepEqual(s.out, hub.stats().out);
  assert.equal(s.emits, 1);
  assert.deepEqual(s.closes, { client: 1 });
  assert.deepEqual(s.refused, { not_websocket: 1 });
  assert.equal(s.rateLimited, 0);
  assert.equal(s.backplane.ok, true);
  assert.equal(s.framesSeen, 5);
  assert.deepEqual(
    s.recentFrames.map((f) => [f.type, f.clientId, f.userId, f.bytes]),
    [
      ["ping", anonId, undefined, '{"type":"ping"}'.length],
      ["say", adaId, "ada", JSON.stringify({ type: "say", text: "top secret words" }).length],
      ["subscribe", bobId, "bob", '{"type":"subscribe","room":"side"}'.length],
      ["subscribe", bobId, "bob", '{"type":"subscribe","room":"lobby"}'.length],
    ],
    "the last 4, newest first",
  );
  assert.deepEqual(s.rates, { inPerSec: 0, outPerSec: 0, inBytesPerSec: 0, outBytesPerSec: 0 });
  assert.deepEqual(s.slowClients, []);

  // A slow client shows up with its queued bytes.
  bob.pause();
  hub.emit("flood", "x".repeat(40), { users: "bob" }); // into the socket buffer
  hub.emit("flood", "x".repeat(40), { users: "bob" }); // into the send queue
  const slow = inspector.snapshot();
  assert.equal(slow.slowClients.length, 1);
  assert.equal(slow.slowClients[0].clientId, bobId);
  assert.equal(slow.slowClients[0].userId, "bob");
  assert.equal(slow.slowClients[0].queuedBytes, slow.queuedBytes.max);
  assert.ok(slow.queuedBytes.max > 0);
  bob.resume();
  inspector.close();
  ada.send({ type: "ping" });
  assert.equal(inspector.snapshot().framesSeen, 5, "closed: no longer observing");
  await hub.close();
});

test("The inspector computes rates from stats deltas between snapshots", async () => {
  const hub = chatHub();
  const inspector = createInspector(hub, { authorize: allow, intervalMs: 20 });
  const c = await connectMemory(hub);
  await c.next();
  inspector.snapshot();
  for (let i = 0; i < 10; i++) c.send({ type: "ping" });
  await new Promise((r) => setTimeout(r, 30));
  const s = inspector.snapshot();
  assert.ok(s.rates.inPerSec > 0 && s.rates.inPerSec <= 10 / 0.03 + 1, String(s.rates.inPerSec));
  assert.ok(s.rates.outPerSec > 0);
  assert.ok(s.rates.inBytesPerSec > 0);
  inspector.close();
  await hub.close();
});

async function readEvent(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  buffer: { text: string },
): Promise<InspectorSnapshot | undefined> {
  const decoder = new TextDecoder();
  while (true) {
    const end = buffer.text.indexOf("\n\n");
    if (end >= 0) {
      const block = buffer.text.slice(0, end);
      buffer.text = buffer.text.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: "));
      if (data.length > 0) return JSON.parse(data.map((l) => l.slice(6)).join("\n"));
      continue;
    }
    const { value, done } = await reader.read();
    if (done) return undefined;
    buffer.text += decoder.decode(value, { stream: true });
  }
}

test("The inspector's event stream sends a snapshot at once, then one per interval, and ends on close()", async () => {
  const hub = chatHub();
  const inspector = createInspector(hub, { authorize: allow, intervalMs: 10 });
  const res = await inspector.fetch(new Request("http://x/inspect/events"));
  assert.equal(res?.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = res!.body!.getReader();
  const buffer = { text: "" };
  const first = await readEvent(reader, buffer);
  assert.equal(first?.connections, 0);
  const c = await connectMemory(hub, { url: "http://x/ws?user=ada" });
  await c.next();
  c.send({ type: "ping" });
  let next = await readEvent(reader, buffer);
  while (next !== undefined && next.in.messages < 1) next = await readEvent(reader, buffer);
  assert.equal(next?.connections, 1);
  assert.equal(next?.users, 1);
  assert.equal(next?.recentFrames[0].type, "ping");
  inspector.close();
  while (await readEvent(reader, buffer) !== undefined) { /* drain */ }
  assert.equal(await readEvent(reader, buffer), undefined, "the stream ended");
  await hub.close();
});

test("The inspector's event stream ends once the hub closes, and a cancelled stream stops its timer", async () => {
  const hub = chatHub();
  const inspector = createInspector(hub, { authorize: allow, intervalMs: 5 });
  const a = await inspector.fetch(new Request("http://x/inspect/events"));
  const b = await inspector.fetch(new Request("http://x/inspect/events"));
  await b!.body!.cancel();
  const reader = a!.body!.getReader();
  const buffer = { text: "" };
  assert.ok(await readEvent(reader, buffer));
  await hub.close();
  while (await readEvent(reader, buffer) !== undefined) { /* drain */ }
  const late = await inspector.fetch(new Request("http://x/inspect/events"));
  assert.equal((await late!.text()).length, 0, "a stream opened after the hub closed ends at once");
  inspector.close();
});

test("createInspector() validates its options", () => {
  const hub = new Hub();
  assert.throws(() => createInspector(hub, {} as never), TypeError);
  for (const path of ["inspect", "/", "/inspect/", '/in"spect', "/a b"]) {
    assert.throws(() => createInspector(hub, { authorize: allow, path }), TypeError, path);
  }
  assert.throws(() => createInspector(hub, { authorize: allow, recentFrames: -1 }), RangeError);
  assert.throws(() => createInspector(hub, { authorize: allow, intervalMs: 0 }), RangeError);
  using inspector = createInspector(hub, { authorize: allow, recentFrames: 0, topRooms: 0 });
  assert.deepEqual(inspector.snapshot().recentFrames, []);
  assert.deepEqual(inspector.snapshot().topRooms, []);
  return hub.close();
});

test("inspectorRoute() mounts the inspector in a Hono app and passes other paths on", async () => {
  const { Hono } = await import("hono");
  const hub = chatHub();
  const inspector = createInspector(hub, { authorize: (req) => req.headers.has("x-admin") });
  const app = new Hono();
  app.use("/inspect/*", inspectorRoute(inspector));
  app.get("/inspect/other", (c) => c.text("app route"));
  app.get("/", (c) => c.text("home"));
  const admin = { headers: { "x-admin": "1" } };
  const page = await app.request("/inspect", admin);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /hubbub inspector/);
  const data = await app.request("/inspect/data", admin);
  assert.equal((await data.json()).connections, 0);
  assert.equal((await app.request("/inspect/data")).status, 403);
  assert.equal(await (await app.request("/")).text(), "home");
  inspector.close();
  await hub.close();
});

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

test("Over a real server, the event stream ends when the hub closes, so shutdown is not held up", async () => {
  const hub = chatHub();
  const inspector = createInspector(hub, { authorize: allow, intervalMs: 10 });
  const handler = async (req: Request) =>
    (await inspector.fetch(req)) ?? new Response("not found", { status: 404 });
  let port: number;
  let stop: () => Promise<void>;
  if (isDeno) {
    const server = g.Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
    port = server.addr.port;
    stop = () => server.shutdown();
  } else {
    const server = g.Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handler });
    port = server.port;
    stop = async () => void (await server.stop(true));
  }
  const res = await fetch(`http://127.0.0.1:${port}/inspect/events`);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const buffer = { text: "" };
  assert.equal((await readEvent(reader, buffer))?.connections, 0);
  await hub.close();
  while (await readEvent(reader, buffer) !== undefined) { /* drain */ }
  await stop();
  inspector.close();
});
