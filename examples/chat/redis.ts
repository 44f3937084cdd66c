/**
 * The chat demo's Redis parts, for `$REDIS_URL`: the backplane (messages, whispers
 * and presence events reach every replica), the history store (every replica
 * agrees on each room's offsets, and the history outlives a restart of the demo)
 * and the presence store (every replica's members and who is online anywhere).
 * With `$REDIS_CLUSTER` (`redis://host:port,redis://host:port,...`) the backplane is
 * a Redis Cluster's sharded pub/sub instead; the stores then live on `$REDIS_URL`
 * (one Redis primary), and without it the rooms keep no history and track no
 * presence. Used by `main.ts`, `main_node.ts` and `serve.ts`.
 *
 * @example
 * ```ts ignore
 * import { connectChatRedis } from "./redis.ts";
 * import { createChatApp } from "./app.ts";
 * const redis = await connectChatRedis("redis://127.0.0.1:6379");
 * const app = createChatApp(redis.options);
 * // On shutdown:
 * await app.hub.close();
 * await redis.close();
 * ```
 *
 * @module
 */

import type { Backplane, HistoryStore, PresenceStore } from "../../mod.ts";
import {
  redisBackplane,
  redisClusterBackplane,
  redisHistoryStore,
  redisPresenceStore,
} from "../../src/backplane/redis.ts";

/** What {@linkcode connectChatRedis} returns. */
export interface ChatRedis {
  /** Options for `createChatApp`: the backplane and the shared stores. */
  readonly options: {
    backplane: Backplane;
    historyStore?: HistoryStore;
    presenceStore?: PresenceStore;
  };
  /** The backplane, for the log: `redis backplane at host:port`, `redis cluster backplane (n nodes)`. */
  readonly label: string;
  /** Close the stores' connections (after `hub.close()`; the hub closes the backplane). */
  close(): Promise<void>;
}

/**
 * Make the backplane and the stores. The `redis` package is loaded only here, so
 * the demo runs without it when neither `$REDIS_URL` nor `$REDIS_CLUSTER` is set.
 *
 * @param url The Redis URL, e.g. `redis://127.0.0.1:6379`: the backplane (unless
 *   `cluster` is given) and the stores.
 * @param cluster A Redis Cluster's nodes, comma-separated: the backplane.
 * @returns The parts, the stores' first connection attempts settled.
 */
export async function connectChatRedis(
  url: string | undefined,
  cluster?: string,
): Promise<ChatRedis> {
  const { createClient, createCluster } = await import("redis");
  const backplane = cluster
    ? redisClusterBackplane({ urls: cluster, createCluster })
    : redisBackplane({ url: url!, createClient });
  const historyStore = url ? redisHistoryStore({ url, createClient }) : undefined;
  const presenceStore = url ? redisPresenceStore({ url, createClient }) : undefined;
  await Promise.all([historyStore?.ready, presenceStore?.ready]);
  const nodes = cluster?.split(",").filter((u) => u.trim() !== "").length ?? 0;
  return {
    options: { backplane, historyStore, presenceStore },
    label: cluster
      ? `redis cluster backplane (${nodes} nodes)`
      : `redis backplane at ${new URL(url!).host}`,
    close: async () => void await Promise.all([historyStore?.close(), presenceStore?.close()]),
  };
}

/**
 * The demo's Redis parts from its environment (`REDIS_URL`, `REDIS_CLUSTER`), or
 * `undefined` when neither is set (one process, memory stores).
 * @param env Reads an environment variable.
 * @returns The parts, connected, or `undefined`.
 */
export function chatRedisFromEnv(
  env: (name: string) => string | undefined,
): Promise<ChatRedis | undefined> {
  const url = env("REDIS_URL") || undefined;
  const cluster = env("REDIS_CLUSTER") || undefined;
  return url || cluster ? connectChatRedis(url, cluster) : Promise.resolve(undefined);
}
