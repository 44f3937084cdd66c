// Issue 11 (and the loud-mistake items of issue 18) in the core: origins, backplane envelopes,
// signed envelopes, the fan-out budget, pending bytes, bounded shutdown, refusal events.
// In-memory transport and bus; runs on Deno and Bun.
import assert from "node:assert/strict";
import {
  type BackplaneEnvelope,
  ErrorCode,
  Hub,
  type HubEvent,
  MemoryBus,
  MemoryHistoryStore,
} from "../../mod.ts";
import { connectMemory, ManualClock, type UpgradeRefusedError } from "../../src/testing/mod.ts";
import { Hmac } from "../../src/core/_hmac.ts";
import { createHmac } from "node:crypto";
import { test, until } from "../_harness.ts";

const statusOf = (p: Promise<unknown>) =>
  p.then(() => 101, (e) => (e as UpgradeRefusedError).status);

function originStatus(hub: Hub, origin: string, url = "http://localhost:8000/ws") {
  return statusOf(connectMemory(hub, { url, headers: { origin } }));
}

test("An allowlist entry of a non-http(s) scheme matches only that exact origin", async () => {
  const hub = new Hub({ origins: ["chrome-extension://myid"] });
  assert.equal(await originStatus(hub, "chrome-extension://myid"), 101);
  assert.equal(await originStatus(hub, "chrome-extension://attacker"), 403);
  assert.equal(await originStatus(hub, "moz-extension://myid"), 403);
  assert.equal(await originStatus(hub, "null"), 403);
  await hub.close();
});

test("Origins compare scheme, host and port with default ports made explicit", async () => {
  const hub = new Hub({
    origins: ["https://app.example.com:443", "https://*.example.org:443", "*.example.net"],
  });
  assert.equal(await originStatus(hub, "https://app.example.com"), 101);
  assert.equal(await originStatus(hub, "https://app.example.com:8443"), 403);
  assert.equal(await originStatus(hub, "http://app.example.com"), 403);
  assert.equal(await originStatus(hub, "https://a.example.org"), 101);
  assert.equal(await originStatus(hub, "https://example.org"), 403);
  assert.equal(await originStatus(hub, "https://a.example.net"), 101);
  assert.equal(await originStatus(hub, "http://a.example.net"), 101);
  assert.equal(await originStatus(hub, "https://a.example.net:444"), 403);
  assert.equal(await originStatus(hub, "chrome-extension://x.example.net"), 403);
  assert.equal(await originStatus(hub, "https://evil-example.net"), 403);
  // Same-origin: the request's own scheme, host and port (ws counts as http).
  assert.equal(await originStatus(hub, "http://localhost:8000"), 101);
  assert.equal(await originStatus(hub, "http://localhost:8001"), 403);
  assert.equal(await originStatus(hub, "http://localhost", "http://localhost:80/ws"), 101);
  await hub.close();
});

test("Hub refuses allowlist entries that are not origins with a TypeError that says why", () => {
  for (const entry of ["localhost:3000", "https://a.com/path", "app.example.com", "https://"]) {
    assert.throws(
      () => new Hub({ origins: [entry] }),
      (e: unknown) => e instanceof TypeError && e.message.includes(entry),
      entry,
    );
  }
});

test("An origin refusal is observable as a refused event", async () => {
  const hub = new Hub({ origins: [] });
  const events: HubEvent[] = [];
  hub.observe((e) => void events.push(e));
  assert.equal(await originStatus(hub, "https://evil.example"), 403);
  const refused = events.find((e) => e.kind === "refused");
  assert.ok(refused !== undefined && refused.kind === "refused");
  assert.equal(refused.cause, "origin");
  assert.equal(refused.status, 403);
  assert.equal(refused.origin, "https://evil.example");
  await hub.close();
});

/** Two hubs on one bus, a member of room "r" on `b`, and a raw publisher on the bus. */
async function busPair(secret?: string) {
  const bus = new MemoryBus();
  const errors: unknown[] = [];
  const opts = { canJoin: () => true, onError: (e: unknown) => void errors.push(e) };
  const a = new Hub({ ...opts, backplane: bus.connect(), backplaneSecret: secret });
  const b = new Hub({ ...opts, backplane: bus.connect(), backplaneSecret: secret });
  await Promise.all([a.ready, b.ready]);
  const member = await connectMemory(b);
  member.send({ type: "subscribe", room: "r" });
  await member.next("subscribed");
  const raw = bus.connect();
  await raw.start(() => {}, () => {});
  const close = async () => {
    await raw.close();
    await Promise.all([a.close(), b.close()]);
  };
  return { a, b, member, raw, errors, close };
}

