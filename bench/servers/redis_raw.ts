// The raw ceiling of the cross-replica scenarios: one node-redis publisher pipelining PUBLISH
// to one node-redis subscriber of the same Redis, no WebSockets, in one process. The same
// ~100-byte payloads as the bench envelope; a windowed closed loop like the load client's: W
// messages in flight, W/2 more published (in one tick, so node-redis pipelines them) whenever
// W/2 have arrived. BENCH_ROOMS=N: every message is published to N channels (all subscribed),
// complete once all N copies arrived. Windows 16, 64 and 256 are probed (0.3 s each), the best
// is measured. Prints `RESULT {json}` on stdout. Needs REDIS_URL.
import process from "node:process";
import { createClient } from "redis";

const url = process.env.REDIS_URL;
if (url === undefined) throw new Error("redis_raw.ts needs REDIS_URL");
const settings = { warmup: 0.2, duration: 1, probe: 0.3, windows: [16, 64, 256], size: 100 };
Object.assign(settings, JSON.parse(process.argv[2] ?? "{}"));
const roomCount = Number(process.env.BENCH_ROOMS ?? 0) || 1;
const channels = Array.from({ length: roomCount }, (_, i) => `raw:room:r${i}`);

const pub = createClient({ url });
const sub = createClient({ url });
pub.on("error", (e) => console.error("redis pub", e));
sub.on("error", (e) => console.error("redis sub", e));
await Promise.all([pub.connect(), sub.connect()]);

let delivered = 0;
let onDelivery = () => {};
await sub.subscribe(channels, () => {
  delivered++;
  onDelivery();
});

const pad = "x".repeat(Math.max(0, settings.size - 85));
let seq = 0;
function publish(count: number): void {
  for (let i = 0; i < count; i++) {
    const frame = `{"type":"bench","data":{"seq":${seq++},"t":${
      Math.round(performance.now() * 1000)
    },"p":"${pad}"},"timestamp":${Date.now()}}`;
    for (let c = 0; c < channels.length; c++) pub.publish(channels[c], frame).catch(() => {});
  }
}

/** Run the closed loop at window w for `seconds` after `warmup`; deliveries/s. */
async function measure(w: number, warmup: number, seconds: number): Promise<number> {
  const half = Math.max(1, w >> 1);
  let sent = 0; // messages published in this run
  const base = delivered;
  let from = 0;
  let t0 = 0;
  onDelivery = () => {
    const done = Math.floor((delivered - base) / roomCount);
    if (sent - done <= w - half) {
      sent += half;
      publish(half);
    }
  };
  sent = w;
  publish(w);
  await new Promise((r) => setTimeout(r, warmup * 1000));
  from = delivered;
  t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const rate = (delivered - from) / ((performance.now() - t0) / 1000);
  onDelivery = () => {};
  // Let what is in flight arrive before the next run.
  const deadline = performance.now() + 5000;
  while (delivered - base < sent * roomCount && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  return rate;
}

const probes: { window: number; deliveriesPerSec: number }[] = [];
for (const w of settings.windows) {
  probes.push({ window: w, deliveriesPerSec: await measure(w, 0.1, settings.probe) });
}
const best = probes.reduce((a, b) => (b.deliveriesPerSec > a.deliveriesPerSec ? b : a));
const rate = await measure(best.window, settings.warmup, settings.duration);
console.log(
  `RESULT ${
    JSON.stringify({
      window: best.window,
      channels: roomCount,
      deliveriesPerSec: rate,
      messagesPerSec: rate / roomCount,
      probes,
    })
  }`,
);
await Promise.all([pub.close(), sub.close()]);
process.exit(0);
