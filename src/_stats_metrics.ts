// The metrics hubbub exports from `hub.stats()`: one table shared by the
// Prometheus text endpoint (`./prometheus`) and the OpenTelemetry instruments (`./otel`),
// so both name, describe and count the same things.

import type { HubStats } from "./core/hub_stats.ts";

/** One sample: label values (possibly none) and a number. */
export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One metric family read from a stats snapshot. */
export interface StatsMetric {
  /** Prometheus name without prefix or `_total` (e.g. `connections_opened`). */
  readonly name: string;
  /** OpenTelemetry instrument name (e.g. `hubbub.connections.opened`). */
  readonly otelName: string;
  /** Counter (monotonic since the hub started) or gauge (current value). */
  readonly kind: "counter" | "gauge";
  /** UCUM unit for OpenTelemetry. */
  readonly unit: string;
  /** One-line description. */
  readonly help: string;
  /** Label names this metric uses (empty: one unlabelled sample). */
  readonly labels: readonly string[];
  /** The samples in a snapshot. */
  readonly read: (stats: HubStats) => readonly Sample[];
}

const NONE: Readonly<Record<string, string>> = Object.freeze({});

function one(value: number): readonly Sample[] {
  return [{ labels: NONE, value }];
}

function by(label: string, record: Readonly<Record<string, number>>): Sample[] {
  return Object.entries(record).map(([k, value]) => ({ labels: { [label]: k }, value }));
}

function byType(
  record: Readonly<Record<string, { messages: number; bytes: number }>>,
  field: "messages" | "bytes",
): Sample[] {
  return Object.entries(record).map(([type, t]) => ({ labels: { type }, value: t[field] }));
}

