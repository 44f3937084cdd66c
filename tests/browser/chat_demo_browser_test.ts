// The chat demo in a real browser (Debian's headless Chromium via playwright-core), on Bun,
// through the page's bundled hubbub client:
// - presence (the hub's, through the client's members()): whoever joins second sees both
//   members, everyone sees their own join line, and a × leave takes the member off the other
//   page's list;
// - history: a page that joins shows the room's recent messages; one whose connection the
//   server drops recovers what it missed; each message shows exactly once;
// - a server restart on the same port: the pages reconnect by themselves, the status blames
//   the connection, not the user's name, whoever did not come back leaves the member lists,
//   and no message shows twice;
// - replicas without shared stores (deno serve --parallel without Redis): no member list, said
//   so, and chat still works;
// - layout at 1100×700, 1440×900 and 390×844: the compose bar fully in view, no horizontal
//   overflow, the unread badge a small pill. Screenshots: test-output/chat-*.png.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { isBun, test } from "../_harness.ts";
import { hasChromium, launchChromium, warnIfMissing } from "../_chromium.ts";
import { type ChatAppOptions, CLIENT_BUNDLE, createChatApp } from "../../examples/chat/app.ts";
import { MemoryBus } from "../../mod.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const root = new URL("../../", import.meta.url).pathname;
const shots = join(root, "test-output");
warnIfMissing("the chat demo browser test");

/** The parts of the page's DOM the functions run in the browser use. */
interface Box {
  top: number;
  bottom: number;
  left: number;
  right: number;
  width: number;
  height: number;
}
declare const document: {
  querySelector(s: string): { getBoundingClientRect(): Box } | null;
  querySelectorAll(s: string): { textContent: string | null }[];
  documentElement: { scrollWidth: number; scrollHeight: number };
};
declare const innerWidth: number;
declare const innerHeight: number;

function serveChat(port = 0, options: ChatAppOptions = {}) {
  const app = createChatApp(options);
  const server = g.Bun.serve({
    hostname: "127.0.0.1",
    port,
    fetch: (req: Request, srv: unknown) => app.fetch(req, srv as never),
    websocket: app.websocket,
  });
  return {
    port: server.port as number,
    hub: app.hub,
    close: async () => {
      await app.hub.close();
      await server.stop(true);
    },
  };
}

let bundleBuilt = false;
async function buildBundle(): Promise<void> {
  if (bundleBuilt) return;
  // @ts-ignore: a plain .mjs module without types
  const { buildClientBundle } = await import("../../scripts/build_client_bundle.mjs");
  await buildClientBundle(CLIENT_BUNDLE.pathname);
  bundleBuilt = true;
}

/** A page connected as `name`; page errors go to `errors`. */
async function openAs(
  context: BrowserContext,
  port: number,
  name: string,
  errors: string[],
): Promise<Page> {
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.fill("#name", name);
  await page.click("#connect");
  await page.getByText(`connected as ${name}`).waitFor({ timeout: 10_000 });
  return page;
}

/** Join `room` from the page's form and wait until its view is shown. */
async function joinRoom(page: Page, room: string): Promise<void> {
  await page.fill("#room", room);
  await page.press("#room", "Enter");
  await page.locator("#views li", { hasText: `#${room}` }).waitFor({ timeout: 10_000 });
}

/** Wait until the member list reads `users`, in order. */
async function membersAre(page: Page, users: string[]): Promise<void> {
  try {
    await page.waitForFunction(
      (want) =>
        [...document.querySelectorAll("#members li")].map((li) => li.textContent).join() === want,
      users.join(),
      { timeout: 10_000 },
    );
  } catch {
    const shown = await page.locator("#members li").allTextContents();
    assert.deepEqual(shown, users, "member list");
  }
}

/** The log lines of the current view (the time stamp left out). */
async function logLines(page: Page): Promise<string[]> {
  const lines = await page.locator("#log li").evaluateAll((lis) =>
    lis.map((li) => [...li.children].slice(1).map((c) => c.textContent).join(" "))
  );
  return lines;
}

