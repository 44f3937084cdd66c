// The hardening suite on real Node: the ./node adapter (the full run) and Hono on
// @hono/node-server (a light run, for what Hono changes: its socket events). Skipped on Deno
// and Bun, which run it on their own adapters (tests/hardening/).
import { isNode } from "../_harness.ts";
import type { StartServer } from "../contract/transport_contract.ts";
import { hardeningSuite } from "../hardening/hardening_suite.ts";

// Lazily: the servers module names node:http and @hono/node-server.
const servers = isNode ? await import("./_servers.ts") : undefined;
const startNode: StartServer = (o) => servers!.startNode(o);
const startHonoNode: StartServer = (o) => servers!.startHonoNode(o);

// The churn test's heap bound holds on Node after a longer warm-up (see the suite).
const enabled = isNode;
hardeningSuite("hardening (node adapter)", startNode, { if: enabled });
hardeningSuite("hardening (hono on node)", startHonoNode, { if: enabled, light: true });
