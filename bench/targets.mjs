// deno-fmt-ignore-file
// Bench targets: one line each. Every target is a server script that follows the control
// protocol in bench/README.md (PORT env, `READY <port>` on stdout, listeners at /ws put in room
// "bench", `?role=publisher` connection that sends {"type":"publish","data":...}).
//
//   name     unique id used by --only and in the results
//   runtime  "bun" | "deno" | "node" (informational; the table shows it)
//   group    reference group: "bun" targets are compared with bun-corked and bun-publish,
//            "deno" targets with deno-loop, "node" targets with node-corked and node-loop;
//            every target is also compared with socketio-node
//   command  argv; a leading "bun" / "deno" / "node" runs the project's own binary
//            (node_modules/.bin/bun, node_modules/.bin/deno, this Node)
//   proto    "ws" (default): plain WebSocket at /ws; "socketio": Engine.IO v4 framing at /socket.io/
//   env      extra environment for the server (optional)
//   extra    true: not part of the default set, runs only when named in --only

// --expose-gc: the idle phase asks each server for a full GC before reading RSS (servers/_gc.mjs).
const DENO_RUN = ["deno", "run", "-A", "--no-prompt", "--v8-flags=--expose-gc"];
// Node runs no TypeScript: tsx (a devDependency) loads the .ts servers.
const NODE_TS = ["node", "--expose-gc", "--import", "tsx"];

export const targets = [
  { name: "bun-corked", runtime: "bun", group: "bun", command: ["bun", "bench/servers/bun_corked.ts"] },
  { name: "bun-publish", runtime: "bun", group: "bun", command: ["bun", "bench/servers/bun_publish.ts"] },
  { name: "bun-loop", runtime: "bun", group: "bun", extra: true, command: ["bun", "bench/servers/bun_loop.ts"] },
  { name: "crossws-bun", runtime: "bun", group: "bun", command: ["bun", "bench/servers/crossws_bun.ts"] },
  { name: "deno-loop", runtime: "deno", group: "deno", command: [...DENO_RUN, "bench/servers/deno_loop.ts"] },
  { name: "crossws-deno", runtime: "deno", group: "deno", command: [...DENO_RUN, "bench/servers/crossws_deno.ts"] },
  { name: "socketio-node", runtime: "node", group: "node", proto: "socketio", command: ["node", "--expose-gc", "bench/servers/socketio_node.mjs"] },
  { name: "node-corked", runtime: "node", group: "node", command: [...NODE_TS, "bench/servers/node_corked.ts"] },
  { name: "node-loop", runtime: "node", group: "node", command: [...NODE_TS, "bench/servers/node_loop.ts"] },

  // The library itself (added by the lead; each implements the same control protocol):
  { name: "hubbub-bun", runtime: "bun", group: "bun", command: ["bun", "bench/servers/hubbub_bun.ts"] },
  { name: "hubbub-deno", runtime: "deno", group: "deno", command: [...DENO_RUN, "bench/servers/hubbub_deno.ts"] },
  { name: "hubbub-deno-batch", runtime: "deno", group: "deno", command: [...DENO_RUN, "bench/servers/hubbub_deno.ts"], subprotocol: "hubbub.batch.v1" },
  { name: "hubbub-hono-bun", runtime: "bun", group: "bun", command: ["bun", "bench/servers/hubbub_hono_bun.ts"] },
  { name: "hubbub-hono-deno", runtime: "deno", group: "deno", command: [...DENO_RUN, "bench/servers/hubbub_hono_deno.ts"] },
  { name: "hubbub-node", runtime: "node", group: "node", command: [...NODE_TS, "bench/servers/hubbub_node.ts"] },

  // Variants, only with --only=<name>:
  { name: "bun-corked-microtask", runtime: "bun", group: "bun", extra: true, command: ["bun", "bench/servers/bun_corked.ts"], env: { BENCH_FLUSH: "microtask" } },
];

/**
 * Targets of the cross-replica ("cross") and history ("history") suites (bench/README.md,
 * "Cross-replica and history"). Each runs the sessions of its suite (run.mjs: CROSS_SESSIONS);
 * `redis: true` gets a private redis-server per session (REDIS_URL in its environment), `raw`
 * marks the no-WebSocket ceiling, which measures itself (bench/servers/redis_raw.ts).
 */
const CROSS_BUN = ["bun", "bench/servers/hubbub_cross_bun.ts"];
const CROSS_DENO = [...DENO_RUN, "bench/servers/hubbub_cross_deno.ts"];
export const crossTargets = [
  { name: "redis-raw", runtime: "bun", suite: "cross", redis: true, raw: true, command: ["bun", "bench/servers/redis_raw.ts"] },
  { name: "bridge-bun-redis", runtime: "bun", suite: "cross", redis: true, command: ["bun", "bench/servers/bridge_bun_redis.ts"] },
  { name: "hubbub-bun-redis", runtime: "bun", suite: "cross", redis: true, command: CROSS_BUN },
  { name: "hubbub-bun-local", runtime: "bun", suite: "cross", command: CROSS_BUN },
  // A/B only (--only=hubbub-bun-redis-single --exact): one Redis message per payload, as before batching.
  { name: "hubbub-bun-redis-single", runtime: "bun", suite: "cross", extra: true, redis: true, env: { BENCH_COALESCE: "0" }, command: CROSS_BUN },
  { name: "hubbub-bun-redis-signed", runtime: "bun", suite: "cross", redis: true, env: { BENCH_SECRET: "1" }, command: CROSS_BUN },
  { name: "hubbub-bun-redis-format1", runtime: "bun", suite: "cross", extra: true, redis: true, env: { BENCH_FORMAT: "1" }, command: CROSS_BUN },
  { name: "hubbub-bun-history", runtime: "bun", suite: "history", env: { BENCH_HISTORY: "1" }, command: CROSS_BUN },
  { name: "hubbub-deno-local", runtime: "deno", suite: "history", command: CROSS_DENO },
  { name: "hubbub-deno-history", runtime: "deno", suite: "history", env: { BENCH_HISTORY: "1" }, command: CROSS_DENO },
  { name: "hubbub-bun-redis-history", runtime: "bun", suite: "history", redis: true, env: { BENCH_HISTORY: "1" }, command: CROSS_BUN },
];

/** Reference targets per group, and the one everyone is compared with. */
export const references = {
  bun: ["bun-corked", "bun-publish"],
  deno: ["deno-loop"],
  node: ["node-corked", "node-loop"],
  all: ["socketio-node"],
};
