// Admission: what happens before a socket is a connection. `upgrade()` answers a request
// with a refusal (426, 403, 401, 429, 503; no socket is opened) or an acceptance that the
// adapter opens. Every slot it hands out (while `identify` runs, while the socket opens, and
// while a socket the hub closed lingers) is counted toward maxConnections and released on every
// outcome, each bounded by time: Deno reports nothing for a peer that resets mid-upgrade.
import type { Connection, ConnectionRequest } from "./connection.ts";
import type { Counters } from "./counters.ts";
import type { Hooks } from "./hooks.ts";
import type {
  Clock,
  HubOptions,
  Identity,
  RefusedUpgrade,
  UpgradeDecision,
  UpgradeOptions,
} from "./hub_options.ts";
import type { HubLimits } from "./limits.ts";
import type { Registry } from "./registry.ts";
import type { SocketEvents, Transport } from "./transport.ts";
import { CloseCode } from "./close_codes.ts";
import { compileOriginCheck, type OriginCheck } from "./_origin.ts";
import { UpgradeSlots } from "./_upgrade_slots.ts";
import { kAbandon, kTeardown, kTouch } from "./_internal.ts";
import { BATCH_PROTOCOL, utf8Length } from "../protocol/envelope.ts";

/** What a connection opens with (from the upgrade). */
export interface OpenInit {
  userId: string | undefined;
  metadata: Readonly<Record<string, unknown>>;
  request: ConnectionRequest;
}

/** What admission is made with. */
export interface AdmissionOptions {
  identify: HubOptions["identify"];
  origins: readonly string[] | undefined;
  allowNoOrigin: boolean | undefined;
  batchFraming: boolean;
  limits: HubLimits;
  clock: Clock;
  registry: Registry;
  counters: Counters;
  hooks: Hooks;
  isClosed(): boolean;
  /** Register an opened socket as a connection; returns its event sink. */
  open(transport: Transport, init: OpenInit): SocketEvents;
}

const noop = () => {};
const EMPTY: Readonly<Record<string, never>> = Object.freeze({});

/** One hub's admission control. */
export class Admission {
  readonly #o: AdmissionOptions;
  readonly #originOk: OriginCheck;
  /** Upgrades waiting on `identify`. */
  #identifying = 0;
  /** Accepted upgrades whose socket has not opened yet. */
  readonly #slots: UpgradeSlots;
  /**
   * Connections the hub closed whose socket the runtime still holds (Deno waits for the
   * peer's close frame, forever if it never comes), with their deadline timers. They count
   * toward `maxConnections` until the close completes or `closeTimeoutMs` passes, so
   * closed-but-held sockets cannot pile up, and a peer that never answers cannot keep its
   * slot (which would lock new clients out).
   */
  readonly #lingering = new Map<Connection, unknown>();
  /** Sockets whose transport has not reported its close yet. */
  readonly #socketOpen = new WeakSet<Connection>();

  constructor(options: AdmissionOptions) {
    this.#o = options;
    this.#originOk = compileOriginCheck(options.origins ?? [], options.allowNoOrigin ?? true);
    this.#slots = new UpgradeSlots(options.clock, options.limits.openTimeoutMs);
  }

