// The chat demo's Node entry (examples/chat/main_node.ts) as `npm run start:node` runs it:
// a child `node --import tsx` on $PORT, the page, a chat round trip, and a clean SIGTERM.
import assert from "node:assert/strict";
import { isNode, test } from "../_harness.ts";
import { TestClient } from "../_ws_client.ts";

test(
  "examples/chat/main_node.ts serves the page and the hub on $PORT and exits 0 on SIGTERM",
  async () => {
    const { spawn } = await import("node:child_process");
    const main = new URL("../../examples/chat/main_node.ts", import.meta.url).pathname;
    const child = spawn(process.execPath, ["--import", "tsx", main], {
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    let out = "";
    const seen = (pattern: RegExp) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const look = () => {
          const m = pattern.exec(out);
          if (m) {
            child.stdout!.off("data", onData);
            resolve(m);
          }
        };
        const onData = (chunk: Uint8Array) => {
          out += new TextDecoder().decode(chunk);
          look();
        };
        child.stdout!.on("data", onData);
        exited.then(() => reject(new Error(`exited before ${pattern}: ${out}`)));
        look();
      });
    let code: number | null | undefined;
    try {
      const [, port] = await seen(/hubbub chat demo on http:\/\/localhost:(\d+)\//);
      const page = await fetch(`http://127.0.0.1:${port}/`);
      assert.match(await page.text(), /<title>hubbub chat<\/title>/);
      const plain = await fetch(`http://127.0.0.1:${port}/ws`);
      assert.equal(plain.status, 426);
      await plain.body?.cancel();
      const ada = await TestClient.connect(`ws://127.0.0.1:${port}/ws?user=ada`);
      assert.equal((await ada.next("connection.established")).type, "connection.established");
      assert.equal(
        (await ada.request({ type: "subscribe", room: "lobby" }, "subscribed")).type,
        "subscribed",
      );
      ada.send({ type: "message", room: "lobby", text: "hi from node" });
      const said = await ada.next("message");
      assert.deepEqual(said.data, { room: "lobby", user: "ada", text: "hi from node" });
      assert.equal(await TestClient.status(`ws://127.0.0.1:${port}/ws`), 401, "no user: refused");
      const stopping = seen(/shutting down/);
      child.kill("SIGTERM");
      assert.equal((await ada.closed).code, 1001);
      await stopping;
      code = await exited;
      assert.equal(code, 0);
    } finally {
      if (code === undefined) {
        child.kill("SIGKILL");
        await exited;
      }
    }
  },
  { if: isNode, timeout: 20_000 },
);
