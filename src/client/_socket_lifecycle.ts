// One client's sockets over time: open one, time out a handshake, notice it is
// gone, decide whether to try again (terminal codes, maxRetries) and when (backoff),
// and tell an upgrade refusal from a connection that opened and dropped.

import { backoffDelay } from "./backoff.ts";
import { UpgradeError } from "./errors.ts";
import type { ClientWebSocket, HubClientState } from "./hub_client_options.ts";
import type { CloseInfo } from "./lifecycle_events.ts";
import type { LifecycleEmitter } from "./_lifecycle_emitter.ts";
import type { ResolvedOptions } from "./_options.ts";
import { BATCH_PROTOCOL } from "../protocol/batch.ts";
import { normalizeCloseCode, shouldReconnect } from "../protocol/close_codes.ts";

const OPEN = 1;

/** What the socket lifecycle tells the client. */
export interface SocketHost {
  /** A message event on the current socket. */
  message(ws: ClientWebSocket, data: unknown): void;
  /** The current socket is gone: settle what depended on it (a retry may follow). */
  disconnected(info: CloseInfo): void;
  /** No more attempts: the client is closed for good. */
  stopped(info: CloseInfo): void;
}

/** How long a failed attempt's `error` may wait for its `close` before it counts as closed. */
const NO_CLOSE_AFTER_ERROR_MS = 250;

/** Where the current attempt stands, for `connect()`'s errors. */
export interface ConnectProgress {
  /** The hub's URL. */
  readonly url: string;
  /** What the client waits for now. */
  readonly waitingFor: "socket" | "established" | "authenticate" | "retry" | "nothing";
  /** Reconnect attempts in a row so far. */
  readonly attempt: number;
  /** Attempts in a row that ended before their socket opened. */
  readonly failedBeforeOpen: number;
  /** The HTTP status of the last refused upgrade, if the runtime reported it. */
  readonly status: number | undefined;
}

// "Invalid status code: 401" (Deno), "Expected 101 status code: 401" (Bun),
// "Unexpected server response: 401" (ws). Browsers say nothing.
const UPGRADE_STATUS = /(?:status code|server response)\D{0,3}(\d{3})\b/i;

/** The HTTP status of a refused upgrade, from a socket `error` event, if the runtime names it. */
export function upgradeStatus(event: unknown): number | undefined {
  const e = event as { message?: unknown; error?: { message?: unknown } } | null | undefined;
  const text = typeof e?.message === "string"
    ? e.message
    : typeof e?.error?.message === "string"
    ? e.error.message
    : "";
  const m = UPGRADE_STATUS.exec(text);
  const status = m === null ? 0 : Number(m[1]);
  return status >= 200 && status < 600 ? status : undefined;
}

/** The sockets of one client, one current at a time, and the reconnect policy. */
export class SocketLifecycle {
  readonly #url: string;
  readonly #o: ResolvedOptions;
  readonly #events: LifecycleEmitter;
  readonly #host: SocketHost;
  #state: HubClientState = "connecting";
  #ws: ClientWebSocket | undefined;
  #socketOpen = false;
  #batched = false;
  #handshaking = false;
  #closing = false;
  #serverClose: CloseInfo | undefined;
  #attempt = 0;
  #retryTimer: unknown;
  #connectTimer: unknown;
  #failedBeforeOpen = 0;
  #status: number | undefined;
  readonly #sockets = new Set<ClientWebSocket>();
  #socketsGone: (() => void)[] = [];

  constructor(url: string, options: ResolvedOptions, events: LifecycleEmitter, host: SocketHost) {
    this.#url = url;
    this.#o = options;
    this.#events = events;
    this.#host = host;
  }

  /** The client's state. */
  get state(): HubClientState {
    return this.#state;
  }

  /** The current socket, if any. */
  get ws(): ClientWebSocket | undefined {
    return this.#ws;
  }

  /** Whether the current socket negotiated batched framing. */
  get batched(): boolean {
    return this.#batched;
  }

  /** Whether `close()` was called. */
  get closing(): boolean {
    return this.#closing;
  }

  /** The socket, if app frames may be written to it right now. */
  get writable(): ClientWebSocket | undefined {
    const ws = this.#ws;
    return this.#state === "open" && ws !== undefined && ws.readyState === OPEN ? ws : undefined;
  }

  /** How the current attempt stands. */
  progress(): ConnectProgress {
    const waitingFor = this.#state === "open" || this.#state === "closed"
      ? "nothing"
      : this.#ws === undefined
      ? "retry"
      : !this.#socketOpen
      ? "socket"
      : this.#handshaking
      ? "established"
      : "authenticate";
    return {
      url: this.#url,
      waitingFor,
      attempt: this.#attempt,
      failedBeforeOpen: this.#failedBeforeOpen,
      status: this.#status,
    };
  }