test(
  "The chat demo page shows both members on both pages, each own join line, and a × leave",
  async () => {
    await buildBundle();
    const server = serveChat();
    const { context, dispose } = await launchChromium({ width: 900, height: 560 });
    const errors: string[] = [];
    try {
      const ada = await openAs(context, server.port, "ada", errors);
      const bob = await openAs(context, server.port, "bob", errors);
      await joinRoom(ada, "lobby");
      await membersAre(ada, ["ada"]);
      await joinRoom(bob, "lobby");
      // bob's page keeps the room's presence events from before its subscribe resolves, and
      // loads the member list after it.
      await membersAre(bob, ["ada", "bob"]);
      await membersAre(ada, ["ada", "bob"]);
      await ada.getByText("bob joined").waitFor({ timeout: 10_000 });
      assert.deepEqual(await logLines(ada), ["ada joined", "bob joined"]);
      assert.deepEqual(await logLines(bob), ["bob joined"], "bob sees his own join line");

      await bob.click("#views button[title='leave lobby']");
      await membersAre(ada, ["ada"]);
      await ada.getByText("bob left").waitFor({ timeout: 10_000 });
      assert.equal(server.hub.roomSize("lobby"), 1);
      assert.deepEqual(await bob.locator("#views li > span:first-child").allTextContents(), [
        "whispers & notices",
      ]);
      assert.equal(
        await bob.locator("#members").isVisible(),
        false,
        "no member list outside a room",
      );
      await ada.screenshot({ path: join(shots, "chat-presence.png") });
      assert.deepEqual(errors, []);
    } finally {
      await dispose();
      await server.close();
    }
  },
  { if: isBun && hasChromium, timeout: 60_000 },
);

test(
  "The chat demo page chats through the bundled client and rides out a server restart",
  async () => {
    await buildBundle();
    let server = serveChat();
    const port = server.port;
    const { context, dispose } = await launchChromium({ width: 900, height: 520 });
    const errors: string[] = [];
    try {
      const ada = await openAs(context, port, "ada", errors);
      const bob = await openAs(context, port, "bob", errors);
      const cy = await openAs(context, port, "cy", errors);
      for (const page of [ada, bob, cy]) await joinRoom(page, "lobby");
      await membersAre(ada, ["ada", "bob", "cy"]);
      assert.equal(server.hub.roomSize("lobby"), 3);
      await ada.fill("#text", "hello from ada");
      await ada.press("#text", "Enter");
      await bob.getByText("hello from ada").waitFor({ timeout: 10_000 });

      await server.close();
      for (const page of [ada, bob]) {
        await page.getByText("connection lost: reconnecting").waitFor({ timeout: 10_000 });
        const status = await page.textContent("#status");
        assert.doesNotMatch(status ?? "", /name/, "a restart is not the name's fault");
      }
      await cy.close(); // cy does not come back
      server = serveChat(port);
      for (const [page, name] of [[ada, "ada"], [bob, "bob"]] as const) {
        await page.getByText(`connected as ${name}`).waitFor({ timeout: 20_000 });
      }
      await ada.fill("#text", "still here after the restart");
      await ada.press("#text", "Enter");
      await bob.getByText("still here after the restart").waitFor({ timeout: 10_000 });
      assert.equal(server.hub.roomSize("lobby"), 2, "both pages re-joined the room");
      for (const page of [ada, bob]) await membersAre(page, ["ada", "bob"]);
      // The restarted server lost the history (memory store): the page says so, and shows
      // every message once, before and after.
      await bob.getByText("the server lost this room's history").waitFor({ timeout: 10_000 });
      const said = (await logLines(bob)).filter((l) => /^ada (hello|still)/.test(l));
      assert.deepEqual(said, ["ada hello from ada", "ada still here after the restart"]);
      await bob.screenshot({ path: join(shots, "chat-demo.png") });
      assert.deepEqual(errors, []);
    } finally {
      await dispose();
      await server.close();
    }
  },
  { if: isBun && hasChromium, timeout: 90_000 },
);

