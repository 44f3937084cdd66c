/**
 * An opt-in inspector page for a hub: live connections, users, top rooms,
 * message rates, slow clients, closes and refusals by cause, backplane health,
 * the last inbound frames, and charts of connections, messages/s in and out and
 * queued bytes over the last 5 minutes (kept by the page from the snapshots it
 * got). Plain HTML, CSS and JS served by the hub's own process (no CDN, inline
 * SVG), runtime-neutral (`Request` → `Response`), no dependencies.
 *
 * - `GET <path>`: the page. `GET <path>/data`: one JSON snapshot.
 *   `GET <path>/events`: a Server-Sent Events stream of snapshots, one per
 *   `intervalMs`, which the page reads (it falls back to polling `/data`).
 * - Every request goes through `authorize` first: `false` → 403. There is no
 *   default: decide who may see it (an admin session, a token, localhost only).
 * - Frames are listed by type, client id, user id, size and time: never their
 *   contents. Each one costs the hub an observer call (see `hub.observe()`).
 * - Streams end on `inspector.close()` and, within one interval, once the hub
 *   is closed, so a server's graceful shutdown is not held up.
 *
 * Why Server-Sent Events and not a WebSocket: a second hub would need the
 * runtime's adapter passed in and, on Bun, its `websocket` handlers merged
 * with the app's (one per server); SSE is a plain streamed `Response`, works
 * behind any router and proxy, reconnects by itself in the browser, and does
 * not count as hub traffic.
 *
 * @example Deno
 * ```ts ignore
 * import { Hub } from "@hubbub/hubbub";
 * import { createDenoHandler } from "@hubbub/hubbub/deno";
 * import { createInspector } from "@hubbub/hubbub/inspector";
 *
 * const hub = new Hub();
 * const ws = createDenoHandler(hub);
 * const inspector = createInspector(hub, {
 *   authorize: (req) => req.headers.get("authorization") === `Bearer ${Deno.env.get("ADMIN")}`,
 * });
 * Deno.serve(async (req) =>
 *   (await inspector.fetch(req)) ??
 *     (new URL(req.url).pathname === "/ws" ? ws(req) : new Response("Not found", { status: 404 }))
 * );
 * ```
 *
 * @example Hono
 * ```ts ignore
 * import { createInspector, inspectorRoute } from "@hubbub/hubbub/inspector";
 * const inspector = createInspector(hub, { authorize: isAdmin });
 * app.use("/inspect/*", inspectorRoute(inspector));
 * ```
 *
 * @module
 */

import type { Hub } from "../core/hub.ts";
import type { HubStats, Traffic } from "../core/hub_stats.ts";
import type { BackplaneStats } from "../core/backplane.ts";
import { page, SCRIPT, STYLE } from "./_page.ts";

/** Options for {@linkcode createInspector}. */
export interface InspectorOptions {
  /**
   * Who may see the inspector: called for every request (page, data, stream).
   * Return `false` for a 403. A throw propagates (the server answers 500).
   */
  authorize: (request: Request) => boolean | Promise<boolean>;
  /**
   * Where the page is served; `<path>/data` and `<path>/events` too.
   * URL-path characters only, starting with `/`, no trailing `/`.
   * @default {"/inspect"}
   */
  path?: string;
  /**
   * How many recent inbound frames to keep and show.
   * @default {50}
   */
  recentFrames?: number;
  /**
   * How many of the largest rooms to show.
   * @default {10}
   */
  topRooms?: number;
  /**
   * How many of the connections with the most queued bytes to show.
   * @default {10}
   */
  slowClients?: number;
  /**
   * How often the event stream sends a snapshot, in ms.
   * @default {1000}
   */
  intervalMs?: number;
  /**
   * Most event streams open at once; more get 503. Each costs a snapshot per interval.
   * @default {8}
   */
  maxStreams?: number;
  /**
   * Shown in the page title, e.g. the app's or the endpoint's name.
   * @default {hub.describe().endpoint.description ?? "hub"}
   */
  title?: string;
}

/** One inbound frame, as the inspector lists it (no contents). */
export interface InspectedFrame {
  /** Message type (`"binary"`, `"invalid"` as in `HubStats.inByType`). */
  readonly type: string;
  /** Client id. */
  readonly clientId: string;
  /** User id, when the connection has one. */
  readonly userId?: string;
  /** Frame size (UTF-16 units for text). */
  readonly bytes: number;
  /** When (Unix ms, the hub's clock). */
  readonly at: number;
}

