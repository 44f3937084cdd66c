// The inspector page: plain HTML, CSS and JS, no dependencies, no CDN.
// The script builds every row with textContent (message types, room names and
// user ids come from clients: never innerHTML). It reads snapshots from
// `<base>/events` (Server-Sent Events) and falls back to polling `<base>/data`.
// It keeps its own ring buffer of the snapshots it got and draws the last few minutes as
// small charts: inline SVG written into the HTML, whose `points` the script sets (no style
// attributes, no external code, so the CSP's two hashes are all it needs).

/** The page's stylesheet (inline; its hash goes in the CSP). */
export const STYLE = `
:root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --bg: #f6f7f9; --card: #fff;
  --line: #e4e7ec; --ok: #12b76a; --bad: #f04438; --warn: #f79009; --accent: #3b5bdb; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8ec; --muted: #98a2b3; --bg: #12151c;
  --card: #1b202a; --line: #2a3140; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); }
header { display: flex; align-items: center; gap: 12px; padding: 12px 20px; border-bottom: 1px solid var(--line);
  background: var(--card); }
h1 { font-size: 16px; margin: 0; }
h1 span { color: var(--muted); font-weight: 400; }
#state { display: inline-flex; align-items: center; gap: 6px; color: var(--muted); margin-left: auto; }
#state::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--warn); }
body[data-state="live"] #state::before { background: var(--ok); }
body[data-state="reconnecting"] #state::before { background: var(--bad); }
main { padding: 16px 20px; display: grid; gap: 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-variant-numeric: tabular-nums; font-weight: 600; }
.card .sub { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.card.bad .value { color: var(--bad); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 16px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
section h2 { font-size: 13px; margin: 0; padding: 8px 12px; border-bottom: 1px solid var(--line); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
td, th { text-align: left; padding: 4px 12px; border-bottom: 1px solid var(--line); white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; max-width: 260px; }
th { color: var(--muted); font-weight: 500; font-size: 12px; }
td.n, th.n { text-align: right; }
tr:last-child td { border-bottom: 0; }
.empty { color: var(--muted); padding: 8px 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 16px; }
.chart h2 { display: flex; align-items: baseline; gap: 10px; }
.chart h2 .now { margin-left: auto; font-variant-numeric: tabular-nums; }
.chart .key { color: var(--muted); font-weight: 400; font-variant-numeric: tabular-nums; }
.chart .key::before { content: ""; display: inline-block; width: 10px; height: 3px; margin-right: 4px;
  vertical-align: middle; border-radius: 2px; background: var(--accent); }
.chart .key.out::before { background: var(--ok); }
.plot { position: relative; height: 72px; margin: 10px 12px 0; border-top: 1px dashed var(--line);
  border-bottom: 1px solid var(--line); }
.plot svg { display: block; width: 100%; height: 100%; overflow: visible; }
.plot .max { position: absolute; top: 2px; right: 0; color: var(--muted); font-size: 11px;
  font-variant-numeric: tabular-nums; background: var(--card); padding-left: 4px; }
.line { fill: none; stroke: var(--accent); stroke-width: 1.5px; stroke-linejoin: round;
  vector-effect: non-scaling-stroke; }
.line.out { stroke: var(--ok); }
.line.queued { stroke: var(--warn); }
.area { fill: var(--accent); opacity: .12; }
.area.queued { fill: var(--warn); }
.axis { display: flex; justify-content: space-between; color: var(--muted); font-size: 11px;
  padding: 3px 12px 8px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
`;