test(
  "The chat demo page shows a room's recent messages on joining, and after a dropped connection each message exactly once",
  async () => {
    await buildBundle();
    let bobJoins = 0;
    const server = serveChat(0, {
      // As bob first joins, ada says m4: it reaches bob live after his subscribe's ack and
      // before his page's history read, which returns it too. The page shows it once.
      onJoin: (c) =>
        void (c.userId === "bob" && bobJoins++ === 0 && queueMicrotask(() => say("m4"))),
    });
    const { context, dispose } = await launchChromium({ width: 900, height: 560 });
    const errors: string[] = [];
    const say = (text: string) =>
      server.hub.emit("message", { room: "lobby", user: "ada", text }, { rooms: "lobby" });
    const said = async (page: Page) =>
      (await logLines(page)).filter((l) => l.startsWith("ada m")).map((l) => l.slice(4));
    const all = ["m1", "m2", "m3", "m4", "m5", "m6", "m7"];
    try {
      const ada = await openAs(context, server.port, "ada", errors);
      const bob = await openAs(context, server.port, "bob", errors);
      await joinRoom(ada, "lobby");
      for (const n of [1, 2, 3]) say(`m${n}`);
      // A page that joins later shows the room's recent messages (history).
      await joinRoom(bob, "lobby");
      await bob.getByText("m4").waitFor({ timeout: 10_000 });
      await bob.getByText("m1").waitFor({ timeout: 10_000 });
      assert.deepEqual(await said(bob), all.slice(0, 4));
      // The server drops bob's connection and the room goes on without him: his page
      // reconnects, re-joins with recover, and gets what it missed, once, in order.
      server.hub.userConnections("bob")[0].close(4000, "slow client");
      for (const n of [5, 6]) say(`m${n}`); // out of the room already: bob misses them live
      await bob.getByText("m6").waitFor({ timeout: 10_000 });
      say("m7");
      await bob.getByText("m7").waitFor({ timeout: 10_000 });
      assert.equal(bobJoins, 2, "bob's page re-joined");
      assert.deepEqual(await said(bob), all);
      assert.deepEqual(await said(ada), all);
      await membersAre(bob, ["ada", "bob"]);
      assert.deepEqual(
        await logLines(bob).then((lines) => lines.filter((l) => !l.startsWith("ada m"))),
        ["bob joined"],
        "no join or leave line for bob's own reconnect",
      );
      assert.deepEqual(errors, []);
    } finally {
      await dispose();
      await server.close();
    }
  },
  { if: isBun && hasChromium, timeout: 60_000 },
);

test(
  "The chat demo page on a replica without shared stores says its member list is unavailable and still chats",
  async () => {
    await buildBundle();
    // A backplane and no presence or history store: the hub tracks neither.
    const server = serveChat(0, { backplane: new MemoryBus().connect() });
    const { context, dispose } = await launchChromium({ width: 900, height: 560 });
    const errors: string[] = [];
    try {
      const ada = await openAs(context, server.port, "ada", errors);
      await joinRoom(ada, "lobby");
      await membersAre(ada, ["(member list unavailable)"]);
      await ada.fill("#text", "no history here");
      await ada.press("#text", "Enter");
      await ada.getByText("no history here").waitFor({ timeout: 10_000 });
      assert.deepEqual(await logLines(ada), ["ada joined", "ada no history here"]);
      await ada.click("#views .label >> text=whispers & notices");
      assert.deepEqual(await logLines(ada), [], "no error notice for the missing presence");
      assert.deepEqual(errors, []);
    } finally {
      await dispose();
      await server.close();
    }
  },
  { if: isBun && hasChromium, timeout: 60_000 },
);

const SIZES = [
  { width: 1100, height: 700 },
  { width: 1440, height: 900 },
  { width: 390, height: 844 },
] as const;

