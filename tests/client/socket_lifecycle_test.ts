// How the socket lifecycle tells an upgrade refusal from a server that is down.
import assert from "node:assert/strict";
import { upgradeStatus } from "../../src/client/_socket_lifecycle.ts";
import { test } from "../_harness.ts";

test("upgradeStatus() reads the HTTP status from Deno's, Bun's and ws's error events, and nothing else", () => {
  const deno = "NetworkError: failed to connect to WebSocket: Invalid status code: 401";
  const bun = "WebSocket connection to 'ws://127.0.0.1:1/ws' failed: Expected 101 status code: 403";
  const ws = "Unexpected server response: 503";
  assert.equal(upgradeStatus({ message: deno }), 401);
  assert.equal(upgradeStatus({ message: bun, error: new Error(bun) }), 403);
  assert.equal(upgradeStatus({ error: new Error(ws) }), 503);
  assert.equal(
    upgradeStatus({ message: "failed to connect to WebSocket: tcp connect error" }),
    undefined,
  );
  assert.equal(upgradeStatus({ type: "error" }), undefined, "a browser's error event says nothing");
  assert.equal(upgradeStatus(undefined), undefined);
});
