// How every Redis connection hubbub opens itself is set up (the backplane's two, the cluster
// backplane's, the history and presence stores'): the factory's arguments checked, commands
// rejected at once while disconnected, and reconnects forever with capped, jittered backoff.
// And how the stores run commands: each with a deadline, scripts by EVALSHA with EVAL when
// Redis has lost its script cache (a restart).
import type {
  RedisClientOptionsLike,
  RedisConnectionLike,
  RedisConnectionTiming,
} from "./_redis_types.ts";

/**
 * Check a factory's `url` and its client constructor (`createClient`, `createCluster`).
 * @throws {TypeError} Naming what `what` cannot be created without.
 */
export function checkFactory(what: string, url: unknown, make: unknown, makeName: string): void {
  if (typeof url !== "string") throw new TypeError(`Cannot create ${what}: url must be a string`);
  if (typeof make !== "function") {
    throw new TypeError(`Cannot create ${what}: ${makeName} must be a function`);
  }
}

/** Socket and queue options: 50 ms after a failure, doubling to the cap, plus 0-100 ms jitter. */
export function connectionDefaults(
  timing: RedisConnectionTiming,
): Omit<RedisClientOptionsLike, "url"> {
  const maxDelay = timing.maxReconnectDelayMs ?? 1000;
  return {
    disableOfflineQueue: true,
    socket: {
      connectTimeout: timing.connectTimeoutMs ?? 5000,
      reconnectStrategy: (retries) =>
        Math.min(50 * 2 ** Math.min(retries, 16), maxDelay) + Math.floor(Math.random() * 100),
    },
  };
}

/**
 * A store's own connection: checked arguments, the defaults above, and an `error` listener (an
 * EventEmitter without one throws; the store reports failures per command instead).
 */
export function ownedClient<C extends RedisConnectionLike>(
  what: string,
  options: RedisConnectionTiming & {
    url: string;
    createClient: (options: RedisClientOptionsLike) => C;
  },
): C {
  const { url, createClient } = options;
  checkFactory(what, url, createClient, "createClient");
  const client = createClient({ url, ...connectionDefaults(options) });
  client.on("error", noop);
  return client;
}

function noop(): void {}

/** A client that sends raw commands (node-redis `sendCommand(args, { timeout })`). */
export interface CommandSender {
  sendCommand(args: string[], options?: { timeout?: number }): Promise<unknown>;
}

/** One command, rejected after `ms` even if the client never answers. */
export function sendWithin(client: CommandSender, args: string[], ms: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    let sent: Promise<unknown>;
    try {
      sent = client.sendCommand(args, { timeout: ms });
    } catch (error) {
      sent = Promise.reject(error);
    }
    sent.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

const shas = new Map<string, Promise<string>>();

/** The script's SHA-1 (hex), as EVALSHA names it; computed once per script. */
function sha1(script: string): Promise<string> {
  let sha = shas.get(script);
  if (sha === undefined) {
    sha = crypto.subtle.digest("SHA-1", new TextEncoder().encode(script)).then((digest) =>
      Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("")
    );
    shas.set(script, sha);
  }
  return sha;
}

/**
 * Run a Lua script by EVALSHA; a Redis without it cached (`NOSCRIPT`: restarted) gets the
 * script itself by EVAL. `keysAndArgs` is `numkeys, key..., arg...` as EVAL takes them.
 */
export async function evalCached(
  send: (args: string[]) => Promise<unknown>,
  script: string,
  keysAndArgs: string[],
): Promise<unknown> {
  const sha = await sha1(script);
  try {
    return await send(["EVALSHA", sha, ...keysAndArgs]);
  } catch (error) {
    if (!String((error as Error)?.message).startsWith("NOSCRIPT")) throw error;
    return await send(["EVAL", script, ...keysAndArgs]);
  }
}

/** Close a connection: gracefully when it is ready (pending replies first), else at once. */
export async function release(client: RedisConnectionLike): Promise<void> {
  try {
    if (client.isReady === true && typeof client.close === "function") {
      await client.close();
    } else if (typeof client.destroy === "function") {
      if (client.isOpen !== false) client.destroy();
    } else if (typeof client.close === "function") {
      await client.close();
    }
  } catch {
    // Already closed.
  }
}
