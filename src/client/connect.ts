/**
 * `connect()`: create a client and wait until it is open.
 *
 * @module
 */

import type { AnyContract } from "../protocol/contract.ts";
import type { ConnectProgress } from "./_socket_lifecycle.ts";
import { DisconnectedError, TimeoutError, UpgradeError } from "./errors.ts";
import { connectProgress, HubClient } from "./hub_client.ts";
import type { ConnectOptions } from "./hub_client_options.ts";

const WAITING_FOR: Record<ConnectProgress["waitingFor"], string> = {
  socket: "the WebSocket to open",
  established: "the server's connection.established",
  authenticate: "the authenticate hook's fields",
  retry: "the next reconnect attempt",
  nothing: "nothing",
};

/** What the client was waiting for, and how its attempts went. */
function describeWait(p: ConnectProgress): string {
  let text = `Cannot connect to ${p.url}: timed out waiting for ${WAITING_FOR[p.waitingFor]}`;
  text += p.attempt === 0 ? " (first attempt)" : ` (after ${p.attempt} failed attempts`;
  if (p.attempt > 0) {
    if (p.status !== undefined) {
      text += `; the last refused by the server with HTTP ${p.status})`;
    } else if (p.failedBeforeOpen > 0) {
      text += `; ${p.failedBeforeOpen} in a row ended before the WebSocket opened: ` +
        "refused at upgrade or unreachable)";
    } else text += ")";
  }
  return text;
}

function isTimeout(reason: unknown): boolean {
  return (reason as { name?: unknown } | null)?.name === "TimeoutError";
}

/**
 * Create a client and wait until it is open. The client keeps retrying (per
 * its reconnect options) until the first open, so a server that is not up yet
 * is fine; pass `signal` (e.g. `AbortSignal.timeout(10_000)`) or `maxRetries`
 * to bound the wait.
 *
 * @typeParam C The app's contract (`typeof contract`).
 * @param url The hub's URL (`ws:`, `wss:`, `http:`, `https:`, or relative in browsers).
 * @param options Client options, plus `signal` for the wait.
 * @returns The open client.
 * @throws {UpgradeError} The client closed for good (e.g. `maxRetries`) and its last
 *   attempt ended before the socket opened: refused at upgrade (with the HTTP
 *   `status` where the runtime reports it) or unreachable (rejection).
 * @throws {DisconnectedError} The client closed for good before opening (rejection).
 * @throws {TimeoutError} The signal aborted with a `TimeoutError` (e.g.
 *   `AbortSignal.timeout()`): the message says what the client was waiting for
 *   and how its attempts went; the signal's reason is the `cause` (rejection).
 * @throws {unknown} The signal's reason when it aborts otherwise (rejection).
 * @throws {TypeError} As the {@linkcode HubClient} constructor.
 * @example
 * ```ts ignore
 * import { connect } from "@hubbub/hubbub/client";
 * import type { contract } from "./contract.ts";
 * await using client = await connect<typeof contract>("/ws", {
 *   signal: AbortSignal.timeout(10_000),
 * });
 * await client.subscribe("lobby");
 * ```
 */
export function connect<C extends AnyContract = AnyContract>(
  url: string | URL,
  options: ConnectOptions = {},
): Promise<HubClient<C>> {
  let client: HubClient<C>;
  try {
    client = new HubClient<C>(url, options);
  } catch (error) {
    return Promise.reject(error);
  }
  const signal = options.signal;
  return new Promise<HubClient<C>>((resolve, reject) => {
    const offOpen = client.onLifecycle("open", () => {
      done();
      resolve(client);
    });
    const offClose = client.onLifecycle("close", (e) => {
      if (e.willReconnect) return;
      done();
      const p = connectProgress(client);
      const error = p.failedBeforeOpen > 0
        ? new UpgradeError(p.status, p.failedBeforeOpen, p.url)
        : new DisconnectedError(
          e.code,
          e.reason,
          `Cannot connect: closed (${e.code}${e.reason ? ` ${e.reason}` : ""})`,
        );
      client.close().then(() => reject(error));
    });
    const onAbort = () => {
      done();
      const reason = signal!.reason;
      const error = isTimeout(reason)
        ? new TimeoutError(describeWait(connectProgress(client)), { cause: reason })
        : reason;
      client.close().then(() => reject(error));
    };
    function done() {
      offOpen();
      offClose();
      signal?.removeEventListener("abort", onAbort);
    }
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}
