// The hardening suite on real Node: the ./node adapter (the full run) and Hono on
// @hono/node-server (a light run, for what Hono changes: its socket events). Skipped on Deno
// and Bun, which run it on their own adapters (tests/hardening/).
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

hardeningSuite("hardening (node adapter)", startNode, { if: isNode });
hardeningSuite("hardening (hono on node)", startHonoNode, { if: isNode, light: true });
