import assert from "node:assert/strict";
import {
  type Context,
  context,
  type ContextManager,
  metrics,
  ROOT_CONTEXT,
  SpanKind,
  trace,
} from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import {
  type DataPoint,
  DataPointType,
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { Hub } from "../../mod.ts";
import { connectMemory, type MemoryClient } from "../../src/testing/mod.ts";
import { instrumentHub, OtelAttribute } from "../../src/otel/mod.ts";
import { test } from "../_harness.ts";

/** A reader that collects on demand (no timers). */
class ManualReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** A synchronous stack context manager, so `startActiveSpan` parents spans in these tests. */
class StackContext implements ContextManager {
  #stack: Context[] = [];
  active(): Context {
    return this.#stack.at(-1) ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    this.#stack.push(ctx);
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#stack.pop();
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#stack = [];
    return this;
  }
}

function tracing() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { exporter, provider, tracer: provider.getTracer("test") };
}

function metering() {
  const reader = new ManualReader();
  const provider = new MeterProvider({ readers: [reader] });
  return { reader, provider, meter: provider.getMeter("test") };
}

type Points = Map<string, { type: DataPointType; points: DataPoint<number>[] }>;

async function collect(reader: MetricReader): Promise<Points> {
  const { resourceMetrics, errors } = await reader.collect();
  assert.deepEqual(errors, []);
  return points(resourceMetrics);
}

function points(rm: ResourceMetrics): Points {
  const out: Points = new Map();
  for (const scope of rm.scopeMetrics) {
    for (const m of scope.metrics) {
      out.set(m.descriptor.name, {
        type: m.dataPointType,
        points: m.dataPoints as DataPoint<number>[],
      });
    }
  }
  return out;
}

function point(
  all: Points,
  name: string,
  attributes: Record<string, string> = {},
): number | undefined {
  return all.get(name)?.points.find((p) =>
    JSON.stringify(p.attributes) === JSON.stringify(attributes)
  )?.value;
}

function chatHub(): Hub {
  const hub = new Hub({
    identify: (req) => ({ userId: new URL(req.url).searchParams.get("user") ?? undefined }),
    canJoin: () => true,
    onMessage: () => {},
  });
  hub.on("say", (conn) => void hub.emit("said", { by: conn.userId }, { rooms: "lobby" }));
  return hub;
}

async function script(hub: Hub): Promise<{ ada: MemoryClient; anon: MemoryClient }> {
  const ada = await connectMemory(hub, { url: "http://x/ws?user=ada" });
  const anon = await connectMemory(hub);
  await ada.next();
  await anon.next();
  ada.send({ type: "subscribe", room: "lobby" }); // 36 chars
  anon.send({ type: "subscribe", room: "lobby" });
  ada.send({ type: "say", text: "hi" }); // → emit "said" to 2
  ada.send({ type: "say", text: "again" }); // → emit "said" to 2
  anon.send({ type: "ping" });
  anon.send("{bad");
  await anon.next("pong");
  hub.broadcastRaw('{"type":"raw"}');
  return { ada, anon };
}

test("instrumentHub() makes one point-in-time span per accepted frame, with client, user, type, bytes", async () => {
  const { exporter, provider, tracer } = tracing();
  const { provider: meters, meter } = metering();
  const hub = chatHub();
  const stop = instrumentHub(hub, { tracer, meter, attributes: { "hubbub.endpoint": "chat" } });
  const { ada } = await script(hub);
  const adaId = (ada.messages[0].data as { clientId: string }).clientId;
  const spans = exporter.getFinishedSpans();
  const frames = spans.filter((s) => s.name.startsWith("hubbub.frame "));
  assert.deepEqual(frames.map((s) => s.name), [
    "hubbub.frame subscribe",
    "hubbub.frame subscribe",
    "hubbub.frame say",
    "hubbub.frame say",
    "hubbub.frame ping",
    "hubbub.frame invalid",
  ]);
  assert.equal(frames.length, hub.stats().in.messages);
  const first = frames[0];
  assert.equal(first.kind, SpanKind.CONSUMER);
  assert.deepEqual(first.attributes, {
    "hubbub.endpoint": "chat",
    [OtelAttribute.CLIENT_ID]: adaId,
    [OtelAttribute.MESSAGE_TYPE]: "subscribe",
    [OtelAttribute.MESSAGE_BYTES]: JSON.stringify({ type: "subscribe", room: "lobby" }).length,
    [OtelAttribute.USER_ID]: "ada",
  });
  assert.equal(first.parentSpanContext, undefined, "a root span");
  assert.equal(frames[1].attributes[OtelAttribute.USER_ID], undefined, "anonymous: no user id");
  assert.equal(frames[5].attributes[OtelAttribute.MESSAGE_BYTES], 4);
  assert.equal(new Set(frames.map((s) => s.spanContext().traceId)).size, 6, "no connection span");
  stop();
  await hub.close();
  await provider.shutdown();
  await meters.shutdown();
});

