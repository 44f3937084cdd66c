/**
 * OpenTelemetry for a hub, through `@opentelemetry/api` only: the app brings
 * its SDK and exporter (or passes its own `tracer` and `meter`).
 *
 * - **Spans**:
 *   - `hubbub.frame <type>` (kind `CONSUMER`, a root span): one per inbound
 *     frame the hub accepted (after the rate limit), from `hub.aroundFrame()`:
 *     it spans validation and the handler (until an async handler settles) and
 *     is the active span meanwhile, so the handler's emits are its children.
 *   - `hubbub.emit <type>` (kind `PRODUCER`): one per `emit()` / `broadcastRaw()`,
 *     spanning the fan-out loop, from `hub.observe()`. Its parent is the active
 *     span: the frame's, or an app span around the call.
 *   - No span covers a whole connection. Span names use the first 256 distinct
 *     types, then `other` (the type attribute still says which), so a client
 *     cannot make span names unbounded.
 * - **Metrics**, read from `hub.stats()` in one batch callback per collection:
 *   observable gauges (connections, users, rooms, queued bytes, backplane
 *   health) and observable counters (messages and bytes in and out by type,
 *   closes by cause, refusals by reason, rate-limited frames, emits). The same
 *   metrics as `@hubbub/hubbub/prometheus`, with OpenTelemetry names.
 *
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * import { instrumentHub } from "@hubbub/hubbub/otel";
 *
 * const hub = new Hub();
 * // Uses the global tracer and meter providers your OpenTelemetry SDK registered.
 * const stop = instrumentHub(hub);
 * // ...
 * stop();
 * await hub.close();
 * ```
 *
 * @module
 */

import { context, metrics, type Span, SpanKind, trace, ValueType } from "@opentelemetry/api";
import type { Hub } from "../core/hub.ts";
import type { HubEvent } from "../core/hub_stats.ts";
import { STATS_METRICS, type StatsMetric } from "../_stats_metrics.ts";

// The OpenTelemetry types this module uses, described structurally (any
// `Tracer` and `Meter` from `@opentelemetry/api` fits), so its public API
// does not re-export the API package's types.

/** Span and metric attributes. */
export type OtelAttributes = Record<string, string | number | boolean | undefined>;

/** The parts of an OpenTelemetry `Span` this module uses. */
export interface OtelSpan {
  /**
   * End the span.
   * @param endTime When it ended (Unix ms).
   */
  end(endTime?: number): void;
}

/** The span options this module passes to `Tracer.startSpan`. */
export interface OtelSpanOptions {
  /** `SpanKind`. */
  kind?: number;
  /** Start a new trace, ignoring the active context. */
  root?: boolean;
  /** When it started (Unix ms). */
  startTime?: number;
  /** Attributes. */
  attributes?: OtelAttributes;
}

/** The parts of an OpenTelemetry `Tracer` this module uses (any `Tracer` fits). */
export interface OtelTracer {
  /**
   * Start a span (child of the active context unless `root`).
   * @param name Span name.
   * @param options Kind, start time, attributes.
   */
  startSpan(name: string, options?: OtelSpanOptions): OtelSpan;
}

/** An observable instrument (opaque here). */
export type OtelObservable = object;

/** The metric options this module passes when it creates instruments. */
export interface OtelMetricOptions {
  /** What it measures. */
  description?: string;
  /** UCUM unit. */
  unit?: string;
  /** `ValueType`. */
  valueType?: number;
}

/** What a batch observable callback receives. */
export interface OtelBatchResult {
  /**
   * Record one value.
   * @param observable The instrument.
   * @param value The value.
   * @param attributes Its attributes.
   */
  observe(observable: OtelObservable, value: number, attributes?: OtelAttributes): void;
}