/** The page's script (inline; its hash goes in the CSP). */
export const SCRIPT = `
"use strict";
const base = document.body.dataset.base;
const $ = (id) => document.getElementById(id);
const fmt = (n) => n >= 1e9 ? (n / 1e9).toFixed(1) + "G" : n >= 1e6 ? (n / 1e6).toFixed(1) + "M"
  : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(Math.round(n * 10) / 10);
const bytes = (n) => n >= 1048576 ? (n / 1048576).toFixed(1) + " MiB"
  : n >= 1024 ? (n / 1024).toFixed(1) + " KiB" : n + " B";
function set(id, text) { const el = $(id); if (el.textContent !== text) el.textContent = text; }
function rows(id, items, cells, emptyText) {
  const body = $(id);
  body.replaceChildren();
  if (items.length === 0) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.className = "empty"; td.colSpan = 9; td.textContent = emptyText;
    tr.append(td); body.append(tr); return;
  }
  for (const item of items) {
    const tr = document.createElement("tr");
    for (const [text, numeric] of cells(item)) {
      const td = document.createElement("td");
      if (numeric) td.className = "n";
      td.textContent = String(text);
      tr.append(td);
    }
    body.append(tr);
  }
}
const time = (ms) => {
  const d = new Date(ms);
  return d.toTimeString().slice(0, 8) + "." + String(d.getMilliseconds()).padStart(3, "0");
};
// The charts: a ring buffer of the last RING snapshots; the charts show those of the last
// WINDOW_MS, the x axis spanning from the oldest shown to the newest.
const RING = 1024;
const WINDOW_MS = 5 * 60 * 1000;
const W = 300;
const H = 60;
const ring = new Array(RING);
let ringNext = 0;
let ringCount = 0;
function remember(s) {
  ring[ringNext] = { at: s.at, connections: s.connections, in: s.rates.inPerSec,
    out: s.rates.outPerSec, queued: s.queuedBytes.total };
  ringNext = (ringNext + 1) % RING;
  ringCount = Math.min(ringCount + 1, RING);
}
function shown() {
  const points = [];
  for (let i = ringCount; i > 0; i--) points.push(ring[(ringNext - i + RING) % RING]);
  const latest = points.length > 0 ? points[points.length - 1].at : 0;
  return points.filter((p) => p.at >= latest - WINDOW_MS && p.at <= latest);
}
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p * 1.0001) return m * p;
  return 10 * p;
}
const span = (ms) => ms < 90000 ? Math.round(ms / 1000) + " s" : Math.round(ms / 60000) + " min";
function plot(id, points, keys, format) {
  const svg = $(id);
  const t0 = points[0].at;
  const dt = Math.max(points[points.length - 1].at - t0, 1);
  let max = 0;
  for (const p of points) for (const k of keys) max = Math.max(max, p[k]);
  const top = niceMax(max);
  const x = (p) => points.length === 1 ? W : (p.at - t0) / dt * W;
  const y = (v) => H - 1 - Math.min(v / top, 1) * (H - 2);
  for (const k of keys) {
    const line = points.map((p) => x(p).toFixed(1) + "," + y(p[k]).toFixed(1)).join(" ");
    svg.querySelector(".line." + k).setAttribute("points", line);
    const area = svg.querySelector(".area." + k);
    if (area) area.setAttribute("points", x(points[0]).toFixed(1) + "," + H + " " + line + " " + W + "," + H);
  }
  svg.dataset.points = String(points.length);
  set(id + "-max", max > 0 ? format(top) : ""); // the axis top, once there is something to scale
  set(id + "-span", "last " + span(dt));
}
function charts() {
  const points = shown();
  if (points.length === 0) return;
  const now = points[points.length - 1];
  plot("chart-connections", points, ["connections"], String);
  set("chart-connections-now", String(now.connections));
  plot("chart-messages", points, ["in", "out"], fmt);
  set("chart-messages-in", "in " + fmt(now.in));
  set("chart-messages-out", "out " + fmt(now.out));
  plot("chart-queued", points, ["queued"], bytes);
  set("chart-queued-now", bytes(now.queued));
}
let updates = 0;
function render(s) {
  remember(s);
  charts();
  set("connections", String(s.connections));
  set("connections-sub", fmt(s.connectionsOpened) + " opened, " + fmt(s.connectionsClosed) + " closed");
  set("users", String(s.users));
  set("rooms", String(s.rooms));
  set("in-rate", fmt(s.rates.inPerSec));
  set("in-rate-sub", bytes(Math.round(s.rates.inBytesPerSec)) + "/s, " + s.in.messages + " total");
  set("in-total", String(s.in.messages));
  set("out-rate", fmt(s.rates.outPerSec));
  set("out-rate-sub", bytes(Math.round(s.rates.outBytesPerSec)) + "/s, " + s.out.messages + " total");
  set("out-total", String(s.out.messages));
  set("emits", String(s.emits));
  set("queued-max", bytes(s.queuedBytes.max));
  set("queued-max-sub", "p99 " + bytes(s.queuedBytes.p99) + ", total " + bytes(s.queuedBytes.total));
  set("slow-closes", String(s.closes.slow_client || 0));
  set("rate-limited", String(s.rateLimited));
  const bp = s.backplane;
  set("backplane", bp.ok ? "ok" : "down");
  set("backplane-sub", bp.ok ? bp.channels + " channels, " + bp.published + " out, " + bp.received + " in"
    : (bp.error || "error"));
  $("backplane-card").classList.toggle("bad", !bp.ok);
  rows("top-rooms", s.topRooms, (r) => [[r.room], [r.members, true]], "No rooms");
  rows("slow-clients", s.slowClients, (c) => [[c.clientId], [c.userId ?? ""], [bytes(c.queuedBytes), true]],
    "No queued bytes");
  rows("closes", Object.entries(s.closes).sort((a, b) => b[1] - a[1]), ([k, v]) => [[k], [v, true]], "None");
  rows("refused", Object.entries(s.refused).sort((a, b) => b[1] - a[1]), ([k, v]) => [[k], [v, true]], "None");
  rows("frames", s.recentFrames, (f) => [[time(f.at)], [f.type], [f.clientId], [f.userId ?? ""],
    [f.bytes, true]], "No frames yet");
  set("updated", time(s.at));
  document.body.dataset.updates = String(++updates);
}
let source;
let poll;
function live(state) { document.body.dataset.state = state; set("state", state); }
function start() {
  if (typeof EventSource === "undefined") return startPolling();
  source = new EventSource(base + "/events");
  source.onmessage = (e) => { live("live"); render(JSON.parse(e.data)); };
  source.onerror = () => live("reconnecting");
}
function startPolling() {
  const tick = async () => {
    try {
      const res = await fetch(base + "/data", { cache: "no-store" });
      if (!res.ok) throw new Error(String(res.status));
      live("live"); render(await res.json());
    } catch { live("reconnecting"); }
    poll = setTimeout(tick, 1000);
  };
  tick();
}
start();
`;