test("instrumentHub() makes one span per emit with recipients, bytes and fan-out time", async () => {
  const { exporter, provider, tracer } = tracing();
  const hub = chatHub();
  const stop = instrumentHub(hub, { tracer, metrics: false });
  await script(hub);
  const emits = exporter.getFinishedSpans().filter((s) => s.name.startsWith("hubbub.emit "));
  assert.deepEqual(emits.map((s) => s.name), [
    "hubbub.emit said",
    "hubbub.emit said",
    "hubbub.emit raw",
  ]);
  assert.equal(emits.length, hub.stats().emits);
  const said = emits[0];
  assert.equal(said.kind, SpanKind.PRODUCER);
  assert.equal(said.attributes[OtelAttribute.RECIPIENTS], 2);
  assert.equal(said.attributes[OtelAttribute.MESSAGE_TYPE], "said");
  assert.ok((said.attributes[OtelAttribute.MESSAGE_BYTES] as number) > 0);
  assert.ok((said.attributes[OtelAttribute.FANOUT_MS] as number) >= 0);
  assert.equal(emits[2].attributes[OtelAttribute.MESSAGE_BYTES], 14, "raw frame size");
  assert.equal(emits[2].attributes[OtelAttribute.RECIPIENTS], 2);
  stop();
  await hub.close();
  await provider.shutdown();
});

test("An emit inside an active app span becomes its child", async () => {
  const manager = new StackContext();
  context.setGlobalContextManager(manager);
  const { exporter, provider, tracer } = tracing();
  const hub = chatHub();
  const stop = instrumentHub(hub, { tracer, metrics: false });
  try {
    const c = await connectMemory(hub);
    await c.next();
    tracer.startActiveSpan("app.work", (span) => {
      hub.emit("news", 1);
      span.end();
    });
    const spans = exporter.getFinishedSpans();
    const app = spans.find((s) => s.name === "app.work")!;
    const emit = spans.find((s) => s.name === "hubbub.emit news")!;
    assert.equal(emit.parentSpanContext?.spanId, app.spanContext().spanId);
    assert.equal(emit.spanContext().traceId, app.spanContext().traceId);
  } finally {
    stop();
    context.disable();
    await hub.close();
    await provider.shutdown();
  }
});

test("Span names use the first 256 types, then `other`; the attribute keeps the type", async () => {
  const { exporter, provider, tracer } = tracing();
  const hub = new Hub({ onMessage: () => {}, rateLimit: false });
  const stop = instrumentHub(hub, { tracer, metrics: false });
  const c = await connectMemory(hub);
  await c.next();
  for (let i = 0; i < 260; i++) c.send({ type: `t${i}` });
  c.send({ type: "t0" });
  c.send({ type: "x".repeat(200) });
  const spans = exporter.getFinishedSpans();
  assert.equal(spans.length, 262);
  assert.equal(spans[255].name, "hubbub.frame t255");
  assert.equal(spans[256].name, "hubbub.frame other");
  assert.equal(spans[256].attributes[OtelAttribute.MESSAGE_TYPE], "t256");
  assert.equal(spans[260].name, "hubbub.frame t0", "a known type keeps its name");
  assert.equal(spans[261].name, "hubbub.frame other");
  assert.equal((spans[261].attributes[OtelAttribute.MESSAGE_TYPE] as string).length, 128);
  stop();
  await hub.close();
  await provider.shutdown();
});

