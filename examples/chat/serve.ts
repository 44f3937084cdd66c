/**
 * The chat demo for `deno serve`, on every core of one machine:
 *
 * ```sh
 * deno serve --parallel -A examples/chat/serve.ts              # one isolate per core
 * DENO_JOBS=4 deno serve --parallel -A --port 8000 examples/chat/serve.ts
 * ```
 *
 * Each isolate runs this module with its own hub; the isolates act as one chat
 * through a `BroadcastChannel` backplane. History and presence need stores every
 * isolate shares, which only Redis gives: without `$REDIS_URL` the rooms keep no
 * history and the page has no member list. With `$REDIS_URL` set the isolates use
 * Redis for all three, so several machines can act as one too.
 *
 * SIGTERM closes each isolate's hub (clients get `connection.closed` and 1001):
 * `deno serve` then finishes its graceful shutdown. Without that, the hub's
 * timers and sockets would keep every isolate alive.
 *
 * @module
 */

import { BroadcastChannelBackplane } from "../../src/backplane/broadcast_channel.ts";
import { createChatApp } from "./app.ts";
import { chatRedisFromEnv } from "./redis.ts";

const redis = await chatRedisFromEnv((name) => Deno.env.get(name));
const app = createChatApp(
  redis?.options ?? { backplane: new BroadcastChannelBackplane({ name: "hubbub-chat" }) },
);
Deno.addSignalListener("SIGTERM", async () => {
  await app.hub.close();
  await redis?.close();
});

/** The request handler `deno serve` calls. */
export default {
  async fetch(request: Request): Promise<Response> {
    return (await app.fetch(request)) ?? new Response(null, { status: 500 });
  },
} satisfies Deno.ServeDefaultExport;