  /** Open a socket (at construction, and for each retry). */
  start(): void {
    if (this.#closing || this.#state === "closed") return;
    let ws: ClientWebSocket;
    try {
      ws = new this.#o.WebSocket(this.#url, this.#o.batch ? [BATCH_PROTOCOL] : undefined);
    } catch (error) {
      this.#events.report(error, "socket");
      this.#lost(1006, "cannot open socket");
      return;
    }
    try {
      ws.binaryType = "arraybuffer";
    } catch { /* not settable: binary frames are ignored anyway */ }
    this.#ws = ws;
    this.#socketOpen = false;
    this.#batched = false;
    this.#handshaking = true;
    this.#serverClose = undefined;
    this.#sockets.add(ws);
    let opened = false;
    let status: number | undefined;
    ws.addEventListener("open", () => {
      opened = true;
      if (ws !== this.#ws) return;
      this.#socketOpen = true;
      this.#batched = ws.protocol === BATCH_PROTOCOL;
      this.#failedBeforeOpen = 0;
      this.#status = undefined;
    });
    ws.addEventListener(
      "message",
      (event: { data: unknown }) => this.#host.message(ws, event.data),
    );
    let ended = false;
    let noClose: unknown;
    ws.addEventListener("error", (event: unknown) => {
      // A close event follows; reconnecting happens there. Not from Node 20's WebSocket
      // (undici 6) after a refused handshake: it stays CONNECTING. So a failed attempt that
      // has no close event soon after its error is ended here.
      if (opened) return;
      status = upgradeStatus(event);
      noClose ??= this.#o.timers.setTimeout(() => {
        if (ended) return;
        try {
          ws.close();
        } catch { /* not closable while connecting: dropped below */ }
        closed({ code: 1006, reason: "" });
      }, NO_CLOSE_AFTER_ERROR_MS);
    });
    const closed = (event: { code?: number; reason?: string }) => {
      if (ended) return;
      ended = true;
      if (noClose !== undefined) this.#o.timers.clearTimeout(noClose);
      this.#socketGone(ws);
      if (ws !== this.#ws) return;
      let reason = event.reason ?? "";
      if (!opened) {
        this.#failedBeforeOpen++;
        this.#status = status;
        if (status !== undefined) {
          const refusal = new UpgradeError(status, this.#failedBeforeOpen, this.#url);
          if (reason === "") reason = refusal.reason;
          this.#events.report(refusal, "socket");
          if (ws !== this.#ws) return;
        }
      }
      this.#lost(event.code ?? 1006, reason);
    };
    ws.addEventListener("close", closed);
    const ms = this.#o.connectTimeoutMs;
    if (ms > 0 && Number.isFinite(ms)) {
      this.#connectTimer = this.#o.timers.setTimeout(() => {
        this.#connectTimer = undefined;
        if (ws === this.#ws) this.abandon(ws, "connect timeout");
      }, ms);
    }
  }

  /** `connection.established` arrived: `false` if it is not the one the handshake waits for. */
  established(): boolean {
    if (!this.#handshaking) return false;
    this.#handshaking = false;
    return true;
  }

  /** The server said why it closes (`connection.closed`): used if the socket then drops without a code. */
  serverClosing(info: CloseInfo): void {
    this.#serverClose = info;
  }

  /** The client is open: the connect timeout ends, the attempt count resets. */
  opened(): void {
    this.#stopConnectTimer();
    this.#attempt = 0;
    this.#state = "open";
  }

  /** Give up on a socket now (dead or too slow): close it and carry on as if it had closed. */
  abandon(ws: ClientWebSocket, reason: string): void {
    try {
      ws.close(1000, reason);
    } catch { /* already closing */ }
    this.#lost(1006, reason);
  }

  /** `close()`: no more attempts; the current socket closes with the caller's code. */
  shutdown(code: number, reason: string): void {
    this.#closing = true;
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws === undefined) return;
    try {
      ws.close(code, reason);
    } catch { /* already closing */ }
  }

  /** Closed for good: timers stop. `false` if it already was. */
  finish(): boolean {
    if (this.#state === "closed") return false;
    this.#state = "closed";
    this.#stopConnectTimer();
    if (this.#retryTimer !== undefined) {
      this.#o.timers.clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    return true;
  }

  /** Resolves once every socket has closed (or after `closeTimeoutMs`). */
  socketsClosed(): Promise<void> {
    if (this.#sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timers = this.#o.timers;
      const timer = timers.setTimeout(done, this.#o.closeTimeoutMs);
      function done() {
        timers.clearTimeout(timer);
        resolve();
      }
      this.#socketsGone.push(done);
    });
  }

  #socketGone(ws: ClientWebSocket): void {
    if (!this.#sockets.delete(ws) || this.#sockets.size > 0) return;
    const waiters = this.#socketsGone;
    this.#socketsGone = [];
    for (const w of waiters) w();
  }

  #stopConnectTimer(): void {
    if (this.#connectTimer === undefined) return;
    this.#o.timers.clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
  }

  /** The current socket is gone: settle what depended on it, then reconnect or stop. */
  #lost(code: number, reason: string): void {
    this.#ws = undefined;
    this.#handshaking = false;
    this.#stopConnectTimer();
    const wasOpen = this.#state === "open";
    let info: CloseInfo = { code: normalizeCloseCode(code), reason };
    const server = this.#serverClose;
    if (server !== undefined && (info.code === 1005 || info.code === 1006)) info = server;
    this.#serverClose = undefined;
    this.#host.disconnected(info);
    if (this.#closing) return;
    if (!shouldReconnect(info.code) || this.#attempt >= this.#o.maxRetries) {
      this.#host.stopped(info);
      return;
    }
    if (wasOpen) this.#events.emit("close", { ...info, willReconnect: true });
    if (this.#closing) return;
    this.#attempt++;
    const delayMs = backoffDelay(this.#attempt, this.#o.backoff, this.#o.random);
    this.#state = "reconnecting";
    this.#events.emit("reconnecting", { attempt: this.#attempt, delayMs });
    if (this.#closing) return;
    this.#retryTimer = this.#o.timers.setTimeout(() => {
      this.#retryTimer = undefined;
      this.start();
    }, delayMs);
  }
}
