/**
 * The chat demo's Redis parts, for `$REDIS_URL`: the backplane (messages, whispers
 * and presence events reach every replica), the history store (every replica
 * agrees on each room's offsets, and the history outlives a restart of the demo)
 * and the presence store (every replica's members and who is online anywhere).
 * Used by `main.ts`, `main_node.ts` and `serve.ts`.
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
  redisHistoryStore,
  redisPresenceStore,
} from "../../src/backplane/redis.ts";

/** What {@linkcode connectChatRedis} returns. */
export interface ChatRedis {
  /** Options for `createChatApp`: the backplane and the shared stores. */
  readonly options: {
    backplane: Backplane;
    historyStore: HistoryStore;
    presenceStore: PresenceStore;
  };
  /** Close the stores' connections (after `hub.close()`; the hub closes the backplane). */
  close(): Promise<void>;
}

/**
 * Make the backplane and the stores on `url`. The `redis` package is loaded only
 * here, so the demo runs without it when `$REDIS_URL` is unset.
 *
 * @param url The Redis URL, e.g. `redis://127.0.0.1:6379`.
 * @returns The parts, the stores' first connection attempts settled.
 */
export async function connectChatRedis(url: string): Promise<ChatRedis> {
  const { createClient } = await import("redis");
  const backplane = redisBackplane({ url, createClient });
  const historyStore = redisHistoryStore({ url, createClient });
  const presenceStore = redisPresenceStore({ url, createClient });
  await Promise.all([historyStore.ready, presenceStore.ready]);
  return {
    options: { backplane, historyStore, presenceStore },
    close: async () => void await Promise.all([historyStore.close(), presenceStore.close()]),
  };
}