/** The parts of an OpenTelemetry `Meter` this module uses (any `Meter` fits). */
export interface OtelMeter {
  /**
   * Create an observable counter.
   * @param name Instrument name.
   * @param options Description, unit, value type.
   */
  createObservableCounter(name: string, options?: OtelMetricOptions): OtelObservable;
  /**
   * Create an observable gauge.
   * @param name Instrument name.
   * @param options Description, unit, value type.
   */
  createObservableGauge(name: string, options?: OtelMetricOptions): OtelObservable;
  /**
   * Read several instruments in one callback per collection.
   * @param callback The callback.
   * @param observables The instruments it reports.
   */
  addBatchObservableCallback(
    callback: (result: OtelBatchResult) => void,
    observables: OtelObservable[],
  ): void;
  /**
   * Remove a batch callback.
   * @param callback The callback.
   * @param observables The instruments it reported.
   */
  removeBatchObservableCallback(
    callback: (result: OtelBatchResult) => void,
    observables: OtelObservable[],
  ): void;
}

/** Options for {@linkcode instrumentHub}. */
export interface InstrumentHubOptions {
  /**
   * The tracer for frame and emit spans.
   * @default {trace.getTracer("hubbub")}
   */
  tracer?: OtelTracer;
  /**
   * The meter for the stats instruments.
   * @default {metrics.getMeter("hubbub")}
   */
  meter?: OtelMeter;
  /**
   * Record spans (one per inbound frame and one per emit).
   * @default {true}
   */
  traces?: boolean;
  /**
   * Register the metric instruments.
   * @default {true}
   */
  metrics?: boolean;
  /**
   * Attributes added to every span and metric point, e.g.
   * `{ "hubbub.endpoint": "chat" }` to tell several hubs apart.
   * @default {{}}
   */
  attributes?: OtelAttributes;
  /**
   * How many of the largest rooms to report in `hubbub.room.members`
   * (room names become attribute values; 0 reports none).
   * @default {10}
   */
  topRooms?: number;
}

/** Span and metric attribute keys this module sets. */
export const OtelAttribute = {
  /** The connection's client id (spans of frames). */
  CLIENT_ID: "hubbub.client.id",
  /** The connection's user id, when it has one (spans of frames). */
  USER_ID: "hubbub.user.id",
  /** The message or event type (spans; metrics by type). */
  MESSAGE_TYPE: "hubbub.message.type",
  /** The frame size in bytes (UTF-16 units for inbound text, UTF-8 bytes outbound). */
  MESSAGE_BYTES: "hubbub.message.bytes",
  /** Local recipients of an emit. */
  RECIPIENTS: "hubbub.emit.recipients",
  /** Time spent in the emit's fan-out loop, ms. */
  FANOUT_MS: "hubbub.emit.fanout_ms",
  /** Close cause (`hubbub.connections.closed`), as in `HubStats.closes`. */
  CLOSE_CAUSE: "hubbub.close.cause",
  /** Refusal reason (`hubbub.upgrades.refused`), as in `HubStats.refused`. */
  REFUSAL_REASON: "hubbub.refusal.reason",
  /** Room name (`hubbub.room.members`). */
  ROOM: "hubbub.room",
} as const;

const LABEL_KEYS: Record<string, string> = {
  type: OtelAttribute.MESSAGE_TYPE,
  cause: OtelAttribute.CLOSE_CAUSE,
  reason: OtelAttribute.REFUSAL_REASON,
  room: OtelAttribute.ROOM,
};

const MAX_NAMED_TYPES = 256;
const MAX_TYPE_LENGTH = 128;

/**
 * Trace and meter a hub with OpenTelemetry. Call once per hub.
 *
 * @param hub The hub.
 * @param options Tracer, meter, what to record, extra attributes.
 * @returns A function that stops recording spans and unregisters the metric
 *   callback (idempotent). The instruments stay registered with the meter
 *   and report nothing afterwards.
 * @throws {RangeError} If `topRooms` is negative.
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * import { instrumentHub } from "@hubbub/hubbub/otel";
 * import { metrics, trace } from "@opentelemetry/api";
 *
 * const hub = new Hub();
 * const stop = instrumentHub(hub, {
 *   tracer: trace.getTracer("chat"),
 *   meter: metrics.getMeter("chat"),
 *   attributes: { "hubbub.endpoint": "chat" },
 * });
 * stop();
 * await hub.close();
 * ```
 */
