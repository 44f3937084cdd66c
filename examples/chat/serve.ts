/**
 * The chat demo for `deno serve`, on every core of one machine:
 *
 * ```sh
 * deno serve --parallel -A examples/chat/serve.ts              # one isolate per core
 * DENO_JOBS=4 deno serve --parallel -A --port 8000 examples/chat/serve.ts
 * ```
 *
 * Each isolate runs this module with its own hub; the isolates act as one chat
 * through a `BroadcastChannel` backplane. With `$REDIS_URL` set they join a
 * Redis backplane instead, so several machines can act as one too.
 *
 * SIGTERM closes each isolate's hub (clients get `connection.closed` and 1001):
 * `deno serve` then finishes its graceful shutdown. Without that, the hub's
 * timers and sockets would keep every isolate alive.
 *
 * @module
 */

import type { Backplane } from "../../mod.ts";
import { BroadcastChannelBackplane } from "../../src/backplane/broadcast_channel.ts";
import { redisBackplane } from "../../src/backplane/redis.ts";
import { createChatApp } from "./app.ts";

const redisUrl = Deno.env.get("REDIS_URL");
let backplane: Backplane;
if (redisUrl) {
  const { createClient } = await import("redis");
  backplane = redisBackplane({ url: redisUrl, createClient });
} else {
  backplane = new BroadcastChannelBackplane({ name: "hubbub-chat" });
}

const app = createChatApp({ backplane });
Deno.addSignalListener("SIGTERM", () => void app.hub.close());

/** The request handler `deno serve` calls. */
export default {
  async fetch(request: Request): Promise<Response> {
    return (await app.fetch(request)) ?? new Response(null, { status: 500 });
  },
} satisfies Deno.ServeDefaultExport;