/** What `<path>/data` and each `<path>/events` message carry. */
export interface InspectorSnapshot {
  /** When the snapshot was taken (Unix ms). */
  readonly at: number;
  /** Open connections now. */
  readonly connections: number;
  /** Distinct users now. */
  readonly users: number;
  /** Non-empty rooms now. */
  readonly rooms: number;
  /** The largest rooms, biggest first. */
  readonly topRooms: HubStats["topRooms"];
  /** Connections accepted since start. */
  readonly connectionsOpened: number;
  /** Connections closed since start. */
  readonly connectionsClosed: number;
  /** Inbound frames and bytes since start. */
  readonly in: Traffic;
  /** Outbound deliveries and bytes since start. */
  readonly out: Traffic;
  /** `emit`/`broadcastRaw`/`sendTo` calls since start. */
  readonly emits: number;
  /** Per-second rates over the time since the previous snapshot (0 for the first). */
  readonly rates: {
    readonly inPerSec: number;
    readonly outPerSec: number;
    readonly inBytesPerSec: number;
    readonly outBytesPerSec: number;
  };
  /** Bytes waiting in send queues now: total, max and p99 per connection. */
  readonly queuedBytes: HubStats["queuedBytes"];
  /** The connections with the most queued bytes (only those with some), most first. */
  readonly slowClients: readonly {
    readonly clientId: string;
    readonly userId?: string;
    readonly queuedBytes: number;
  }[];
  /** Closes by cause since start (`slow_client`, `client`, ...). */
  readonly closes: HubStats["closes"];
  /** Refused upgrades by reason since start. */
  readonly refused: HubStats["refused"];
  /** Inbound frames dropped by the rate limit since start. */
  readonly rateLimited: number;
  /** Backplane health and counters (`ok` and `error` flattened from `health`). */
  readonly backplane: Omit<BackplaneStats, "health"> & {
    readonly ok: boolean;
    readonly error?: string;
  };
  /** Inbound frames seen since the inspector was created. */
  readonly framesSeen: number;
  /** The last `recentFrames` inbound frames, newest first. */
  readonly recentFrames: readonly InspectedFrame[];
}

/** What {@linkcode createInspector} returns. */
export interface Inspector {
  /** The page's path. */
  readonly path: string;
  /**
   * Handle a request: a response for the inspector's paths (403 when
   * `authorize` refuses), `undefined` for any other path (pass it on).
   *
   * @param request The request.
   * @returns The response, or `undefined` when the path is not the inspector's.
   */
  fetch(request: Request): Promise<Response | undefined>;
  /**
   * Take a snapshot now (what `<path>/data` returns).
   * @returns The snapshot.
   */
  snapshot(): InspectorSnapshot;
  /** Stop observing the hub and end every open event stream. Idempotent. */
  close(): void;
  /** Same as `close()`. */
  [Symbol.dispose](): void;
}

const PATH = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/;

function positive(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`Cannot create inspector: ${name} must be an integer ≥ ${min}`);
  }
  return value;
}

/**
 * Create an inspector for a hub. It starts recording inbound frames at once.
 *
 * @param hub The hub.
 * @param options `authorize` (required), path, list sizes, stream interval.
 * @returns The inspector: mount its `fetch` in front of the app's handler.
 * @throws {TypeError} If `authorize` is missing or `path` is not a plain URL path.
 * @throws {RangeError} If a size or the interval is out of range.
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * import { createInspector } from "@hubbub/hubbub/inspector";
 *
 * const hub = new Hub();
 * const inspector = createInspector(hub, {
 *   // Demo only: trust the loopback Host header. Check a real session in an app.
 *   authorize: (req) => new URL(req.url).hostname === "localhost",
 * });
 * const res = await inspector.fetch(new Request("http://localhost/inspect/data"));
 * console.log(res?.status); // 200
 * inspector.close();
 * await hub.close();
 * ```
 */
