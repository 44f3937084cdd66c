import assert from "node:assert/strict";
import { CloseCode, Hub } from "../../mod.ts";
import { connectMemory, ManualClock } from "../../src/testing/mod.ts";
import { test } from "../_harness.ts";

test("A close cause is the value passed where the close happened, never parsed from its reason", async () => {
  const clock = new ManualClock();
  const hub = new Hub({ clock, idleTimeoutMs: 1000, pingIntervalMs: 500 });
  const app = await connectMemory(hub);
  const idle = await connectMemory(hub, { autoPong: false });
  const shut = await connectMemory(hub);
  for (const c of [app, idle, shut]) await c.next();
  // The app closes with a reason that reads like one of the hub's own: still an app close.
  hub.connections()[0].close(CloseCode.RATE_LIMITED, "rate limited");
  clock.advance(500);
  shut.send({ type: "ping" });
  clock.advance(600); // the silent one is now idle past its timeout
  await hub.close({ reason: "bye" }); // a custom shutdown reason is still a shutdown
  assert.deepEqual(hub.stats().closes, { server: 1, idle_timeout: 1, shutdown: 1 });
});
