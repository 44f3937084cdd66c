// The receive path, part 1: guard and parse. One inbound frame from an adapter is checked for
// size (close 1009), counted in UTF-8, rate-limited (frames, bytes and the fan-out budget),
// held in order behind a handler that is still running (bounded by count and bytes), parsed,
// and passed through `aroundFrame` wrappers to the dispatcher (part 2, dispatch.ts).
import { CloseCode } from "./close_codes.ts";
import type { Connection } from "./connection.ts";
import type { Counters } from "./counters.ts";
import type { Dispatcher } from "./dispatch.ts";
import type { Hooks } from "./hooks.ts";
import type { FrameInfo, FrameWrapper } from "./hub_stats.ts";
import type { Clock, InboundMessage } from "./hub_options.ts";
import type { HubLimits } from "./limits.ts";
import { RateLimiter, type RateLimitSettings, Verdict } from "./_rate_limit.ts";
import { type Backlog, kCloseWith, kState, settleState, stateOf } from "./_internal.ts";
import { utf8Length } from "../protocol/envelope.ts";
import { ErrorCode } from "../protocol/error_codes.ts";

/** What the inbound pipeline is made with. */
export interface InboundOptions {
  limits: HubLimits;
  clock: Clock;
  /** Resolved rate-limit settings; `undefined` when the rate limit is off. */
  rateLimit: RateLimitSettings | undefined;
  counters: Counters;
  hooks: Hooks;
  // deno-lint-ignore no-explicit-any
  dispatcher: Dispatcher<any>;
}

/** One hub's inbound pipeline. */
export class Inbound {
  readonly #o: InboundOptions;
  #wrappers: readonly FrameWrapper[] = [];
  /** The connection whose frame is being handled synchronously (charged for emits). */
  #sender: Connection | undefined;

  constructor(options: InboundOptions) {
    this.#o = options;
  }

  /** A frame arrived on `conn` (from its adapter). */
  receive(conn: Connection, data: string | Uint8Array): void {
    const { limits, counters, clock } = this.#o;
    const max = limits.maxMessageBytes;
    // UTF-8 bytes, as on the wire (the rate limit and stats count these).
    const bytes = typeof data !== "string"
      ? data.byteLength
      : data.length > max
      ? max + 1
      : utf8Length(data);
    if (bytes > max) {
      conn[kCloseWith](CloseCode.MESSAGE_TOO_BIG, "message too big", "message_too_big");
      return;
    }
    counters.n.messagesIn++;
    counters.n.bytesIn += bytes;
    const rl = this.#o.rateLimit;
    if (rl !== undefined) {
      const state = stateOf(conn);
      const limiter = state.limiter ??= new RateLimiter(rl, clock.now());
      const verdict = limiter.check(bytes, clock.now());
      if (verdict !== Verdict.Accept) return this.#limited(conn, verdict);
    }
    const backlog = conn[kState]?.backlog;
    if (backlog !== undefined) {
      if (
        backlog.frames.length >= limits.maxPendingMessages ||
        backlog.bytes + bytes > limits.maxPendingBytes
      ) {
        const limiter = conn[kState]?.limiter;
        return this.#limited(conn, limiter ? limiter.strike(clock.now()) : Verdict.DropAndWarn);
      }
      backlog.frames.push(data);
      backlog.sizes.push(bytes);
      backlog.bytes += bytes;
      return;
    }
    const pending = this.#handleFrom(conn, data, bytes);
    if (pending !== undefined) {
      stateOf(conn).backlog = newBacklog();
      this.#o.hooks.track(pending.then(() => this.release(conn)));
    }
  }

  /** Hold `conn`'s frames (in order) until {@linkcode Inbound.release}: its connect hook runs. */
  hold(conn: Connection): void {
    stateOf(conn).backlog = newBacklog();
  }

  /** Handle held frames in order until one goes async (it resumes after) or none are left. */
  release(conn: Connection): void {
    const state = conn[kState];
    const backlog = state?.backlog;
    if (backlog === undefined) return;
    while (backlog.frames.length > 0 && conn.state === "open") {
      const bytes = backlog.sizes.shift()!;
      backlog.bytes -= bytes;
      const pending = this.#handleFrom(conn, backlog.frames.shift()!, bytes);
      if (pending !== undefined) {
        this.#o.hooks.track(pending.then(() => this.release(conn)));
        return;
      }
    }
    state!.backlog = undefined;
    settleState(conn);
  }