test("instrumentHub() metrics equal hub.stats(): gauges and counters by type, cause and reason", async () => {
  const { reader, provider, meter } = metering();
  const hub = chatHub();
  const stop = instrumentHub(hub, { meter, traces: false });
  const { anon } = await script(hub);
  await hub.upgrade(new Request("http://x/ws")).then(async (d) => {
    if (!d.ok) await d.response.body?.cancel();
  });
  anon.close(1000);
  const s = hub.stats();
  const m = await collect(reader);
  assert.equal(m.get("hubbub.connections")?.type, DataPointType.GAUGE);
  assert.equal(m.get("hubbub.messages.in")?.type, DataPointType.SUM);
  assert.equal(point(m, "hubbub.connections"), 1);
  assert.equal(point(m, "hubbub.users"), 1);
  assert.equal(point(m, "hubbub.rooms"), 1);
  assert.equal(point(m, "hubbub.room.members", { [OtelAttribute.ROOM]: "lobby" }), 1);
  assert.equal(point(m, "hubbub.connections.opened"), 2);
  assert.equal(point(m, "hubbub.connections.closed", { [OtelAttribute.CLOSE_CAUSE]: "client" }), 1);
  assert.equal(
    point(m, "hubbub.upgrades.refused", { [OtelAttribute.REFUSAL_REASON]: "not_websocket" }),
    1,
  );
  assert.equal(point(m, "hubbub.frames.in"), s.in.messages);
  assert.equal(point(m, "hubbub.frames.in"), 6);
  assert.equal(point(m, "hubbub.frames.in.bytes"), s.in.bytes);
  for (const [type, t] of Object.entries(s.inByType)) {
    const attrs = { [OtelAttribute.MESSAGE_TYPE]: type };
    assert.equal(point(m, "hubbub.messages.in", attrs), t.messages, type);
    assert.equal(point(m, "hubbub.messages.in.bytes", attrs), t.bytes, type);
  }
  assert.equal(point(m, "hubbub.messages.in", { [OtelAttribute.MESSAGE_TYPE]: "say" }), 2);
  for (const [type, t] of Object.entries(s.outByType)) {
    const attrs = { [OtelAttribute.MESSAGE_TYPE]: type };
    assert.equal(point(m, "hubbub.messages.out", attrs), t.messages, type);
    assert.equal(point(m, "hubbub.messages.out.bytes", attrs), t.bytes, type);
  }
  assert.equal(point(m, "hubbub.messages.out", { [OtelAttribute.MESSAGE_TYPE]: "said" }), 4);
  assert.equal(point(m, "hubbub.emits"), 3);
  assert.equal(point(m, "hubbub.rate_limited"), 0);
  assert.equal(point(m, "hubbub.queued_bytes.max"), 0);
  assert.equal(point(m, "hubbub.queued_bytes.p99"), 0);
  assert.equal(point(m, "hubbub.backplane.up"), 1);
  // Counters stay monotonic: more traffic, higher values.
  hub.emit("said", 1);
  const again = await collect(reader);
  assert.equal(point(again, "hubbub.emits"), 4);
  // After stop(), the callback is gone: nothing is read any more.
  stop();
  hub.emit("said", 1);
  const after = await collect(reader);
  assert.notEqual(point(after, "hubbub.emits"), 5);
  await hub.close();
  await provider.shutdown();
});

test("instrumentHub() defaults to the global tracer and meter named hubbub", async () => {
  const { exporter, provider } = tracing();
  const { reader, provider: meters } = metering();
  trace.setGlobalTracerProvider(provider);
  metrics.setGlobalMeterProvider(meters);
  const hub = chatHub();
  const stop = instrumentHub(hub);
  try {
    const c = await connectMemory(hub);
    await c.next();
    c.send({ type: "ping" });
    await c.next("pong");
    const spans: ReadableSpan[] = exporter.getFinishedSpans();
    assert.deepEqual(spans.map((s) => s.name), ["hubbub.frame ping"]);
    assert.equal(spans[0].instrumentationScope.name, "hubbub");
    const { resourceMetrics } = await reader.collect();
    assert.deepEqual(resourceMetrics.scopeMetrics.map((s) => s.scope.name), ["hubbub"]);
    assert.equal(point(points(resourceMetrics), "hubbub.connections"), 1);
    assert.throws(() => instrumentHub(hub, { topRooms: -1 }), RangeError);
  } finally {
    stop();
    stop();
    trace.disable();
    metrics.disable();
    await hub.close();
    await provider.shutdown();
    await meters.shutdown();
  }
});

test("A frame span lasts until its async handler settles and parents the handler's emits", async () => {
  const manager = new StackContext();
  context.setGlobalContextManager(manager);
  const { exporter, provider, tracer } = tracing();
  const hub = new Hub({ onMessage: () => {} });
  hub.on("say", () => void hub.emit("said", 1));
  hub.on("slow", async () => {
    await new Promise((r) => setTimeout(r, 30));
  });
  const stop = instrumentHub(hub, { tracer, metrics: false });
  try {
    const c = await connectMemory(hub);
    await c.next();
    c.send({ type: "say" });
    await c.next("said");
    const spans = exporter.getFinishedSpans();
    const frame = spans.find((s) => s.name === "hubbub.frame say")!;
    const emit = spans.find((s) => s.name === "hubbub.emit said")!;
    assert.equal(emit.parentSpanContext?.spanId, frame.spanContext().spanId);
    assert.equal(emit.spanContext().traceId, frame.spanContext().traceId);
    c.send({ type: "slow", id: 1 });
    await c.next("ack");
    const slow = exporter.getFinishedSpans().find((s) => s.name === "hubbub.frame slow")!;
    const ms = slow.duration[0] * 1e3 + slow.duration[1] / 1e6;
    assert.ok(ms >= 25, `the span covers the async handler (${ms} ms)`);
  } finally {
    stop();
    context.disable();
    await hub.close();
    await provider.shutdown();
  }
});
