// The client on Node's own global WebSocket against a real Node server: what only Node 20's
// undici does (an `error` without a `close` after a failed handshake). Every other client
// test against servers on a chosen port runs on Node too (tests/client/hub_client_servers_test.ts).
import assert from "node:assert/strict";
import { isNode, test } from "../_harness.ts";
import { connect, UpgradeError } from "../../src/client/mod.ts";
import { chatOptions, fast } from "../client/_client_suite.ts";
import { startOnPort } from "../client/_servers.ts";

const onNode = { if: isNode, timeout: 30_000 };

test(
  "node: HubClient on Node's global WebSocket gives up on a refused upgrade without waiting for its connect timeout",
  async () => {
    // undici 6 (Node 20) fires `error` but never `close` after a failed handshake: the client
    // ends such an attempt itself shortly after its error.
    const s = await startOnPort({ ...chatOptions, identify: () => null });
    try {
      const started = Date.now();
      const error = await connect(s.url, { ...fast, maxRetries: 1, connectTimeoutMs: 20_000 })
        .catch((e) => e);
      assert.ok(error instanceof UpgradeError, String(error));
      assert.equal(error.attempts, 2);
      assert.ok(Date.now() - started < 10_000, "gave up before the 20 s connect timeout");
    } finally {
      await s.close();
    }
  },
  { ...onNode, if: onNode.if !== false && typeof globalThis.WebSocket === "function" },
);
