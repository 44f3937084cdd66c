// The client in a real browser (Debian's headless Chromium driven by playwright-core),
// on Bun: two pages join a room and chat, the server restarts on the same port, and
// both pages reconnect by themselves. Screenshot: test-output/browser-client.png.
import assert from "node:assert/strict";
import { join } from "node:path";
import { isBun, test } from "../_harness.ts";
import { hasChromium, launchChromium, warnIfMissing } from "../_chromium.ts";
import { startPageServer } from "./_server.ts";

const root = new URL("../../", import.meta.url).pathname;

warnIfMissing("the browser test");

test(
  "HubClient in Chromium: two pages chat, ride out a server restart on the same port, and chat again",
  async () => {
    // @ts-ignore: a plain .mjs module without types
    const { buildClientBundle } = await import("../../scripts/build_client_bundle.mjs");
    const bundle = join(root, "test-output/browser/hubbub-client.js");
    await buildClientBundle(bundle);

    let server = startPageServer(bundle);
    const port = server.port;
    const { context, dispose } = await launchChromium({ width: 640, height: 420 });
    const pageErrors: string[] = [];
    try {
      const open = async (name: string) => {
        const page = await context.newPage();
        page.on("pageerror", (e) => pageErrors.push(`${name}: ${e.message}`));
        await page.goto(`http://127.0.0.1:${port}/?name=${name}`);
        await page.waitForSelector("body[data-ready='1']", { timeout: 10_000 });
        return page;
      };
      const ada = await open("ada");
      const bob = await open("bob");
      assert.equal(server.hub.roomSize("lobby"), 2);
      for (const conn of server.hub.connections()) {
        assert.equal(conn.request.protocol, "hubbub.batch.v1", "Chromium negotiated batching");
      }

      await ada.fill("#text", "hello from ada");
      await ada.click("button");
      await bob.getByText("ada: hello from ada").waitFor({ timeout: 10_000 });

      // Restart: the hub closes every connection (1001), the port is freed, then reused.
      await server.close();
      for (const page of [ada, bob]) {
        await page.waitForSelector("#state[data-state='reconnecting']", { timeout: 10_000 });
      }
      server = startPageServer(bundle, port);
      for (const page of [ada, bob]) {
        await page.waitForSelector("#state[data-state='open']", { timeout: 15_000 });
        assert.equal(await page.textContent("#opens"), "2");
      }
      await ada.fill("#text", "still here after the restart");
      await ada.press("#text", "Enter");
      await bob.getByText("ada: still here after the restart").waitFor({ timeout: 10_000 });
      assert.equal(server.hub.roomSize("lobby"), 2, "both pages re-joined the room");

      await bob.screenshot({ path: join(root, "test-output/browser-client.png") });
      assert.deepEqual(pageErrors, []);
    } finally {
      await dispose();
      await server.close();
    }
  },
  { if: isBun && hasChromium, timeout: 60_000 },
);