export function instrumentHub(
  // deno-lint-ignore no-explicit-any
  hub: Hub<any>,
  options: InstrumentHubOptions = {},
): () => void {
  const topRooms = options.topRooms ?? 10;
  if (!(topRooms >= 0)) throw new RangeError("Cannot instrument hub: topRooms must be ≥ 0");
  const base = options.attributes ?? {};
  const stops: (() => void)[] = [];
  if (options.traces !== false) {
    stops.push(traceHub(hub, options.tracer ?? trace.getTracer("hubbub"), base));
  }
  if (options.metrics !== false) {
    stops.push(meterHub(hub, options.meter ?? metrics.getMeter("hubbub"), base, topRooms));
  }
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    for (const stop of stops) stop();
  };
}

// deno-lint-ignore no-explicit-any
function traceHub(hub: Hub<any>, tracer: OtelTracer, base: OtelAttributes): () => void {
  const named = new Set<string>();
  const spanName = (prefix: string, type: string): string => {
    if (!named.has(type)) {
      if (named.size >= MAX_NAMED_TYPES || type.length > MAX_TYPE_LENGTH) return prefix + "other";
      named.add(type);
    }
    return prefix + type;
  };
  const stopFrames = hub.aroundFrame((frame, handle) => {
    const attributes: OtelAttributes = {
      ...base,
      [OtelAttribute.CLIENT_ID]: frame.clientId,
      [OtelAttribute.MESSAGE_TYPE]: clip(frame.type),
      [OtelAttribute.MESSAGE_BYTES]: frame.bytes,
    };
    if (frame.userId !== undefined) attributes[OtelAttribute.USER_ID] = frame.userId;
    const span = tracer.startSpan(spanName("hubbub.frame ", frame.type), {
      kind: SpanKind.CONSUMER,
      root: true,
      attributes,
    });
    // Active while the handler runs: its emits (and the app's own spans) become children.
    // (`tracer` is structural; a real Tracer's spans are real Spans.)
    const active = trace.setSpan(context.active(), span as unknown as Span);
    let pending: Promise<void> | undefined;
    try {
      pending = context.with(active, handle);
    } catch (error) {
      span.end();
      throw error;
    }
    if (pending === undefined) {
      span.end();
      return undefined;
    }
    return pending.finally(() => span.end());
  });
  const stopEmits = hub.observe((event: HubEvent) => {
    if (event.kind === "emit") {
      const span = tracer.startSpan(spanName("hubbub.emit ", event.type), {
        kind: SpanKind.PRODUCER,
        // The tracer's clock (not the hub's, which tests may fake): the fan-out just ended.
        startTime: performance.timeOrigin + performance.now() - event.fanoutMs,
        attributes: {
          ...base,
          [OtelAttribute.MESSAGE_TYPE]: clip(event.type),
          [OtelAttribute.MESSAGE_BYTES]: event.bytes,
          [OtelAttribute.RECIPIENTS]: event.recipients,
          [OtelAttribute.FANOUT_MS]: event.fanoutMs,
        },
      });
      span.end();
    }
  });
  return () => {
    stopFrames();
    stopEmits();
  };
}

function meterHub(
  // deno-lint-ignore no-explicit-any
  hub: Hub<any>,
  meter: OtelMeter,
  base: OtelAttributes,
  topRooms: number,
): () => void {
  const instruments = new Map<StatsMetric, OtelObservable>();
  for (const m of STATS_METRICS) {
    const opts = { description: m.help, unit: m.unit, valueType: ValueType.INT };
    instruments.set(
      m,
      m.kind === "counter"
        ? meter.createObservableCounter(m.otelName, opts)
        : meter.createObservableGauge(m.otelName, opts),
    );
  }
  const callback = (result: OtelBatchResult): void => {
    const all = hub.stats({ topRooms: Math.max(1, topRooms) });
    const stats = topRooms === 0 ? { ...all, topRooms: [] } : all;
    for (const [m, instrument] of instruments) {
      for (const s of m.read(stats)) {
        const attributes: OtelAttributes = { ...base };
        for (const k in s.labels) attributes[LABEL_KEYS[k] ?? k] = s.labels[k];
        result.observe(instrument, s.value, attributes);
      }
    }
  };
  const list = [...instruments.values()];
  meter.addBatchObservableCallback(callback, list);
  return () => meter.removeBatchObservableCallback(callback, list);
}

function clip(type: string): string {
  return type.length > MAX_TYPE_LENGTH ? type.slice(0, MAX_TYPE_LENGTH) : type;
}
