// The inspector page in a real browser (Debian's headless Chromium driven by
// playwright-core), on Bun: real clients chat over real sockets and the page's
// numbers and its charts follow. Screenshot: test-output/inspector.png (docs/inspector.png for
// the README: written when missing, refreshed with HUBBUB_UPDATE_DOCS=1).
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Hub } from "../../mod.ts";
import { createBunHandler } from "../../src/adapters/bun.ts";
import { createInspector } from "../../src/inspector/mod.ts";
import { TestClient } from "../_ws_client.ts";
import { isBun, test } from "../_harness.ts";
import { hasChromium, launchChromium, warnIfMissing } from "../_chromium.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
// The page's DOM, for the functions playwright runs in the browser.
declare const document: {
  getElementById(id: string): { textContent: string | null } | null;
  querySelector(selector: string): { getAttribute(name: string): string | null } | null;
};
const env = g.process?.env ?? {};
const root = new URL("../../", import.meta.url).pathname;

warnIfMissing("the inspector browser test");

function startServer() {
  const hub = new Hub({
    endpoint: { description: "Chat demo", tags: ["chat"] },
    identify: (req) => {
      const user = new URL(req.url).searchParams.get("user");
      return user ? { userId: user } : null;
    },
    canJoin: () => true,
    onMessage: (conn, msg) => {
      if (msg.type === "say" && typeof msg.room === "string" && conn.rooms.has(msg.room)) {
        hub.emit("said", { from: conn.userId, text: msg.text }, { rooms: msg.room });
      }
    },
    onError: () => {},
  });
  const inspector = createInspector(hub, {
    authorize: (req) => new URL(req.url).hostname === "127.0.0.1",
    intervalMs: 200,
    recentFrames: 12,
  });
  const ws = createBunHandler(hub);
  const server = g.Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req: Request, srv: unknown) {
      const res = await inspector.fetch(req);
      if (res !== undefined) return res;
      if (new URL(req.url).pathname === "/ws") return ws.upgrade(req, srv as never);
      return new Response("not found", { status: 404 });
    },
    websocket: ws.websocket,
  });
  const port: number = server.port;
  return {
    hub,
    port,
    url: (user: string) => `ws://127.0.0.1:${port}/ws?user=${user}`,
    close: async () => {
      inspector.close();
      await hub.close();
      await server.stop(true);
    },
  };
}