  /** Drop what `conn` has held (it closed, or its connect hook refused it). */
  forget(conn: Connection): void {
    const state = conn[kState];
    if (state === undefined) return;
    state.backlog = undefined;
    settleState(conn);
  }

  /** Charge the sender of the frame being handled for `deliveries` (its emit's fan-out). */
  charge(deliveries: number): void {
    const sender = this.#sender;
    if (sender !== undefined && deliveries > 0) sender[kState]?.limiter?.charge(deliveries);
  }

  /** See `Hub.aroundFrame()`. */
  aroundFrame(fn: FrameWrapper): () => void {
    this.#wrappers = [...this.#wrappers, fn];
    return () => {
      this.#wrappers = this.#wrappers.filter((w) => w !== fn);
    };
  }

  #limited(conn: Connection, verdict: Verdict): void {
    this.#o.counters.n.rateLimited++;
    if (verdict === Verdict.Close) {
      conn[kCloseWith](CloseCode.RATE_LIMITED, "rate limited", "rate_limited");
    } else if (verdict === Verdict.DropAndWarn) {
      this.#o.dispatcher.error(conn, ErrorCode.RATE_LIMITED, "Too many messages: slow down");
    }
  }

  /** Handle one frame with `conn` as the sender the emits made meanwhile are charged to. */
  #handleFrom(
    conn: Connection,
    data: string | Uint8Array,
    bytes: number,
  ): Promise<void> | undefined {
    const outer = this.#sender;
    this.#sender = conn;
    try {
      return this.#handle(conn, data, bytes);
    } finally {
      this.#sender = outer;
    }
  }

  /** Parse one frame and dispatch it. Returns a promise only when something async is in flight. */
  #handle(conn: Connection, data: string | Uint8Array, bytes: number): Promise<void> | undefined {
    const dispatcher = this.#o.dispatcher;
    if (typeof data !== "string") {
      this.#count(conn, "binary", bytes);
      return this.#wrap(conn, "binary", bytes, () => dispatcher.binary(conn, data));
    }
    let msg: unknown;
    try {
      msg = JSON.parse(data);
    } catch {
      return this.#invalid(conn, bytes, ErrorCode.INVALID_JSON, "Message is not valid JSON");
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
      return this.#invalid(conn, bytes, ErrorCode.INVALID_INPUT, "Message must be a JSON object");
    }
    const message = msg as InboundMessage;
    const type = message.type;
    if (typeof type !== "string" || type === "") {
      return this.#invalid(conn, bytes, ErrorCode.INVALID_INPUT, "Message must have a string type");
    }
    this.#count(conn, type, bytes);
    return this.#wrap(conn, type, bytes, () => dispatcher.dispatch(conn, message, type));
  }

  #invalid(conn: Connection, bytes: number, code: string, text: string): undefined {
    this.#count(conn, "invalid", bytes);
    this.#wrap(conn, "invalid", bytes, () => void this.#o.dispatcher.error(conn, code, text));
    return undefined;
  }

  #count(conn: Connection, type: string, bytes: number): void {
    this.#o.counters.countIn(conn, type, bytes, this.#o.clock.now());
  }

  /** Run `run` inside every `aroundFrame` wrapper (first added = outermost). */
  #wrap(
    conn: Connection,
    type: string,
    bytes: number,
    run: () => Promise<void> | undefined,
  ): Promise<void> | undefined {
    const wrappers = this.#wrappers;
    if (wrappers.length === 0) return run();
    const frame: FrameInfo = {
      clientId: conn.id,
      userId: conn.userId,
      type,
      bytes,
      at: this.#o.clock.now(),
    };
    const hooks = this.#o.hooks;
    let next = run;
    for (let i = wrappers.length - 1; i >= 0; i--) {
      const wrapper = wrappers[i];
      const inner = next;
      next = () => {
        let ran = false;
        let result: Promise<void> | undefined;
        const handle = () => {
          if (ran) return result;
          ran = true;
          return result = inner();
        };
        let out: Promise<unknown> | void;
        try {
          out = wrapper(frame, handle);
        } catch (error) {
          hooks.report(error, "observer");
          return handle();
        }
        if (!ran) {
          hooks.report(new Error("aroundFrame: the wrapper did not call handle()"), "observer");
          return handle();
        }
        // A rejecting wrapper must not stall this connection's inbound queue; one that
        // returns nothing still has the hub wait for an async handler.
        if (out instanceof Promise) {
          return out.then(() => {}, (error) => hooks.report(error, "observer"));
        }
        return result;
      };
    }
    return next();
  }
}

function newBacklog(): Backlog {
  return { frames: [], sizes: [], bytes: 0 };
}
