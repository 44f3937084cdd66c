/**
 * A Prometheus scrape endpoint for a hub: `hub.stats()` in the text
 * exposition format (version 0.0.4). Runtime-neutral, no dependencies.
 *
 * - Counters end in `_total` and are monotonic since the hub started;
 *   gauges are current values.
 * - Labels: `type` (message type), `cause` (close cause), `reason` (refused
 *   upgrade), `room` (the largest rooms only). Label values are escaped.
 *   Message types are capped by the hub (256, then `"other"`), so a client
 *   cannot blow up the series count.
 * - Each scrape takes one `hub.stats()` snapshot: cheap, one walk of the
 *   connections and of the rooms.
 *
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * import { prometheusHandler } from "@hubbub/hubbub/prometheus";
 *
 * const hub = new Hub();
 * const metrics = prometheusHandler(hub);
 * const serve = (req: Request): Response =>
 *   new URL(req.url).pathname === "/metrics" ? metrics(req) : new Response("Not found", { status: 404 });
 * const res = serve(new Request("http://localhost/metrics"));
 * console.log(res.headers.get("content-type")); // text/plain; version=0.0.4; charset=utf-8
 * await hub.close();
 * ```
 *
 * @module
 */

import type { Hub } from "./core/hub.ts";
import { STATS_METRICS } from "./_stats_metrics.ts";

/** The content type of the text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Options for {@linkcode prometheusMetrics} and {@linkcode prometheusHandler}. */
export interface PrometheusOptions {
  /**
   * Prepended to every metric name. Must match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
   * @default {"hubbub_"}
   */
  prefix?: string;
  /**
   * How many of the largest rooms to export as `room_members{room="..."}`
   * (room names become label values; 0 exports none).
   * @default {10}
   */
  topRooms?: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/**
 * Render a hub's stats in the Prometheus text exposition format 0.0.4.
 *
 * @param hub The hub.
 * @param options Metric name prefix and how many rooms to list.
 * @returns The exposition text (ends with a newline).
 * @throws {TypeError} If `prefix` is not a valid metric name prefix.
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * import { prometheusMetrics } from "@hubbub/hubbub/prometheus";
 *
 * const hub = new Hub();
 * const text = prometheusMetrics(hub, { prefix: "chat_" });
 * console.log(text.includes("# TYPE chat_connections gauge")); // true
 * await hub.close();
 * ```
 */
// deno-lint-ignore no-explicit-any
export function prometheusMetrics(hub: Hub<any>, options: PrometheusOptions = {}): string {
  const prefix = options.prefix ?? "hubbub_";
  if (prefix !== "" && !NAME.test(prefix)) {
    throw new TypeError(`Cannot render metrics: invalid prefix "${prefix}"`);
  }
  const top = Math.max(0, options.topRooms ?? 10);
  // (stats() needs at least 1 room; trim to `top` below.)
  const all = hub.stats({ topRooms: Math.max(1, top) });
  const stats = top === 0 ? { ...all, topRooms: [] } : all;
  const lines: string[] = [];
  for (const m of STATS_METRICS) {
    const name = prefix + m.name + (m.kind === "counter" ? "_total" : "");
    lines.push(`# HELP ${name} ${escapeHelp(m.help)}`, `# TYPE ${name} ${m.kind}`);
    for (const s of m.read(stats)) lines.push(name + labels(s.labels) + " " + number(s.value));
  }
  return lines.join("\n") + "\n";
}

/**
 * A request handler serving {@linkcode prometheusMetrics} with the right
 * content type: 200 for `GET` and `HEAD`, 405 otherwise. Mount it at the
 * path you scrape (e.g. `/metrics`) and protect it like any internal endpoint.
 *
 * @param hub The hub.
 * @param options Passed to {@linkcode prometheusMetrics}.
 * @returns `(request) => Response`.
 * @throws {TypeError} If `prefix` is not a valid metric name prefix.
 * @example
 * ```ts ignore
 * import { prometheusHandler } from "@hubbub/hubbub/prometheus";
 * const metrics = prometheusHandler(hub);
 * Deno.serve((req) => new URL(req.url).pathname === "/metrics" ? metrics(req) : app(req));
 * ```
 */
export function prometheusHandler(
  // deno-lint-ignore no-explicit-any
  hub: Hub<any>,
  options: PrometheusOptions = {},
): (request: Request) => Response {
  const prefix = options.prefix ?? "hubbub_";
  if (prefix !== "" && !NAME.test(prefix)) {
    throw new TypeError(`Cannot serve metrics: invalid prefix "${prefix}"`);
  }
  return (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Method not allowed", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    const body = prometheusMetrics(hub, options);
    return new Response(request.method === "HEAD" ? null : body, {
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
    });
  };
}

function labels(l: Readonly<Record<string, string>>): string {
  const keys = Object.keys(l);
  if (keys.length === 0) return "";
  return "{" + keys.map((k) => `${k}="${escapeLabel(l[k])}"`).join(",") + "}";
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function number(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}