// deno-lint-ignore no-explicit-any
export function createInspector(hub: Hub<any>, options: InspectorOptions): Inspector {
  if (typeof options?.authorize !== "function") {
    throw new TypeError("Cannot create inspector: options.authorize is required");
  }
  const path = options.path ?? "/inspect";
  if (!PATH.test(path) || path.length < 2 || path.endsWith("/")) {
    throw new TypeError(`Cannot create inspector: invalid path "${path}"`);
  }
  const keep = positive("recentFrames", options.recentFrames ?? 50, 0);
  const top = positive("topRooms", options.topRooms ?? 10, 0);
  const slowN = positive("slowClients", options.slowClients ?? 10, 0);
  const intervalMs = positive("intervalMs", options.intervalMs ?? 1000, 1);
  const maxStreams = positive("maxStreams", options.maxStreams ?? 8, 1);
  // A stream whose reader has not taken a snapshot for this many intervals (about 30 s) is
  // ended: backpressure means skipping snapshots (the next one supersedes them), not queueing.
  const stalledAfter = Math.max(3, Math.ceil(30_000 / intervalMs));
  const title = options.title ?? hub.describe().endpoint.description ?? "hub";
  const authorize = options.authorize;

  // Recent frames: a ring buffer filled synchronously by the observer.
  const ring: (InspectedFrame | undefined)[] = new Array(keep);
  let seen = 0;
  let unobserve: (() => void) | undefined = hub.observe((event) => {
    if (event.kind !== "frame") return;
    seen++;
    if (keep === 0) return;
    const userId = hub.connection(event.clientId)?.userId;
    ring[(seen - 1) % keep] = {
      type: event.type.length > 128 ? event.type.slice(0, 128) : event.type,
      clientId: event.clientId,
      ...(userId !== undefined ? { userId } : {}),
      bytes: event.bytes,
      at: event.at,
    };
  });

  let prev: { t: number; s: HubStats } | undefined;
  let lastRates: InspectorSnapshot["rates"] = {
    inPerSec: 0,
    outPerSec: 0,
    inBytesPerSec: 0,
    outBytesPerSec: 0,
  };

  function snapshot(): InspectorSnapshot {
    const all = hub.stats({ topRooms: Math.max(1, top) });
    const s = top === 0 ? { ...all, topRooms: [] } : all;
    const t = performance.now();
    if (prev === undefined) {
      prev = { t, s };
    } else if (t - prev.t >= Math.min(200, intervalMs / 2)) {
      const dt = (t - prev.t) / 1000;
      lastRates = {
        inPerSec: (s.in.messages - prev.s.in.messages) / dt,
        outPerSec: (s.out.messages - prev.s.out.messages) / dt,
        inBytesPerSec: (s.in.bytes - prev.s.in.bytes) / dt,
        outBytesPerSec: (s.out.bytes - prev.s.out.bytes) / dt,
      };
      prev = { t, s };
    }
    const slow: { clientId: string; userId?: string; queuedBytes: number }[] = [];
    if (slowN > 0 && s.queuedBytes.max > 0) {
      for (const c of hub.connections()) {
        const q = c.queuedBytes;
        if (q === 0) continue;
        if (slow.length < slowN || q > slow[slow.length - 1].queuedBytes) {
          slow.push({
            clientId: c.id,
            ...(c.userId !== undefined ? { userId: c.userId } : {}),
            queuedBytes: q,
          });
          slow.sort((a, b) => b.queuedBytes - a.queuedBytes);
          if (slow.length > slowN) slow.pop();
        }
      }
    }
    const recent: InspectedFrame[] = [];
    for (let i = 0; i < Math.min(seen, keep); i++) recent.push(ring[(seen - 1 - i) % keep]!);
    const { health, ...bp } = s.backplane;
    return {
      at: Date.now(),
      connections: s.connections,
      users: s.users,
      rooms: s.rooms,
      topRooms: s.topRooms,
      connectionsOpened: s.connectionsOpened,
      connectionsClosed: s.connectionsClosed,
      in: s.in,
      out: s.out,
      emits: s.emits,
      rates: lastRates,
      queuedBytes: s.queuedBytes,
      slowClients: slow,
      closes: s.closes,
      refused: s.refused,
      rateLimited: s.rateLimited,
      backplane: {
        ...bp,
        ok: health.ok,
        ...(health.error !== undefined ? { error: health.error } : {}),
      },
      framesSeen: seen,
      recentFrames: recent,
    };
  }

  // Event streams share one timer, running only while a stream is open. Each maps to how
  // many snapshots in a row it skipped because its reader was not keeping up.
  const streams = new Map<ReadableStreamDefaultController<Uint8Array>, number>();
  const encoder = new TextEncoder();
  let timer: ReturnType<typeof setInterval> | undefined;
  let closed = false;

  function endStreams(): void {
    for (const c of streams.keys()) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    streams.clear();
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  }

  function push(): void {
    if (hub.closed) return endStreams();
    const chunk = encoder.encode(`data: ${JSON.stringify(snapshot())}\n\n`);
    for (const [c, skipped] of streams) {
      try {
        if ((c.desiredSize ?? 0) <= 0) {
          // Not read since the last one: skip (never queue without bound); end it if stalled.
          if (skipped + 1 >= stalledAfter) {
            streams.delete(c);
            c.error(new Error("inspector stream stalled"));
          } else streams.set(c, skipped + 1);
          continue;
        }
        c.enqueue(chunk);
        streams.set(c, 0);
      } catch {
        streams.delete(c);
      }
    }
    if (streams.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  function eventStream(): Response {
    if (streams.size >= maxStreams) {
      return new Response("Too many inspector streams", {
        status: 503,
        headers: {
          ...SECURITY_HEADERS,
          "content-type": "text/plain; charset=utf-8",
          "retry-after": "5",
        },
      });
    }
    let self: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        self = controller;
        if (closed || hub.closed) {
          controller.close();
          return;
        }
        streams.set(controller, 0);
        controller.enqueue(encoder.encode(
          `retry: 2000\n\ndata: ${JSON.stringify(snapshot())}\n\n`,
        ));
        timer ??= setInterval(push, intervalMs);
      },
      cancel() {
        if (self !== undefined) streams.delete(self);
        if (streams.size === 0 && timer !== undefined) {
          clearInterval(timer);
          timer = undefined;
        }
      },
    });
    return new Response(body, {
      headers: {
        ...SECURITY_HEADERS,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  }

  let csp: Promise<string> | undefined;
  const html = page(path, title);

  async function fetch(request: Request): Promise<Response | undefined> {
    const { pathname } = new URL(request.url);
    if (pathname !== path && !pathname.startsWith(path + "/")) return undefined;
    if (!(await authorize(request))) {
      return new Response("Forbidden", {
        status: 403,
        headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8" },
      });
    }
    const sub = pathname.slice(path.length);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Method not allowed", {
        status: 405,
        headers: { ...SECURITY_HEADERS, allow: "GET, HEAD" },
      });
    }
    const head = request.method === "HEAD";
    if (sub === "" || sub === "/") {
      csp ??= contentSecurityPolicy();
      return new Response(head ? null : html, {
        headers: {
          ...SECURITY_HEADERS,
          "content-type": "text/html; charset=utf-8",
          "content-security-policy": await csp,
          "cache-control": "no-store",
        },
      });
    }
    if (sub === "/data") {
      return new Response(head ? null : JSON.stringify(snapshot()), {
        headers: {
          ...SECURITY_HEADERS,
          "content-type": "application/json; charset=utf-8",
          "cache-control": "no-store",
        },
      });
    }
    if (sub === "/events" && !head) return eventStream();
    return new Response("Not found", { status: 404, headers: SECURITY_HEADERS });
  }

  function close(): void {
    if (closed) return;
    closed = true;
    unobserve?.();
    unobserve = undefined;
    endStreams();
  }

  return { path, fetch, snapshot, close, [Symbol.dispose]: close };
}