function envelope(f: string, extra: Partial<BackplaneEnvelope> = {}): string {
  return JSON.stringify({ v: 1, o: "x", i: crypto.randomUUID(), t: { r: ["r"] }, f, ...extra });
}

test("A malformed backplane envelope costs exactly itself: later messages are delivered", async () => {
  const { b, member, raw, errors, close } = await busPair();
  const bad = [
    envelope("!!!not base64!!!", { b: 1 }),
    envelope("x", { t: { a: 2 } } as never),
    envelope("x", { o: "o".repeat(500) }),
    JSON.stringify({ v: 1, o: "x", i: "y", t: [], f: "x" }),
    "{not json",
  ];
  for (const payload of bad) await raw.publish("hubbub:room:r", payload);
  for (let i = 0; i < 10; i++) {
    await raw.publish("hubbub:room:r", envelope(JSON.stringify({ type: "n", data: i })));
  }
  await until(() => member.messages.filter((m) => m.type === "n").length === 10);
  assert.deepEqual(member.messages.filter((m) => m.type === "n").map((m) => m.data), [
    ...Array(10).keys(),
  ]);
  assert.equal(b.backplaneStats().malformed, bad.length);
  assert.deepEqual(errors, [], "nothing thrown out of the receive path");
  await close();
});

test("With backplaneSecret, signed envelopes cross and unsigned or badly signed ones are dropped", async () => {
  const secret = "a-shared-secret-of-32-characters";
  const { a, b, member, raw, close } = await busPair(secret);
  a.emit("hello", 1, { rooms: "r" });
  await member.next("hello");
  const json = envelope(JSON.stringify({ type: "forged", data: 0 }));
  await raw.publish("hubbub:room:r", json); // unsigned
  await raw.publish(
    "hubbub:room:r",
    new Hmac("another-secret-32-characters-xx").signText(json) + "." + json,
  );
  await raw.publish(
    "hubbub:room:r",
    new Hmac(secret).signText(json) + "." + json.replace("0", "1"),
  );
  const good = envelope(JSON.stringify({ type: "signed", data: 2 }));
  await raw.publish("hubbub:room:r", new Hmac(secret).signText(good) + "." + good);
  await member.next("signed");
  assert.equal(member.messages.filter((m) => m.type === "forged").length, 0);
  assert.equal(b.backplaneStats().malformed, 3);
  await close();
  assert.throws(() => new Hub({ backplaneSecret: "short" }), TypeError);
});

test("With backplaneSecret, a signed history entry's unsigned tail carries only its offset and epoch: a frame, target or anything else appended to it is dropped", async () => {
  const secret = "a-shared-secret-of-32-characters";
  const bus = new MemoryBus();
  const historyStore = new MemoryHistoryStore({ bus });
  const opts = {
    canJoin: () => true,
    history: () => ({}),
    historyStore,
    backplaneSecret: secret,
  };
  const a = new Hub({ ...opts, backplane: bus.connect() });
  const b = new Hub({ ...opts, backplane: bus.connect() });
  await Promise.all([a.ready, b.ready]);
  const member = await connectMemory(b);
  member.send({ type: "subscribe", room: "r" });
  await member.next("subscribed");
  const tap = bus.connect();
  const seen: string[] = [];
  await tap.start((_c, p) => void seen.push(p), () => {});
  await tap.subscribe("hubbub:room:r");
  a.emit("real", 1, { rooms: "r" });
  await member.next("real");
  await until(() => seen.length === 1);
  // A signed entry's MAC ends at its offset: the store appends offset and epoch after it.
  const signed = seen[0];
  const cut = signed.lastIndexOf(',"n":') + 5;
  const epoch = JSON.stringify(JSON.parse(signed.slice(44)).e);
  const head = JSON.stringify({ type: "forged", data: 0, timestamp: 1, room: "r" }).slice(0, -1) +
    ',"offset":';
  const forgeries = [
    // A later key wins in JSON.parse: a fresh id passes de-duplication, a new "f" is the frame.
    `2,"e":${epoch},"i":"fresh","f":${JSON.stringify(head)}}`,
    `3,"e":${epoch},"f":${JSON.stringify(head)}}`,
    `2,"e":${epoch},"t":{"r":["r"],"x":["someone"]}}`,
    `2,"e":${epoch},"b":1}`,
    `2,"e":${epoch},"k":{"op":"leave","room":"r"}}`,
    `2,"e":${epoch}} `,
    `2, "e":${epoch}}`,
    `02,"e":${epoch}}`,
  ].map((tail) => signed.slice(0, cut) + tail);
  for (const f of forgeries) await tap.publish("hubbub:room:r", f);
  a.emit("after", 2, { rooms: "r" });
  // A forged entry taking offset 2 would push the real one out as already handed out.
  await until(() => member.messages.some((m) => m.type === "after" || m.type === "forged"));
  assert.equal(member.messages.filter((m) => m.type === "forged").length, 0, "a forgery got in");
  await until(() => member.messages.some((m) => m.type === "after"));
  assert.equal(b.backplaneStats().malformed, forgeries.length);
  assert.equal(b.rooms().get("r"), 1, "no command was carried out");
  await tap.close();
  await Promise.all([a.close(), b.close()]);
});