test(
  "The inspector page in Chromium follows real clients: connections, users, rooms, frames",
  async () => {
    const server = startServer();
    const { context, dispose } = await launchChromium({ width: 1180, height: 900 });
    const clients: TestClient[] = [];
    const pageErrors: string[] = [];
    let chatter: ReturnType<typeof setInterval> | undefined;
    try {
      const page = await context.newPage();
      page.on("pageerror", (e) => pageErrors.push(e.message));
      page.on("console", (m) => {
        if (m.type() === "error") pageErrors.push(m.text());
      });
      await page.goto(`http://127.0.0.1:${server.port}/inspect`);
      await page.waitForSelector("body[data-state='live']", { timeout: 10_000 });
      const text = (id: string, value: string) =>
        page.waitForFunction(
          ([i, v]) => document.getElementById(i)?.textContent === v,
          [id, value] as const,
          { timeout: 10_000 },
        );
      await text("connections", "0");

      for (const user of ["ada", "bob", "cy", "dee"]) {
        const c = await TestClient.connect(server.url(user));
        await c.clientId();
        clients.push(c);
      }
      await text("connections", "4");
      await text("users", "4");

      const [ada, bob, cy, dee] = clients;
      for (const c of clients) await c.request({ type: "subscribe", room: "lobby" }, "subscribed");
      for (const c of [ada, bob]) await c.request({ type: "subscribe", room: "dev" }, "subscribed");
      await cy.request({ type: "subscribe", room: "random" }, "subscribed");
      await text("rooms", "3");

      for (let i = 0; i < 5; i++) {
        ada.send({ type: "say", room: "lobby", text: `hello ${i}` });
        await dee.next("said");
      }
      bob.send({ type: "say", room: "dev", text: "ship it" });
      await ada.next("said");
      // 7 subscribes + 6 says.
      await text("in-total", "13");
      // Deliveries: 7 subscribed + 4 established + 5 × 4 lobby + 2 dev.
      await text("out-total", String(7 + 4 + 5 * 4 + 2));
      await text("emits", "6");
      const refused = await TestClient.status(`ws://127.0.0.1:${server.port}/ws`);
      assert.equal(refused, 401);
      await page.waitForFunction(
        () => document.getElementById("refused")?.textContent?.includes("identify"),
        undefined,
        { timeout: 10_000 },
      );

      const rooms = await page.locator("#top-rooms tr").allTextContents();
      assert.deepEqual(rooms, ["lobby4", "dev2", "random1"]);
      const frames = await page.locator("#frames tr td:nth-child(2)").allTextContents();
      assert.equal(frames[0], "say");
      assert.equal(frames.length, 12, "the last 12 frames");
      const firstRow = await page.locator("#frames tr").first().textContent();
      assert.ok(firstRow?.includes("bob"), firstRow ?? "");
      const html = await page.content();
      assert.doesNotMatch(html, /ship it|hello \d/, "no payloads on the page");

      await dee.shut();
      await text("connections", "3");
      await page.waitForFunction(
        () => document.getElementById("closes")?.textContent?.includes("client"),
        undefined,
        { timeout: 10_000 },
      );
      assert.deepEqual(pageErrors, []);

      // The charts, from the page's own ring buffer of snapshots. Connections went 0 → 4 → 3:
      // the axis tops out at 5, the first point is on the baseline (y 59 of 60), the highest at
      // 4/5 of the height, the newest at 3/5.
      const line = async (selector: string) => {
        const points = await page.locator(selector).getAttribute("points");
        return (points ?? "").split(" ").filter(Boolean).map((xy) => xy.split(",").map(Number));
      };
      const conns = await line("#chart-connections .line.connections");
      assert.ok(conns.length >= 3, `${conns.length} points`);
      assert.equal(
        Number(await page.locator("#chart-connections").getAttribute("data-points")),
        conns.length,
      );
      assert.equal(await page.textContent("#chart-connections-max"), "5");
      const ys = conns.map(([, y]) => y);
      assert.equal(ys[0], 59, "0 connections on the baseline");
      assert.ok(Math.abs(Math.min(...ys) - (59 - 4 / 5 * 58)) < 0.11, `${ys}`);
      assert.ok(Math.abs(ys.at(-1)! - (59 - 3 / 5 * 58)) < 0.11, `${ys}`);
      const xs = conns.map(([x]) => x);
      assert.equal(xs[0], 0);
      assert.equal(xs.at(-1), 300, "the newest point at the right edge");
      assert.ok(xs.every((x, i) => i === 0 || x >= xs[i - 1]), `x in time order: ${xs}`);
      assert.equal((await line("#chart-queued .line.queued")).length, conns.length);

      // Chatter until the page shows a rate and its messages chart leaves the baseline (cy is
      // alone in "random": as many out as in); a burst in the middle, for the screenshot.
      let n = 0;
      chatter = setInterval(() => cy.send({ type: "say", room: "random", text: `${n++}` }), 10);
      await page.waitForFunction(
        () => {
          const rate = document.getElementById("in-rate")?.textContent ?? "0";
          const points = document.querySelector("#chart-messages .line.out")?.getAttribute(
            "points",
          );
          return !["0", "–"].includes(rate) &&
            (points ?? "").split(" ").some((xy) => Number(xy.split(",")[1]) < 50);
        },
        undefined,
        { timeout: 10_000 },
      );
      for (let i = 0; i < 100; i++) cy.send({ type: "say", room: "random", text: `burst ${i}` });
      await page.waitForFunction(
        () => Number(document.querySelector("#chart-messages")?.getAttribute("data-points")) >= 20,
        undefined,
        { timeout: 10_000 },
      );
      clearInterval(chatter);
      for (const key of ["in", "out"]) {
        const ys = (await line(`#chart-messages .line.${key}`)).map(([, y]) => y);
        assert.ok(Math.min(...ys) < 50, `${key}/s left the baseline: ${ys}`);
      }
      assert.match(await page.textContent("#chart-messages-in") ?? "", /^in \d/);
      assert.deepEqual(pageErrors, [], "no errors, no CSP violations");
      mkdirSync(join(root, "test-output"), { recursive: true });
      mkdirSync(join(root, "docs"), { recursive: true });
      const shot = join(root, "test-output/inspector.png");
      await page.screenshot({ path: shot, fullPage: true });
      // The README's image: written when missing, or refreshed with HUBBUB_UPDATE_DOCS=1
      // (not on every run, so a test run leaves the work tree clean).
      const doc = join(root, "docs/inspector.png");
      if (!existsSync(doc) || env.HUBBUB_UPDATE_DOCS === "1") copyFileSync(shot, doc);
    } finally {
      clearInterval(chatter);
      for (const c of clients) await c.shut();
      await dispose();
      await server.close();
    }
  },
  { if: isBun && hasChromium, timeout: 60_000 },
);