  /** See `Hub.upgrade()`. */
  async upgrade(request: Request, options: UpgradeOptions = {}): Promise<UpgradeDecision> {
    const refusal = (
      why: string,
      status: number,
      body: string,
      headers?: Record<string, string>,
    ) => this.#refuse(why, status, body, headers, request);
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return refusal("not_websocket", 426, "Expected a WebSocket upgrade", {
        upgrade: "websocket",
      });
    }
    if (!this.#originOk(request.headers.get("origin"), request.url)) {
      return refusal("origin", 403, "Origin not allowed");
    }
    if (this.#o.isClosed() || this.#held() >= this.#o.limits.maxConnections) {
      return refusal("max_connections", 503, "Too many connections", { "retry-after": "5" });
    }
    if (this.#identifying >= this.#o.limits.maxPendingUpgrades) {
      return refusal("pending_upgrades", 503, "Too many pending connections", {
        "retry-after": "1",
      });
    }
    // Held while `identify` runs (bounded by maxPendingUpgrades), then handed to an opening slot.
    this.#identifying++;
    let identity: Identity | undefined | null | false;
    try {
      identity = this.#o.identify ? await this.#o.identify(request) : undefined;
      if (identity && identity.userId !== undefined) {
        if (typeof identity.userId !== "string" || identity.userId === "") {
          throw new TypeError("Cannot identify connection: userId must be a non-empty string");
        }
      }
    } catch (error) {
      this.#identifying--;
      this.#o.hooks.report(error, "identify");
      // A throw is the server's failure (a session store down), not a bad login.
      return refusal("identify_error", 503, "Cannot identify connection now", {
        "retry-after": "5",
      });
    }
    this.#identifying--;
    if (identity === null || identity === false) {
      return refusal("identify", 401, "Unauthorized");
    }
    if (identity?.metadata !== undefined) {
      let size: number;
      try {
        size = utf8Length(JSON.stringify(identity.metadata) ?? "");
      } catch (error) {
        this.#o.hooks.report(error, "identify");
        return refusal("error", 500, "Internal error");
      }
      if (size > this.#o.limits.maxMetadataBytes) {
        this.#o.hooks.report(
          new RangeError(
            `Cannot accept connection: metadata is ${size} bytes, over maxMetadataBytes`,
          ),
          "identify",
        );
        return refusal("error", 500, "Internal error");
      }
    }
    if (this.#o.isClosed()) return refusal("shutting_down", 503, "Server shutting down");
    // Checked again after `identify`: other upgrades may have taken the last slots meanwhile.
    if (this.#held() >= this.#o.limits.maxConnections) {
      return refusal("max_connections", 503, "Too many connections", { "retry-after": "5" });
    }
    const userId = identity ? identity.userId : undefined;
    if (userId !== undefined && this.userHeld(userId) >= this.#o.limits.maxConnectionsPerUser) {
      return refusal("user_connections", 429, "Too many connections for this user", {
        "retry-after": "5",
      });
    }
    const protocol = this.#o.batchFraming &&
        offeredProtocols(request.headers.get("sec-websocket-protocol")).includes(BATCH_PROTOCOL)
      ? BATCH_PROTOCOL
      : "";
    // Bounded by time: Deno reports nothing at all for a peer that resets right after its
    // upgrade request, so without a deadline its slot would be held forever.
    const slot = this.#slots.take(userId);
    const init = {
      userId,
      metadata: identity && identity.metadata !== undefined
        ? Object.freeze({ ...identity.metadata })
        : EMPTY,
      request: Object.freeze({ url: request.url, params: options.params ?? EMPTY, protocol }),
    };
    return {
      ok: true,
      protocol,
      cancel: () => slot.release(),
      open: (transport) => {
        if (!slot.release() || this.#o.isClosed()) {
          // Opened after its deadline (or after close): it never held a slot; let it retry.
          try {
            transport.close(
              this.#o.isClosed() ? CloseCode.GOING_AWAY : CloseCode.TRY_AGAIN_LATER,
              this.#o.isClosed() ? "server shutting down" : "upgrade took too long",
            );
          } catch { /* gone */ }
          return { message: noop, close: noop, pong: noop };
        }
        return this.#o.open(transport, init);
      },
    };
  }

  /** Connections held against `maxConnections`: open, upgrading, opening and lingering. */
  #held(): number {
    return this.#o.registry.clients.size + this.#identifying + this.#slots.size +
      this.#lingering.size;
  }

  /** A user's open connections plus their accepted upgrades that are still opening. */
  userHeld(userId: string): number {
    return (this.#o.registry.users.get(userId)?.size ?? 0) + this.#slots.forUser(userId);
  }

  /** The event sink for an opened connection's socket. */
  events(
    conn: Connection,
    receive: (conn: Connection, data: string | Uint8Array) => void,
  ): SocketEvents {
    this.#socketOpen.add(conn);
    return new ConnectionEvents(conn, receive, this.#socketGone);
  }

  /** A closed connection: count its socket until its close completes or closeTimeoutMs passes. */
  closed(conn: Connection): void {
    if (!this.#socketOpen.has(conn)) return;
    this.#lingering.set(
      conn,
      this.#o.clock.setTimeout(() => {
        this.#lingering.delete(conn);
        // The peer never finished the close: drop it where the runtime can (Bun). Deno keeps
        // the socket until the peer goes away; it no longer holds a slot here.
        conn[kAbandon]();
      }, this.#o.limits.closeTimeoutMs),
    );
  }

  /** The hub is closing: release every slot and stop every deadline. */
  close(): void {
    this.#slots.releaseAll();
    for (const conn of [...this.#lingering.keys()]) this.#stopLingering(conn);
  }

  /** The transport reported its socket closed (after or before the hub's own teardown). */
  readonly #socketGone = (conn: Connection): void => {
    this.#socketOpen.delete(conn);
    this.#stopLingering(conn);
  };

  #stopLingering(conn: Connection): void {
    if (!this.#lingering.has(conn)) return;
    this.#o.clock.clearTimeout(this.#lingering.get(conn));
    this.#lingering.delete(conn);
  }

  #refuse(
    why: string,
    status: number,
    body: string,
    headers: Record<string, string> | undefined,
    request: Request,
  ): RefusedUpgrade {
    const counters = this.#o.counters;
    counters.countRefused(why);
    if (counters.observers.size > 0) {
      counters.notify({
        kind: "refused",
        cause: why,
        status,
        origin: request.headers.get("origin"),
        url: request.url,
        at: this.#o.clock.now(),
      });
    }
    return {
      ok: false,
      response: new Response(body, {
        status,
        headers: { "content-type": "text/plain; charset=utf-8", ...headers },
      }),
    };
  }
}

/** The subprotocols a client offered (`Sec-WebSocket-Protocol`, comma-separated, any spacing). */
function offeredProtocols(header: string | null): string[] {
  if (header === null) return [];
  return header.split(",").map((p) => p.trim()).filter((p) => p !== "");
}

/** The event sink an adapter feeds for one socket (a class: no closures per connection). */
class ConnectionEvents implements SocketEvents {
  readonly #conn: Connection;
  readonly #receive: (conn: Connection, data: string | Uint8Array) => void;
  readonly #gone: (conn: Connection) => void;

  constructor(
    conn: Connection,
    receive: (conn: Connection, data: string | Uint8Array) => void,
    gone: (conn: Connection) => void,
  ) {
    this.#conn = conn;
    this.#receive = receive;
    this.#gone = gone;
  }

  message(data: string | Uint8Array): void {
    const conn = this.#conn;
    if (conn.state !== "open") return;
    conn[kTouch]();
    this.#receive(conn, data);
  }

  close(code: number, reason: string): void {
    this.#gone(this.#conn);
    this.#conn[kTeardown](code, reason);
  }

  pong(): void {
    this.#conn[kTouch]();
  }
}
