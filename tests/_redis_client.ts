// node-redis clients for tests that talk to a private redis-server directly (the stores' own
// tests): created as the docs advise (no offline queue, quick reconnects) and released.
import { createClient } from "redis";

/** A node-redis client as the docs advise: no offline queue (and quick reconnects). */
export function newClient(url: string) {
  return createClient({ url, disableOfflineQueue: true, socket: { reconnectStrategy: () => 50 } });
}

/** A client from {@linkcode newClient}. */
export type Client = ReturnType<typeof newClient>;

/** A connected client (its errors are expected in outage tests: swallowed). */
export async function connected(url: string): Promise<Client> {
  const client = newClient(url);
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** Close clients: gracefully when ready, else at once. */
export async function release(...clients: Client[]): Promise<void> {
  for (const c of clients) {
    if (c.isReady) await c.close().catch(() => {});
    else if (c.isOpen) c.destroy();
  }
}