/** Escape text for HTML (attribute or element content). */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function card(id: string, label: string, sub = true): string {
  return `<div class="card" id="${id}-card"><div class="label">${label}</div>` +
    `<div class="value" id="${id}">–</div>${
      sub ? `<div class="sub" id="${id}-sub"></div>` : ""
    }</div>`;
}

/** A chart: a title, the newest value(s), an SVG with one line per key, a time axis. */
function chart(id: string, title: string, keys: string[], area: boolean, legend: string): string {
  const shapes = keys.map((k) =>
    (area ? `<polygon class="area ${k}"/>` : "") + `<polyline class="line ${k}"/>`
  ).join("");
  return `<section class="chart"><h2>${title}${legend}</h2>` +
    `<div class="plot"><svg id="${id}" viewBox="0 0 300 60" preserveAspectRatio="none" ` +
    `data-points="0" aria-hidden="true">${shapes}</svg>` +
    `<span class="max" id="${id}-max"></span></div>` +
    `<div class="axis"><span id="${id}-span"></span><span>now</span></div></section>`;
}

function table(id: string, title: string, heads: [string, boolean?][]): string {
  const th = heads.map(([h, n]) => `<th${n ? ' class="n"' : ""}>${h}</th>`).join("");
  return `<section><h2>${title}</h2><table><thead><tr>${th}</tr></thead>` +
    `<tbody id="${id}"></tbody></table></section>`;
}

/**
 * The page.
 * @param base The inspector's path (already validated: URL-path characters only).
 * @param title The page title.
 */
export function page(base: string, title: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style></head>
<body data-base="${escapeHtml(base)}" data-state="connecting" data-updates="0">
<header><h1>hubbub inspector <span>${escapeHtml(title)}</span></h1>
<span>updated <code id="updated">–</code></span><span id="state">connecting</span></header>
<main>
<div class="cards">
${card("connections", "Connections")}
${card("users", "Users", false)}
${card("rooms", "Rooms", false)}
${card("in-rate", "In msg/s")}
${card("out-rate", "Out msg/s")}
${card("emits", "Emits", false)}
${card("queued-max", "Queued max")}
${card("slow-closes", "Slow-client closes", false)}
${card("rate-limited", "Rate-limited", false)}
${card("backplane", "Backplane")}
</div>
<div hidden><span id="in-total"></span><span id="out-total"></span></div>
<div class="charts">
${
    chart(
      "chart-connections",
      "Connections",
      ["connections"],
      true,
      '<span class="now" id="chart-connections-now"></span>',
    )
  }
${
    chart(
      "chart-messages",
      "Messages/s",
      ["in", "out"],
      false,
      '<span class="now"><span class="key in" id="chart-messages-in"></span> ' +
        '<span class="key out" id="chart-messages-out"></span></span>',
    )
  }
${
    chart(
      "chart-queued",
      "Queued bytes (all connections)",
      ["queued"],
      true,
      '<span class="now" id="chart-queued-now"></span>',
    )
  }
</div>
<div class="grid">
${table("top-rooms", "Top rooms", [["Room"], ["Members", true]])}
${table("slow-clients", "Slowest clients", [["Client"], ["User"], ["Queued", true]])}
${table("closes", "Closes by cause", [["Cause"], ["Count", true]])}
${table("refused", "Refused upgrades", [["Reason"], ["Count", true]])}
</div>
${
    table("frames", "Recent inbound frames (newest first; no payloads)", [
      ["Time"],
      ["Type"],
      ["Client"],
      ["User"],
      ["Bytes", true],
    ])
  }
</main>
<script>${SCRIPT}</script>
</body></html>`;
}
