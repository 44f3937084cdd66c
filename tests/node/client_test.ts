// The client suite against Node servers: the ./node adapter and Hono on @hono/node-server,
// with Node's global WebSocket as the client (npm test runs Node 20 with
// --experimental-websocket). Skipped on Deno and Bun.
import { isNode } from "../_harness.ts";
import { clientSuite } from "../client/_client_suite.ts";
import type { StartServer } from "../contract/transport_contract.ts";

// Imported lazily: the servers module names node:http and @hono/node-server.
const servers = isNode ? await import("./_servers.ts") : undefined;
const startNode: StartServer = (o) => servers!.startNode(o);
const startHonoNode: StartServer = (o) => servers!.startHonoNode(o);

clientSuite("node", startNode, { if: isNode });
clientSuite("hono/node", startHonoNode, { if: isNode });
