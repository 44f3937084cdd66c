// One socket's link to the hub, from the accepted upgrade to the close, the same on every
// runtime: the socket opens → `decision.open(transport)` (once); frames → the hub's sink; the
// socket closes before it opened → `decision.cancel()` (the slot is released), after → the
// sink's close. The Deno, Hono and Bun adapters build on it (Bun's transport is one).
import type { AcceptedUpgrade } from "../core/hub.ts";
import type { SocketEvents, Transport } from "../core/transport.ts";
import { normalizeCloseCode } from "../protocol/close_codes.ts";

/** A socket's binding to the hub's acceptance and then to its event sink. */
export class SocketBinding {
  /** The hub's acceptance, until the socket opens (then dropped: idle memory matters). */
  decision: AcceptedUpgrade | undefined;
  /** The hub's event sink, once the socket opened (dropped again when it closes). */
  events: SocketEvents | undefined = undefined;

  /** @param decision The hub's acceptance (or set `decision` later). */
  constructor(decision?: AcceptedUpgrade) {
    this.decision = decision;
  }

  /** The socket opened: register it with the hub, once. */
  opened(transport: Transport): void {
    const decision = this.decision;
    if (decision === undefined) return;
    this.decision = undefined;
    this.events = decision.open(transport);
  }

  /** A frame arrived (bytes a WHATWG socket gives as a Blob arrive as a promise). */
  received(data: string | Uint8Array | Promise<Uint8Array>): void {
    if (data instanceof Promise) data.then((d) => this.events?.message(d));
    else this.events?.message(data);
  }

  /**
   * The socket closed, before or after it opened. Idempotent. Lets go of the hub's objects:
   * a runtime may keep the socket, and this binding, alive after an abrupt disconnect (Deno).
   */
  closed(code: number, reason: string): void {
    const events = this.events;
    this.events = undefined;
    if (events !== undefined) events.close(normalizeCloseCode(code), reason);
    else this.decision?.cancel();
    this.decision = undefined;
  }
}
