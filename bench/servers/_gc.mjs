// On SIGUSR2, run a full garbage collection. The bench's idle phase signals every server
// (references and hubbub alike) before it reads RSS, so "idle bytes per connection" is what the
// connections retain, not how much garbage the upgrades left for a collection yet to come.
// Bun: Bun.gc(true) + Bun.shrink(). Deno: needs --v8-flags=--expose-gc; Node: --expose-gc (see targets.mjs).
const g = /** @type {any} */ (globalThis);

function collect() {
  if (g.Bun) {
    g.Bun.gc(true);
    g.Bun.shrink(); // and hand freed heap pages back to the OS, as V8's full GC does
  } else if (typeof g.gc === "function") g.gc();
}

if (g.Deno) g.Deno.addSignalListener("SIGUSR2", collect);
else g.process.on("SIGUSR2", collect);
// BENCH_HEAPDUMP=1 (Bun, with --verbose): also print heap size and the commonest object types.
if (g.Bun && g.process.env.BENCH_HEAPDUMP) {
  const jsc = await import("bun:jsc");
  g.process.on("SIGUSR2", () => {
    const s = jsc.heapStats();
    const top = Object.entries(s.objectTypeCounts).sort((a, b) => b[1] - a[1]).slice(0, 14);
    console.error(
      `HEAP size=${s.heapSize} objects=${s.objectCount} rss=${g.process.memoryUsage().rss} ${
        JSON.stringify(top)
      }`,
    );
  });
}
