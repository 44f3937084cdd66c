/**
 * The chat demo's single page: plain HTML, CSS and JS, no build step, no CDN.
 *
 * Every piece of text that comes from the server is put on the page with
 * `textContent`, never as HTML.
 *
 * @module
 */

/** The page served at `/`. */
export const CHAT_PAGE: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hubbub chat</title>
<link rel="icon" href="data:,">
<style>
  :root { --fg: #1d2330; --muted: #6b7385; --line: #dde1e8; --accent: #3b5bdb; --bad: #c92a2a;
          --bg: #f7f8fa; --panel: #fff; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); }
  * { box-sizing: border-box; }
  /* One screen: the header takes what it needs, main the rest, and only the log scrolls. */
  body { margin: 0; background: var(--bg); display: flex; flex-direction: column;
         height: 100vh; height: 100dvh; overflow: hidden; }
  header { flex: none; padding: .6rem 1rem; background: var(--panel); border-bottom: 1px solid var(--line);
           display: flex; flex-wrap: wrap; gap: .6rem 1.2rem; align-items: center; }
  h1 { font-size: 1.1rem; margin: 0; }
  .demo { flex-basis: 100%; margin: 0; padding: .4rem .6rem; border-radius: 4px;
          background: #fff4e6; color: #8a4b00; font-size: .85rem; }
  form { display: flex; gap: .4rem; margin: 0; min-width: 0; }
  input, button { font: inherit; padding: .3rem .55rem; border: 1px solid var(--line); border-radius: 4px; }
  input { background: #fff; min-width: 0; }
  button { flex: none; background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
  button.plain { background: none; color: var(--muted); border: none; padding: 0 .3rem; }
  button:disabled { opacity: .5; cursor: default; }
  #login { flex: 0 1 22rem; }
  #login input, #join input, #compose #text { flex: 1; width: 0; }
  #status { color: var(--muted); font-size: .9rem; min-width: 0; overflow-wrap: anywhere; }
  main { flex: 1; min-height: 0; display: grid; grid-template-columns: 14rem minmax(0, 1fr); }
  aside { border-right: 1px solid var(--line); padding: .8rem; overflow-y: auto; background: var(--panel); }
  aside h2 { font-size: .75rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted);
             margin: 1rem 0 .4rem; }
  aside h2:first-child { margin-top: 0; }
  #join { margin-bottom: .4rem; }
  ul { list-style: none; margin: 0; padding: 0; }
  #views li { display: flex; align-items: center; gap: .2rem; border-radius: 4px; }
  #views li.current { background: #e7ecff; }
  #views .label { flex: 1; min-width: 0; padding: .25rem .4rem; cursor: pointer; overflow: hidden;
                  text-overflow: ellipsis; white-space: nowrap; }
  .badge { flex: none; min-width: 1.4rem; max-width: 3rem; overflow: hidden; text-align: center;
           background: var(--accent); color: #fff; border-radius: 999px; padding: 0 .35rem;
           font-size: .75rem; line-height: 1.35rem; }
  #members li { padding: .1rem .4rem; color: var(--muted); overflow-wrap: anywhere; }
  #members li.info { font-style: italic; }
  section { display: flex; flex-direction: column; min-height: 0; min-width: 0; }
  #log { flex: 1; min-height: 0; overflow-y: auto; margin: 0; padding: .8rem 1rem; }
  #log li { padding: .15rem 0; overflow-wrap: anywhere; white-space: pre-wrap; }
  #log time { color: var(--muted); font-size: .8rem; margin-right: .5rem; }
  #log .who { font-weight: 600; margin-right: .4rem; }
  #log .info { color: var(--muted); font-style: italic; }
  #log .err { color: var(--bad); }
  #compose { flex: none; padding: .6rem 1rem; border-top: 1px solid var(--line); background: var(--panel); }
  #to { flex: 0 1 9rem; width: 0; }
  [hidden] { display: none !important; }
  /* A phone: rooms and members above the log, as wrapping chips; the compose bar stays in view. */
  @media (max-width: 640px) {
    header { padding: .5rem .75rem; gap: .4rem .8rem; }
    #login { flex: 1 1 14rem; }
    .demo { font-size: .75rem; padding: .3rem .5rem; }
    main { grid-template-columns: minmax(0, 1fr); grid-template-rows: auto minmax(0, 1fr); }
    aside { border-right: none; border-bottom: 1px solid var(--line); padding: .5rem .75rem; max-height: 35vh; }
    aside h2 { margin: .5rem 0 .25rem; }
    #views, #members { display: flex; flex-wrap: wrap; gap: .25rem .5rem; }
    #views li { max-width: 100%; }
    #log { padding: .5rem .75rem; }
    #compose { padding: .5rem .75rem; }
    #to { flex-basis: 6.5rem; }
  }
</style>
</head>
<body>
<header>
  <h1>hubbub chat</h1>
  <form id="login">
    <input id="name" placeholder="your name" required maxlength="32" pattern="[\\p{L}\\p{N}_.\\-]{1,32}"
           title="1 to 32 letters, digits, _ . or -" autocomplete="off">
    <button id="connect">Connect</button>
  </form>
  <span id="status">not connected</span>
  <p class="demo"><strong>DEMO ONLY:</strong> your name is taken from the WebSocket URL
    (<code>/ws?user=NAME</code>) and nobody checks it, so anyone can claim any name.
    Never identify users like this in production: verify a session cookie or a token in the hub's
    <code>identify</code> hook.</p>
</header>
<main>
  <aside>
    <h2>Rooms</h2>
    <form id="join">
      <input id="room" placeholder="room-name" required maxlength="32" pattern="[a-z0-9\\-]{1,32}"
             title="1 to 32 of a-z, 0-9 and -" autocomplete="off" disabled>
      <button disabled>Join</button>
    </form>
    <ul id="views"></ul>
    <h2 id="members-title">Members</h2>
    <ul id="members"></ul>
  </aside>
  <section>
    <ul id="log" aria-live="polite"></ul>
    <form id="compose">
      <input id="to" placeholder="whisper to" maxlength="32" autocomplete="off" hidden>
      <input id="text" placeholder="message" required maxlength="2000" autocomplete="off" disabled>
      <button disabled>Send</button>
    </form>
  </section>
</main>
<script type="module">
// The page talks to the hub through hubbub's own client (bundled to /hubbub-client.js): it
// reconnects with backoff, re-joins its rooms (recovering what it missed: every room keeps a
// history), correlates replies by request id, and keeps each room's member list.
import { HubClient } from "/hubbub-client.js";
const $ = (id) => document.getElementById(id);
const WHISPERS = "@whispers";
const MAX_LINES = 500;
const HISTORY_LIMIT = 100;
/**
 * name → { lines, unread, joining, list, seen, epoch, noMembers, anchor }; WHISPERS holds
 * whispers and errors. A room's view exists from the moment the page asks to join it
 * (\`joining\` until the server acks). \`list\` is the client's live member list of the room;
 * \`seen\` holds the "epoch:offset" of every message shown, so a message that arrives live, in
 * a recovery replay and in a history read is shown once.
 */
const views = new Map();
let client = null;
let me = null;
let current = WHISPERS;

function view(name) {
  let v = views.get(name);
  if (!v) {
    views.set(name, v = {
      lines: [], unread: 0, joining: false, list: null, seen: new Set(), epoch: undefined,
      noMembers: false, anchor: null,
    });
  }
  return v;
}
view(WHISPERS);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function addLine(name, line) {
  const v = view(name);
  v.lines.push(line);
  if (v.lines.length > MAX_LINES) v.lines.shift();
  if (name === current) {
    $("log").append(renderLine(line));
    $("log").lastChild.scrollIntoView({ block: "end" });
  } else {
    v.unread++;
    renderViews();
  }
}

/** A chat message of \`room\` (live, replayed, or from a history read), shown once. */
function messageLine(v, epoch, env) {
  if (env.offset !== undefined && epoch !== undefined) {
    const key = epoch + ":" + env.offset;
    if (v.seen.has(key)) return null;
    v.seen.add(key);
  }
  return { time: env.timestamp, who: env.data.user, text: env.data.text, epoch, offset: env.offset };
}

/**
 * A history read: the messages not shown yet go in offset order, before the first line of the
 * same epoch with a greater offset, else before the page's own join line (a first join), else
 * at the end.
 */
function addHistory(room, result) {
  const v = views.get(room);
  if (!v) return;
  let added = 0;
  for (const m of result.messages) {
    if (m.type !== "message") continue;
    const line = messageLine(v, result.epoch, m);
    if (!line) continue;
    let at = v.lines.findIndex((l) => l.epoch === result.epoch && l.offset > m.offset);
    if (at < 0) at = v.anchor ? v.lines.indexOf(v.anchor) : -1;
    if (at < 0) v.lines.push(line);
    else v.lines.splice(at, 0, line);
    added++;
  }
  v.anchor = null;
  while (v.lines.length > MAX_LINES) v.lines.shift();
  if (added > 0 && room === current) select(room);
}

function loadHistory(room) {
  // Only a room that keeps a history has a stream position (a demo without its stores has none).
  if (!client || !client.position(room)) return;
  client.history(room, { limit: HISTORY_LIMIT }).then((r) => addHistory(room, r), showError);
}

// The log follows its newest line while it is scrolled to the bottom, also when it is resized
// (a phone's keyboard, a rotated screen, a resized window).
let atBottom = true;
$("log").onscroll = () => {
  const log = $("log");
  atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
};
new ResizeObserver(() => {
  if (atBottom) $("log").scrollTop = $("log").scrollHeight;
}).observe($("log"));

function renderLine({ time, who, text, cls }) {
  const li = el("li", undefined, cls);
  li.append(el("time", new Date(time).toLocaleTimeString()));
  if (who) li.append(el("span", who, "who"));
  li.append(el("span", text));
  return li;
}

function renderViews() {
  const ul = $("views");
  ul.replaceChildren();
  for (const [name, v] of views) {
    if (v.joining) continue; // asked to join, not subscribed yet
    const li = el("li", undefined, name === current ? "current" : "");
    const label = el("span", name === WHISPERS ? "whispers & notices" : "#" + name, "label");
    label.onclick = () => select(name);
    li.append(label);
    if (v.unread > 0) li.append(el("span", v.unread > 99 ? "99+" : String(v.unread), "badge"));
    if (name !== WHISPERS) {
      const leave = el("button", "×", "plain");
      leave.title = "leave " + name;
      // The hub tells the other members (presence.leave) as this connection leaves.
      leave.onclick = () => {
        client?.unsubscribe(name).then(() => {
          v.list?.close();
          views.delete(name);
          if (current === name) select(WHISPERS);
          else renderViews();
        }, showError);
      };
      li.append(leave);
    }
    ul.append(li);
  }
}

function renderMembers() {
  const inRoom = current !== WHISPERS;
  $("members-title").hidden = $("members").hidden = !inRoom;
  const v = view(current);
  const items = [];
  if (inRoom && v.list) {
    for (const m of v.list.members) {
      const li = el("li", m.userId ?? "guest");
      const tabs = m.clientIds.length;
      if (tabs > 1) li.title = tabs + " tabs";
      items.push(li);
    }
    if (!v.list.loaded && v.noMembers) items.push(el("li", "(member list unavailable)", "info"));
  }
  $("members").replaceChildren(...items);
}

function select(name) {
  current = name;
  const v = view(name);
  v.unread = 0;
  $("log").replaceChildren(...v.lines.map(renderLine));
  $("log").lastChild?.scrollIntoView({ block: "end" });
  $("to").hidden = name !== WHISPERS;
  $("to").required = name === WHISPERS;
  $("text").placeholder = name === WHISPERS ? "whisper" : "message #" + name;
  renderViews();
  renderMembers();
}

function setConnected(on) {
  for (const e of document.querySelectorAll("#join *, #compose *")) e.disabled = !on;
  $("name").disabled = on;
  $("connect").textContent = on ? "Disconnect" : "Connect";
}

function showError(e) {
  addLine(WHISPERS, { time: Date.now(), text: (e.code ?? "ERROR") + ": " + e.message, cls: "err" });
}

/** A member list change: join and leave lines for others (the page writes its own join). */
function membersChanged(room, change) {
  const v = views.get(room);
  if (!v) return;
  if ((change.kind === "join" || change.kind === "leave") && change.member.userId !== me) {
    const who = change.member.userId ?? "a guest";
    addLine(room, { time: Date.now(), text: who + (change.kind === "join" ? " joined" : " left"), cls: "info" });
  }
  if (room === current) renderMembers();
}

function joinRoom(room) {
  const v = view(room);
  v.joining = true;
  // Before the subscribe: the list keeps the join and leave events that arrive with the ack.
  v.list = client.members(room);
  v.list.onChange((change) => membersChanged(room, change));
  client.subscribe(room).then(() => {
    if (views.get(room) !== v) return; // left again meanwhile
    v.joining = false;
    v.epoch = client.position(room)?.epoch;
    v.anchor = { time: Date.now(), text: me + " joined", cls: "info" };
    addLine(room, v.anchor);
    select(room);
    loadHistory(room); // the room's recent messages go above our join line
  }, (e) => {
    v.list.close();
    if (views.get(room) === v) views.delete(room);
    showError(e);
  });
}

function connect(name) {
  const url = new URL("/ws", location.href);
  url.searchParams.set("user", name); // DEMO ONLY: a real app proves identity with a cookie or token
  const c = client = new HubClient(url, { batch: true, maxRetries: 20 });
  $("status").textContent = "connecting…";
  $("connect").disabled = true;
  let opened = false; // whether this client ever connected: a name the server refuses never does
  c.onLifecycle("open", () => {
    opened = true;
    me = c.userId;
    setConnected(true);
    $("connect").disabled = false;
    $("status").textContent = "connected as " + me;
  });
  c.onLifecycle("reconnecting", ({ attempt, delayMs }) => {
    setConnected(false);
    $("connect").disabled = false;
    const retry = "in " + Math.round(delayMs) + " ms (attempt " + attempt + ")…";
    // A browser cannot see why an upgrade failed (no HTTP status): after a first open it is the
    // server or the network, never the name, which the server accepted then.
    $("status").textContent = opened
      ? "connection lost: reconnecting " + retry
      : "cannot connect (the server is unreachable or refused the name): retrying " + retry;
  });
  // Every room is re-joined after a reconnect. Recovered: the server replays what we missed, in
  // order (the client drops what we already have). Not recovered: a new stream (the server
  // restarted without its history) or we were away too long; what it still holds is read again.
  c.onLifecycle("recovery", ({ room, recovered, epoch }) => {
    const v = views.get(room);
    if (!v || recovered || epoch === undefined) return;
    const lost = epoch !== v.epoch;
    v.epoch = epoch;
    addLine(room, {
      time: Date.now(),
      text: lost
        ? "the server lost this room's history: messages from here on are new"
        : "away too long: some messages may be missing above",
      cls: "info",
    });
    loadHistory(room);
  });
  c.onLifecycle("close", ({ code, reason, willReconnect }) => {
    if (willReconnect || client !== c) return;
    client = null;
    me = null;
    // Out of every room: a new connection starts with none (its lines are dropped too).
    for (const [name, v] of [...views]) {
      if (name === WHISPERS) continue;
      v.list?.close();
      views.delete(name);
    }
    select(WHISPERS);
    setConnected(false);
    $("connect").disabled = false;
    $("status").textContent = "disconnected (" + code + (reason ? ": " + reason : "") + ")";
  });
  c.onLifecycle("error", ({ error, source }) => {
    if (source !== "members") return showError(error);
    // This server keeps no presence (replicas without a shared store): no member list.
    for (const v of views.values()) if (v.list && !v.list.loaded) v.noMembers = true;
    renderMembers();
  });
  c.on("message", (data, ev) => {
    const v = views.get(data.room);
    const line = v && messageLine(v, c.position(data.room)?.epoch, ev);
    if (line) addLine(data.room, line);
  });
  c.on("whisper", (data, ev) => {
    addLine(WHISPERS, { time: ev.timestamp, who: data.from + " → " + data.to, text: data.text });
  });
}

$("login").onsubmit = (e) => {
  e.preventDefault();
  if (client) client.close(1000, "bye");
  else connect($("name").value.trim());
};
$("join").onsubmit = (e) => {
  e.preventDefault();
  const room = $("room").value;
  $("room").value = "";
  if (!client) return;
  if (views.has(room)) {
    if (!views.get(room).joining) select(room);
    return;
  }
  joinRoom(room);
};
$("compose").onsubmit = (e) => {
  e.preventDefault();
  const text = $("text").value;
  const sent = current === WHISPERS
    ? client?.request("whisper", { to: $("to").value.trim(), text })
    : client?.request("message", { room: current, text });
  sent?.catch(showError);
  $("text").value = "";
};
const fromQuery = new URLSearchParams(location.search).get("user");
if (fromQuery) $("name").value = fromQuery;
setConnected(false);
select(WHISPERS);
</script>
</body>
</html>
`;
