// Keepalive: one timer per hub, running while it has connections. Each tick pings connections
// idle for pingIntervalMs and closes those silent for idleTimeoutMs (1001), where the transport
// can ping (Bun; Deno keeps alive natively), and drops the send queues of idle connections.
import { CloseCode } from "./close_codes.ts";
import type { Connection } from "./connection.ts";
import type { Clock } from "./hub_options.ts";
import type { HubLimits } from "./limits.ts";
import { kCloseWith, kCompact, kLastSeen, kPing } from "./_internal.ts";

/** The keepalive timer of one hub. */
export class Keepalive {
  readonly #clock: Clock;
  readonly #limits: HubLimits;
  readonly #clients: Map<string, Connection>;
  #timer: unknown;

  constructor(clock: Clock, limits: HubLimits, clients: Map<string, Connection>) {
    this.#clock = clock;
    this.#limits = limits;
    this.#clients = clients;
  }

  /** Run the timer (idempotent). */
  start(): void {
    if (this.#timer !== undefined) return;
    const { pingIntervalMs, idleTimeoutMs } = this.#limits;
    const every = Math.max(10, Math.min(pingIntervalMs, idleTimeoutMs) / 2);
    this.#timer = this.#clock.setInterval(() => this.#tick(), every);
  }

  /** Stop the timer (idempotent). */
  stop(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const now = this.#clock.now();
    const { pingIntervalMs, idleTimeoutMs } = this.#limits;
    for (const conn of this.#clients.values()) {
      conn[kCompact]();
      const idle = now - conn[kLastSeen];
      if (idle >= idleTimeoutMs) {
        // Only transports the hub pings are timed out here; others keep alive natively.
        if (conn[kPing]()) conn[kCloseWith](CloseCode.GOING_AWAY, "idle timeout", "idle_timeout");
      } else if (idle >= pingIntervalMs) {
        conn[kPing]();
      }
    }
  }
}