/** The parts of Hono's `Context` {@linkcode inspectorRoute} uses. */
export interface InspectorRouteContext {
  /** Hono's request wrapper. */
  req: { raw: Request };
}

/**
 * A Hono middleware serving an inspector: `app.use("/inspect/*", inspectorRoute(inspector))`.
 * Requests outside the inspector's paths go on to the next handler. This
 * module does not import Hono.
 *
 * @param inspector The inspector.
 * @returns The middleware.
 * @example
 * ```ts ignore
 * import { Hono } from "hono";
 * import { createInspector, inspectorRoute } from "@hubbub/hubbub/inspector";
 * const app = new Hono();
 * app.use("/inspect/*", inspectorRoute(createInspector(hub, { authorize: isAdmin })));
 * ```
 */
export function inspectorRoute(
  inspector: Inspector,
): (c: InspectorRouteContext, next: () => Promise<void>) => Promise<Response | undefined> {
  return async (c, next) => {
    const response = await inspector.fetch(c.req.raw);
    if (response !== undefined) return response;
    await next();
    return undefined;
  };
}

const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  let bin = "";
  for (const b of new Uint8Array(digest)) bin += String.fromCharCode(b);
  return btoa(bin);
}

async function contentSecurityPolicy(): Promise<string> {
  const [script, style] = await Promise.all([sha256(SCRIPT), sha256(STYLE)]);
  return `default-src 'none'; script-src 'sha256-${script}'; style-src 'sha256-${style}'; ` +
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; " +
    "frame-ancestors 'none'";
}