/** Every metric, in exposition order. */
export const STATS_METRICS: readonly StatsMetric[] = [
  {
    name: "connections",
    otelName: "hubbub.connections",
    kind: "gauge",
    unit: "{connection}",
    help: "Open connections now.",
    labels: [],
    read: (s) => one(s.connections),
  },
  {
    name: "users",
    otelName: "hubbub.users",
    kind: "gauge",
    unit: "{user}",
    help: "Distinct users with an open connection now.",
    labels: [],
    read: (s) => one(s.users),
  },
  {
    name: "rooms",
    otelName: "hubbub.rooms",
    kind: "gauge",
    unit: "{room}",
    help: "Non-empty rooms now.",
    labels: [],
    read: (s) => one(s.rooms),
  },
  {
    name: "room_members",
    otelName: "hubbub.room.members",
    kind: "gauge",
    unit: "{connection}",
    help: "Members of the largest rooms now (top N only).",
    labels: ["room"],
    read: (s) => s.topRooms.map((r) => ({ labels: { room: r.room }, value: r.members })),
  },
  {
    name: "queued_bytes",
    otelName: "hubbub.queued_bytes",
    kind: "gauge",
    unit: "By",
    help: "Bytes waiting in send queues now, all connections.",
    labels: [],
    read: (s) => one(s.queuedBytes.total),
  },
  {
    name: "queued_bytes_max",
    otelName: "hubbub.queued_bytes.max",
    kind: "gauge",
    unit: "By",
    help: "Bytes waiting in the fullest send queue now.",
    labels: [],
    read: (s) => one(s.queuedBytes.max),
  },
  {
    name: "queued_bytes_p99",
    otelName: "hubbub.queued_bytes.p99",
    kind: "gauge",
    unit: "By",
    help: "99th percentile of bytes waiting per connection now.",
    labels: [],
    read: (s) => one(s.queuedBytes.p99),
  },
  {
    name: "connections_opened",
    otelName: "hubbub.connections.opened",
    kind: "counter",
    unit: "{connection}",
    help: "Connections accepted.",
    labels: [],
    read: (s) => one(s.connectionsOpened),
  },
  {
    name: "connections_closed",
    otelName: "hubbub.connections.closed",
    kind: "counter",
    unit: "{connection}",
    help: "Connections closed, by cause.",
    labels: ["cause"],
    read: (s) => by("cause", s.closes),
  },
  {
    name: "upgrades_refused",
    otelName: "hubbub.upgrades.refused",
    kind: "counter",
    unit: "{request}",
    help: "Upgrade requests refused, by reason.",
    labels: ["reason"],
    read: (s) => by("reason", s.refused),
  },
  {
    name: "frames_in",
    otelName: "hubbub.frames.in",
    kind: "counter",
    unit: "{frame}",
    help: "Inbound frames, including rate-limited ones.",
    labels: [],
    read: (s) => one(s.in.messages),
  },
  {
    name: "frames_in_bytes",
    otelName: "hubbub.frames.in.bytes",
    kind: "counter",
    unit: "By",
    help: "Inbound frame bytes, including rate-limited frames.",
    labels: [],
    read: (s) => one(s.in.bytes),
  },
  {
    name: "messages_in",
    otelName: "hubbub.messages.in",
    kind: "counter",
    unit: "{message}",
    help: "Inbound messages handled, by type.",
    labels: ["type"],
    read: (s) => byType(s.inByType, "messages"),
  },
  {
    name: "messages_in_bytes",
    otelName: "hubbub.messages.in.bytes",
    kind: "counter",
    unit: "By",
    help: "Inbound message bytes handled, by type.",
    labels: ["type"],
    read: (s) => byType(s.inByType, "bytes"),
  },
  {
    name: "messages_out",
    otelName: "hubbub.messages.out",
    kind: "counter",
    unit: "{message}",
    help: "Outbound deliveries (one per recipient), by type.",
    labels: ["type"],
    read: (s) => byType(s.outByType, "messages"),
  },
  {
    name: "messages_out_bytes",
    otelName: "hubbub.messages.out.bytes",
    kind: "counter",
    unit: "By",
    help: "Outbound delivery bytes (one frame per recipient), by type.",
    labels: ["type"],
    read: (s) => byType(s.outByType, "bytes"),
  },
  {
    name: "emits",
    otelName: "hubbub.emits",
    kind: "counter",
    unit: "{call}",
    help: "emit, broadcastRaw and sendTo calls.",
    labels: [],
    read: (s) => one(s.emits),
  },
  {
    name: "rate_limited",
    otelName: "hubbub.rate_limited",
    kind: "counter",
    unit: "{frame}",
    help: "Inbound frames dropped by the rate limit.",
    labels: [],
    read: (s) => one(s.rateLimited),
  },
  {
    name: "observer_drops",
    otelName: "hubbub.observer.drops",
    kind: "counter",
    unit: "{event}",
    help: "Events dropped because a hub.events() consumer fell behind.",
    labels: [],
    read: (s) => one(s.observerDrops),
  },
  {
    name: "backplane_up",
    otelName: "hubbub.backplane.up",
    kind: "gauge",
    unit: "1",
    help: "1 while the backplane can publish and receive (always 1 without one), else 0.",
    labels: [],
    read: (s) => one(s.backplane.health.ok ? 1 : 0),
  },
  {
    name: "backplane_channels",
    otelName: "hubbub.backplane.channels",
    kind: "gauge",
    unit: "{channel}",
    help: "Backplane channels this hub is subscribed to now.",
    labels: [],
    read: (s) => one(s.backplane.channels),
  },
  {
    name: "backplane_published",
    otelName: "hubbub.backplane.published",
    kind: "counter",
    unit: "{message}",
    help: "Messages published to the backplane.",
    labels: [],
    read: (s) => one(s.backplane.published),
  },
  {
    name: "backplane_publish_failed",
    otelName: "hubbub.backplane.publish_failed",
    kind: "counter",
    unit: "{message}",
    help: "Messages that could not be published (lost for other replicas).",
    labels: [],
    read: (s) => one(s.backplane.publishFailed),
  },
  {
    name: "backplane_received",
    otelName: "hubbub.backplane.received",
    kind: "counter",
    unit: "{message}",
    help: "Messages received from other replicas and delivered locally.",
    labels: [],
    read: (s) => one(s.backplane.received),
  },
  {
    name: "backplane_duplicates",
    otelName: "hubbub.backplane.duplicates",
    kind: "counter",
    unit: "{message}",
    help: "Duplicate backplane copies skipped.",
    labels: [],
    read: (s) => one(s.backplane.duplicates),
  },
  {
    name: "backplane_malformed",
    otelName: "hubbub.backplane.malformed",
    kind: "counter",
    unit: "{message}",
    help: "Malformed backplane payloads skipped.",
    labels: [],
    read: (s) => one(s.backplane.malformed),
  },
  {
    name: "history_repairs",
    otelName: "hubbub.history.repairs",
    kind: "counter",
    unit: "{read}",
    help: "Reads of a history room's stream to fill a gap across replicas (or after a bus outage).",
    labels: [],
    read: (s) => one(s.history.repairs),
  },
  {
    name: "history_lost",
    otelName: "hubbub.history.lost",
    kind: "counter",
    unit: "{room}",
    help: "Times a history room's local members were closed with 4004 (its stream not whole here).",
    labels: [],
    read: (s) => one(s.history.lost),
  },
];
