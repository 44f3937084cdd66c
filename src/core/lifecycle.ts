// A connection's life in the hub: a socket that opened becomes a Connection (indexed, greeted
// with connection.established, given its auth deadline, held until the connect hook decides),
// and a connection that closed, for whatever cause, is dropped from everything exactly once
// (counted, observed, its disconnect hook run after the current fan-out).
import { CloseCode } from "./close_codes.ts";
import { Connection, type ConnectionOwner } from "./connection.ts";
import type { Counters } from "./counters.ts";
import type { Dispatcher } from "./dispatch.ts";
import type { Hooks } from "./hooks.ts";
import type { Clock, HubOptions } from "./hub_options.ts";
import type { Inbound } from "./inbound.ts";
import type { Keepalive } from "./keepalive.ts";
import type { Registry } from "./registry.ts";
import type { SocketEvents, Transport } from "./transport.ts";
import type { Admission, OpenInit } from "./upgrade.ts";
import { kCloseWith, kState, settleState, stateOf } from "./_internal.ts";
import { BATCH_PROTOCOL, ServerEvent } from "../protocol/envelope.ts";

/** The parts a connection's life touches. */
export interface LifecycleParts {
  // deno-lint-ignore no-explicit-any
  options: HubOptions<any>;
  clock: Clock;
  owner: ConnectionOwner;
  registry: Registry;
  keepalive: Keepalive;
  counters: Counters;
  // deno-lint-ignore no-explicit-any
  dispatcher: Dispatcher<any>;
  admission: Admission;
  inbound: Inbound;
  hooks: Hooks;
  /** Where the socket's frames go (`Inbound.receive`). */
  receive(conn: Connection, data: string | Uint8Array): void;
}

/** Opens and tears down one hub's connections. */
export class Lifecycle {
  readonly #o: LifecycleParts;

  constructor(parts: LifecycleParts) {
    this.#o = parts;
  }

  /** A socket opened: make it a connection, index it, greet it, run the connect hook. */
  open(transport: Transport, init: OpenInit): SocketEvents {
    const conn = new Connection({
      id: crypto.randomUUID(),
      userId: init.userId,
      metadata: init.metadata,
      request: init.request,
      transport,
      owner: this.#o.owner,
      batch: init.request.protocol === BATCH_PROTOCOL,
    });
    this.#o.registry.add(conn);
    this.#o.keepalive.start();
    const counters = this.#o.counters;
    counters.n.opened++;
    if (counters.observers.size > 0) {
      counters.notify({
        kind: "connect",
        clientId: conn.id,
        userId: conn.userId,
        at: this.#o.clock.now(),
      });
    }
    const authTimeout = this.#o.options.authTimeoutMs;
    if (authTimeout !== undefined && conn.userId === undefined) {
      stateOf(conn).authTimer = this.#o.clock.setTimeout(() => {
        conn[kState]!.authTimer = undefined;
        settleState(conn);
        if (conn.userId === undefined) {
          conn[kCloseWith](CloseCode.UNAUTHENTICATED, "authentication timeout", "auth_timeout");
        }
      }, authTimeout);
    }
    this.#o.dispatcher.reply(
      conn,
      ServerEvent.ESTABLISHED,
      conn.userId === undefined
        ? { clientId: conn.id }
        : { clientId: conn.id, userId: conn.userId },
    );
    const events = this.#o.admission.events(conn, this.#o.receive);
    const onConnect = this.#o.options.onConnect;
    if (onConnect !== undefined) {
      // Hold inbound frames until the connect hook has decided.
      this.#o.inbound.hold(conn);
      const decided = (ok: boolean) => {
        if (ok) return this.#o.inbound.release(conn);
        this.#o.inbound.forget(conn);
        conn[kCloseWith](CloseCode.POLICY_VIOLATION, "connection refused", "connect_refused");
      };
      const pending = this.#o.hooks.call(
        () => onConnect(conn),
        (r) => decided(r !== false),
        (e) => {
          this.#o.hooks.report(e, "connect");
          decided(false);
        },
      );
      if (pending !== undefined) this.#o.hooks.track(pending);
    }
    return events;
  }

  /** A connection closed (either side): drop it everywhere, count it, run the disconnect hook. */
  removed(conn: Connection, code: number, reason: string, cause: string): void {
    if (!this.#o.registry.remove(conn)) return;
    this.#o.admission.closed(conn);
    this.#o.inbound.forget(conn);
    this.stopAuthTimer(conn);
    const counters = this.#o.counters;
    counters.countClose(cause);
    if (counters.observers.size > 0) {
      counters.notify({
        kind: "disconnect",
        clientId: conn.id,
        userId: conn.userId,
        code,
        reason,
        cause,
        at: this.#o.clock.now(),
      });
    }
    if (this.#o.registry.clients.size === 0) this.#o.keepalive.stop();
    const onDisconnect = this.#o.options.onDisconnect;
    if (onDisconnect === undefined) return;
    // Deferred: the close may have fired inside a fan-out loop (Bun closes synchronously).
    this.#o.hooks.track(
      Promise.resolve().then(() => onDisconnect(conn, { code, reason })),
      "disconnect",
    );
  }

  /** Stop `conn`'s auth deadline (it authenticated, or closed). */
  stopAuthTimer(conn: Connection): void {
    const state = conn[kState];
    if (state?.authTimer === undefined) return;
    this.#o.clock.clearTimeout(state.authTimer);
    state.authTimer = undefined;
    settleState(conn);
  }
}
