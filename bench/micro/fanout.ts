// A fan-out micro benchmark with fake sockets: no network; the flush runs once per round. Its
// figure is the hub's own CPU time per delivery (process CPU, so the waits between rounds do
// not count). To compare two trees, run them interleaved several times and compare minima.
//
//   deno run -A bench/micro/fanout.ts  (or: bun bench/micro/fanout.ts) [clients=1000] [rounds=20] [perRound=50] [mode=corked|direct]
import process from "node:process";
import { Hub } from "../../mod.ts";
import type { SocketEvents, Transport } from "../../mod.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const args: string[] = g.Deno?.args ?? g.process.argv.slice(2);
const [clients = 1000, rounds = 20, perRound = 50] = args.slice(0, 3).map(Number);
const mode = args[3] ?? "corked";

let sent = 0;
function fakeTransport(): Transport {
  const t: Transport = {
    send: () => {
      sent++;
      return 1;
    },
    bufferedAmount: () => 0,
    writable: () => Promise.resolve(),
    close: () => {},
  };
  if (mode === "corked") t.cork = (fn) => fn();
  return t;
}

const hub = new Hub({ rateLimit: false, pingIntervalMs: 1e9, idleTimeoutMs: 1e9 });
const events: SocketEvents[] = [];
for (let i = 0; i < clients; i++) {
  const d = await hub.upgrade(new Request("http://x/ws", { headers: { upgrade: "websocket" } }));
  if (!d.ok) throw new Error("refused");
  events.push(d.open(fakeTransport()));
}
for (const c of hub.connections()) hub.join(c, "room");
const turn = () => new Promise<void>((r) => setTimeout(r, 0));
await turn();
await turn(); // the connection.established frames are written
sent = 0;
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < perRound; k++) {
    hub.emit("chat", { text: "hello world", r, k }, { rooms: "room" });
  }
  await turn(); // corked: the once-per-turn flush writes
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const deliveries = clients * rounds * perRound;
if (sent !== deliveries) throw new Error(`sent ${sent}, expected ${deliveries}`);
// CPU time, not wall time: the waits between rounds (and other processes) do not count.
const cpuNs = (cpu.user + cpu.system) * 1000 / deliveries;
console.log(
  `${mode}: ${deliveries} deliveries in ${ms.toFixed(1)} ms wall; ` +
    `${cpuNs.toFixed(1)} ns of CPU per delivery`,
);
for (const e of events) e.close(1000, "");
await hub.close();
