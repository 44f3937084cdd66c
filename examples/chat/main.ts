/**
 * Run the chat demo on Deno or Bun:
 *
 * ```sh
 * deno run -A examples/chat/main.ts   # or: npm start
 * bun examples/chat/main.ts
 * ```
 *
 * Listens on `$PORT` (default 8000) on `$HOST` (default 127.0.0.1: the demo's
 * identity is a name in the URL, so keep it off the network unless you mean it).
 *
 * Every room keeps its last 100 messages for 10 minutes: in memory, or in Redis
 * with `$REDIS_URL` set (e.g. `redis://127.0.0.1:6379`). The hub then also joins a
 * Redis backplane: run two of these on two ports and they behave as one chat
 * (see `examples/cluster/README.md`), and a restarted demo still has its history.
 * For several cores of one machine, see `serve.ts` (`deno serve --parallel`).
 *
 * SIGINT/SIGTERM close the hub (every client gets `connection.closed` and 1001),
 * then the server and the Redis stores, then exit.
 *
 * @module
 */

import { createChatApp } from "./app.ts";
import { type ChatRedis, chatRedisFromEnv } from "./redis.ts";

/** The parts of `Bun` used here. */
interface BunLike {
  serve(options: {
    port: number;
    hostname: string;
    fetch: (request: Request, server: never) => Promise<Response | undefined>;
    websocket: unknown;
  }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> | void };
}

/** The parts of Node's `process` that Bun provides and that are used here. */
interface ProcessLike {
  env: Record<string, string | undefined>;
  on(signal: string, listener: () => void): void;
  exit(code: number): never;
}

const bun = (globalThis as { Bun?: BunLike }).Bun;
const proc = (globalThis as { process?: ProcessLike }).process;
const deno = (globalThis as { Deno?: typeof Deno }).Deno;

function env(name: string): string | undefined {
  return deno !== undefined ? deno.env.get(name) : proc?.env[name];
}

const port = Number(env("PORT") ?? 8000);
const hostname = env("HOST") ?? "127.0.0.1";
// Loaded only when asked for: the demo runs without the redis package otherwise.
const redis: ChatRedis | undefined = await chatRedisFromEnv(env);
const app = createChatApp(redis?.options);
if (redis !== undefined) {
  await app.hub.ready;
  const health = app.hub.backplaneHealth;
  console.log(
    `${redis.label}: ` +
      (health.ok ? "connected" : `not connected yet (${health.error}); retrying`),
  );
}
const shownHost = hostname === "127.0.0.1" || hostname === "0.0.0.0" ? "localhost" : hostname;
const announce = (p: number) => console.log(`hubbub chat demo on http://${shownHost}:${p}/`);

let stopServer: () => Promise<void>;
if (deno !== undefined) {
  const server = deno.serve(
    { port, hostname, onListen: ({ port }) => announce(port) },
    async (request) => (await app.fetch(request)) ?? new Response(null, { status: 500 }),
  );
  stopServer = () => server.shutdown();
} else if (bun !== undefined) {
  const server = bun.serve({ port, hostname, fetch: app.fetch, websocket: app.websocket });
  announce(server.port);
  stopServer = async () => void await server.stop(true);
} else {
  throw new Error("Cannot start the chat demo: run it with Deno or Bun");
}

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log("shutting down…");
  await app.hub.close();
  await stopServer();
  await redis?.close();
  if (deno !== undefined) deno.exit(0);
  else proc?.exit(0);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  if (deno !== undefined) {
    try {
      deno.addSignalListener(signal, shutdown);
    } catch { /* SIGTERM is not available on Windows */ }
  } else proc?.on(signal, shutdown);
}