test("Hmac matches the RFC 4231 test vectors", () => {
  const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  const key = new Uint8Array(20).fill(0x0b);
  assert.equal(
    hex(new Hmac(key).sign("Hi There")),
    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
  );
  assert.equal(
    hex(new Hmac("Jefe").sign("what do ya want for nothing?")),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
  const big = new Uint8Array(131).fill(0xaa); // a key longer than the block is hashed first
  assert.equal(
    hex(new Hmac(big).sign("Test Using Larger Than Block-Size Key - Hash Key First")),
    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
  );
});

test("Hmac.signText agrees with node:crypto on every length around the block and padding edges, UTF-8 and lone surrogates included", () => {
  const keys = [
    "a-shared-secret-of-32-characters",
    "k".repeat(64),
    "long key ".repeat(20),
    "ключ🔑",
  ];
  const pieces = ["a", "é", "€", "😀", "\ud800", "\udc00x", '"', "\n"];
  let checked = 0;
  for (const key of keys) {
    const mine = new Hmac(key);
    for (let n = 0; n <= 300; n++) {
      let s = "";
      for (let i = 0; s.length < n; i++) s += n % 3 === 0 ? "x" : pieces[(n + i) % pieces.length];
      // Node encodes a lone surrogate as U+FFFD, as TextEncoder does.
      const want = createHmac("sha256", key).update(s, "utf8").digest("base64url");
      assert.equal(mine.signText(s), want, `key ${key.length}, message ${JSON.stringify(s)}`);
      assert.ok(mine.verifyText(s, want));
      checked++;
    }
    const bytes = new Uint8Array(200).map((_, i) => (i * 37) & 255);
    assert.deepEqual(
      [...mine.sign(bytes)],
      [...createHmac("sha256", key).update(bytes).digest()],
    );
  }
  assert.equal(checked, keys.length * 301);
  const big = "x".repeat(5000); // longer than the signer's first scratch buffer
  assert.equal(
    new Hmac(keys[0]).signText(big),
    createHmac("sha256", keys[0]).update(big).digest("base64url"),
  );
});

test("A sender is charged the deliveries its messages fan out to, and refused past its budget", async () => {
  const clock = new ManualClock();
  const hub = new Hub({
    clock,
    canJoin: () => true,
    rateLimit: { deliveriesPerSecond: 100, deliveryBurst: 100 },
    onMessage: (conn, m) => void hub.emit("chat", m.text, { rooms: "r", except: conn }),
  });
  const members = await Promise.all(Array.from({ length: 21 }, () => connectMemory(hub)));
  for (const m of members) {
    m.send({ type: "subscribe", room: "r" });
    await m.next("subscribed");
  }
  const [sender, quiet] = members;
  for (let i = 0; i < 8; i++) sender.send({ type: "say", text: i });
  // Each message costs 20 deliveries: 5 spend the burst of 100, the 6th is refused.
  assert.equal(quiet.messages.filter((m) => m.type === "chat").length, 5);
  const err = sender.messages.find((m) => m.type === "error");
  assert.equal((err?.data as { code: string }).code, ErrorCode.RATE_LIMITED);
  // Another member is not charged for the sender's fan-out.
  quiet.send({ type: "say", text: "q" });
  assert.equal(sender.messages.filter((m) => m.type === "chat").length, 1);
  clock.advance(1000); // refills 100 deliveries
  sender.send({ type: "say", text: "later" });
  assert.equal(quiet.messages.filter((m) => m.type === "chat").at(-1)?.data, "later");
  await hub.close();
});

test("Frames held behind a slow handler are bounded in bytes as well as count", async () => {
  const release = Promise.withResolvers<void>();
  const seen: number[] = [];
  const hub = new Hub({
    maxPendingBytes: 4096,
    rateLimit: false,
    onMessage: async (_c, m) => {
      seen.push(m.n as number);
      if (m.n === 0) await release.promise;
    },
  });
  const c = await connectMemory(hub);
  await c.next();
  const pad = "x".repeat(1000);
  for (let n = 0; n < 10; n++) c.send({ type: "m", n, pad });
  const err = await c.next("error");
  assert.equal((err.data as { code: string }).code, ErrorCode.RATE_LIMITED);
  release.resolve();
  await until(() => seen.length >= 4);
  await hub.close();
  // The first frame runs; three more (about 1 KB each) fit in 4 KiB; the rest were dropped.
  assert.deepEqual(seen, [0, 1, 2, 3]);
});

test("hub.close() resolves within timeoutMs when a handler never settles, and says so", async () => {
  const errors: unknown[] = [];
  const hub = new Hub({
    onMessage: () => new Promise<void>(() => {}),
    onError: (e) => void errors.push(e),
  });
  const c = await connectMemory(hub);
  await c.next();
  c.send({ type: "stuck" });
  const t0 = performance.now();
  await hub.close({ timeoutMs: 100 });
  const took = performance.now() - t0;
  assert.ok(took >= 90 && took < 2000, `took ${took} ms`);
  assert.ok(errors.some((e) => String(e).includes("still pending")), String(errors));
});

test("An accepted upgrade whose socket never opens releases its slot at openTimeoutMs", async () => {
  const clock = new ManualClock();
  const hub = new Hub({ clock, maxConnections: 2, openTimeoutMs: 1000 });
  const req = () => new Request("http://localhost/ws", { headers: { upgrade: "websocket" } });
  const first = await hub.upgrade(req());
  const second = await hub.upgrade(req());
  assert.ok(first.ok && second.ok);
  assert.equal((await hub.upgrade(req())).ok, false, "two slots held");
  clock.advance(1000);
  assert.equal((await hub.upgrade(req())).ok, true, "released after the deadline");
  await hub.close();
});

test("A hub without canJoin warns once, naming the option, when it refuses a subscribe", async () => {
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => void warned.push(args.join(" "));
  try {
    const hub = new Hub();
    const c = await connectMemory(hub);
    await c.next();
    c.send({ type: "subscribe", room: "a" });
    c.send({ type: "subscribe", room: "b" });
    await c.next("error");
    await c.next("error");
    await hub.close();
  } finally {
    console.warn = warn;
  }
  assert.equal(warned.length, 1);
  assert.match(warned[0], /canJoin/);
});

test("The inspector caps its event streams and does not queue snapshots for a stalled reader", async () => {
  const { createInspector } = await import("../../src/inspector/mod.ts");
  const hub = new Hub();
  const inspector = createInspector(hub, { authorize: () => true, intervalMs: 5, maxStreams: 2 });
  const events = () => inspector.fetch(new Request("http://localhost/inspect/events"));
  const a = (await events())!;
  const b = (await events())!;
  assert.equal((await events())!.status, 503, "a third stream is refused");
  // Nobody reads `a` for 40 intervals: it must not have 40 snapshots waiting.
  await new Promise((r) => setTimeout(r, 200));
  const reader = a.body!.getReader();
  let queued = 0;
  while (true) {
    const next = await Promise.race([
      reader.read().then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 2)),
    ]);
    if (!next || ++queued > 20) break;
  }
  assert.ok(queued <= 3, `${queued} snapshots were queued for a reader that read nothing`);
  await reader.cancel();
  await b.body!.cancel();
  inspector.close();
  await hub.close();
});
