// The chat demo in a real browser (Debian's headless Chromium via playwright-core), on Bun:
// two people join a room and chat through the page's bundled hubbub client; the server
// restarts on the same port; both pages reconnect by themselves and the next message still
// arrives. Screenshot: test-output/chat-demo.png.
import assert from "node:assert/strict";
import { join } from "node:path";
import { isBun, test } from "../_harness.ts";
import { hasChromium, launchChromium, warnIfMissing } from "../_chromium.ts";
import { CLIENT_BUNDLE, createChatApp } from "../../examples/chat/app.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const root = new URL("../../", import.meta.url).pathname;
warnIfMissing("the chat demo browser test");

function serveChat(port = 0) {
  const app = createChatApp();
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

test(
  "The chat demo page chats through the bundled client and rides out a server restart",
  async () => {
    // @ts-ignore: a plain .mjs module without types
    const { buildClientBundle } = await import("../../scripts/build_client_bundle.mjs");
    await buildClientBundle(CLIENT_BUNDLE.pathname);
    let server = serveChat();
    const port = server.port;
    const { context, dispose } = await launchChromium({ width: 900, height: 520 });
    const errors: string[] = [];
    try {
      const open = async (name: string) => {
        const page = await context.newPage();
        page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
        await page.goto(`http://127.0.0.1:${port}/`);
        await page.fill("#name", name);
        await page.click("#connect");
        await page.getByText(`connected as ${name}`).waitFor({ timeout: 10_000 });
        await page.fill("#room", "lobby");
        await page.press("#room", "Enter");
        await page.getByText("#lobby").waitFor({ timeout: 10_000 });
        return page;
      };
      const ada = await open("ada");
      const bob = await open("bob");
      assert.equal(server.hub.roomSize("lobby"), 2);
      await ada.fill("#text", "hello from ada");
      await ada.press("#text", "Enter");
      await bob.getByText("hello from ada").waitFor({ timeout: 10_000 });

      await server.close();
      for (const page of [ada, bob]) {
        await page.getByText("reconnecting").waitFor({ timeout: 10_000 });
      }
      server = serveChat(port);
      for (const [page, name] of [[ada, "ada"], [bob, "bob"]] as const) {
        await page.getByText(`connected as ${name}`).waitFor({ timeout: 20_000 });
      }
      await ada.fill("#text", "still here after the restart");
      await ada.press("#text", "Enter");
      await bob.getByText("still here after the restart").waitFor({ timeout: 10_000 });
      assert.equal(server.hub.roomSize("lobby"), 2, "both pages re-joined the room");
      await bob.screenshot({ path: join(root, "test-output/chat-demo.png") });
      assert.deepEqual(errors, []);
    } finally {
      await dispose();
      await server.close();
    }
  },
  { if: isBun && hasChromium, timeout: 90_000 },
);