test(
  "The chat demo page fits 1100×700, 1440×900 and a 390×844 phone: compose bar in view, no overflow",
  async () => {
    await buildBundle();
    const server = serveChat();
    const { context, dispose } = await launchChromium(SIZES[0]);
    const errors: string[] = [];
    try {
      const ada = await openAs(context, server.port, "ada", errors);
      const bob = await openAs(context, server.port, "bob", errors);
      await joinRoom(ada, "lobby");
      await joinRoom(bob, "lobby");
      await joinRoom(ada, "design-review"); // ada now looks at #design-review
      await joinRoom(bob, "design-review");
      // A long log in ada's current room, and 12 unread in the other: the badge reads "12".
      for (let i = 0; i < 40; i++) {
        server.hub.emit("message", {
          room: "design-review",
          user: "bob",
          text: `line ${i}: ` + "a long design note that wraps ".repeat(i % 3 + 1),
        }, { rooms: "design-review" });
      }
      for (let i = 0; i < 12; i++) {
        server.hub.emit("message", { room: "lobby", user: "bob", text: `hi ${i}` }, {
          rooms: "lobby",
        });
      }
      await ada.getByText("line 39:").waitFor({ timeout: 10_000 });
      await ada.locator(".badge", { hasText: "12" }).waitFor({ timeout: 10_000 });
      mkdirSync(shots, { recursive: true });

      for (const size of SIZES) {
        await ada.setViewportSize(size);
        await ada.fill("#text", "typing…");
        const m = await ada.evaluate(() => {
          const box = (s: string) => {
            const b = document.querySelector(s)!.getBoundingClientRect();
            return {
              top: b.top,
              bottom: b.bottom,
              left: b.left,
              right: b.right,
              width: b.width,
              height: b.height,
            };
          };
          return {
            vw: innerWidth,
            vh: innerHeight,
            scrollWidth: document.documentElement.scrollWidth,
            scrollHeight: document.documentElement.scrollHeight,
            compose: box("#compose"),
            text: box("#text"),
            send: box("#compose button"),
            badge: box(".badge"),
            log: box("#log"),
            members: box("#members"),
            lastLine: box("#log li:last-child"),
          };
        });
        const at = `${size.width}×${size.height}`;
        assert.equal(m.vw, size.width);
        assert.ok(m.scrollWidth <= m.vw, `${at}: page ${m.scrollWidth} px wide`);
        assert.ok(m.scrollHeight <= m.vh, `${at}: page ${m.scrollHeight} px tall (one screen)`);
        for (const [name, b] of [["compose bar", m.compose], ["Send", m.send]] as const) {
          assert.ok(
            b.top >= 0 && b.left >= 0 && b.bottom <= m.vh && b.right <= m.vw,
            `${at}: ${name} ${JSON.stringify(b)} not fully inside the viewport`,
          );
        }
        assert.ok(m.text.width >= 150, `${at}: message box only ${m.text.width} px wide`);
        assert.ok(m.log.height >= 150, `${at}: log only ${m.log.height} px tall`);
        assert.ok(
          m.lastLine.bottom <= m.log.bottom + 1 && m.lastLine.top >= m.log.top,
          `${at}: the newest line is out of view`,
        );
        assert.ok(m.members.height > 0 && m.members.bottom <= m.vh, `${at}: members out of view`);
        assert.ok(
          m.badge.width >= 14 && m.badge.width <= 40 && m.badge.height <= 28,
          `${at}: badge ${m.badge.width}×${m.badge.height} px`,
        );
        await ada.screenshot({ path: join(shots, `chat-${size.width}x${size.height}.png`) });
      }
      // The whispers view adds a recipient box to the compose bar: both fit on the phone.
      await ada.click("#views .label >> text=whispers & notices");
      await ada.fill("#to", "bob");
      const w = await ada.evaluate(() => {
        const box = (s: string) => document.querySelector(s)!.getBoundingClientRect();
        return {
          vw: innerWidth,
          scrollWidth: document.documentElement.scrollWidth,
          to: box("#to").width,
          text: box("#text").width,
          send: box("#compose button").right,
        };
      });
      assert.ok(w.scrollWidth <= w.vw && w.send <= w.vw, JSON.stringify(w));
      assert.ok(w.to >= 80 && w.text >= 150, JSON.stringify(w));
      await ada.screenshot({ path: join(shots, "chat-390x844-whispers.png") });
      assert.deepEqual(errors, []);
    } finally {
      await dispose();
      await server.close();
    }
  },
  { if: isBun && hasChromium, timeout: 60_000 },
);
