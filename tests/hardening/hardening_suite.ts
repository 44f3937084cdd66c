// The hardening suite: abuse limits, a protocol fuzzer, floods, slow readers, churn, hooks
// that fail, and graceful shutdown, against a real server on port 0 with real sockets.
// Runner-agnostic: tests/hardening/{deno,bun}_test.ts register it for one adapter each.
// Figures (RTTs, memory) are printed; assertions use generous bounds, not timing goals.
import assert from "node:assert/strict";
import {
  type Clock,
  CloseCode,
  ErrorCode,
  type Hub,
  type HubErrorSource,
  type HubOptions,
  type InboundMessage,
  MessageError,
  type StandardSchemaV1,
} from "../../mod.ts";
import { delay, isDeno, isNode, test, type TestOptions, until } from "../_harness.ts";
import { type Msg, openStalledSocket, TestClient } from "../_ws_client.ts";
import type { ServerHandle, StartServer } from "../contract/transport_contract.ts";
import { closePayload, encodeFrame, Op, rawConnect, type RawSocket } from "./_raw_socket.ts";
import { env, fieldSweep, fuzzFrame, fuzzSeed, Rng } from "./_fuzz.ts";
import {
  canReadTcp,
  DOCUMENTED_CLOSE_CODES,
  heldServerSockets,
  kernelBuffering,
  memory,
  mib,
  percentile,
  SequenceReader,
  settledMemory,
} from "./_probe.ts";

const MiB = 1024 * 1024;
const MAX = 64 * 1024; // maxMessageBytes for the fuzzer: small, so big frames stay cheap
/** Random frames per fuzz run (after the field sweep); HUBBUB_FUZZ_FRAMES for a longer run. */
const FUZZ_FRAMES = Number(env("HUBBUB_FUZZ_FRAMES") ?? 5000);
const BURST = 1500; // 8 KiB frames queued before hub.close({ drainMs })
/**
 * Heap a connect/join/disconnect cycle may leave behind, on average, after a full GC. The README
 * puts the hub's own heap at ~500 bytes per open connection (beyond the runtime's): a cycle that
 * kept its connection would leave more than that; Bun leaves under 200.
 */
const CHURN_BYTES_PER_CYCLE = 384;
/** How soon a slot the hub closed must be free for a new client (a close-handshake timeout). */
const SLOT_FREED_MS = 3000;

// ---------------------------------------------------------------- the fuzzer's app

type Chat = { type: "chat"; room: string; text: string; id?: string | number };
type Move = { type: "move"; x: number; y: number; id?: string | number };
type FuzzMsg = Chat | Move;

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    Object.getPrototypeOf(v) === Object.prototype;
}

function onlyKeys(v: Record<string, unknown>, keys: string[]): boolean {
  return Object.keys(v).every((k) => keys.includes(k));
}

function isId(v: unknown): boolean {
  return v === undefined || (typeof v === "string" && v.length > 0 && v.length <= 128) ||
    (typeof v === "number" && Number.isFinite(v));
}

function isChat(v: unknown): v is Chat {
  return isPlain(v) && onlyKeys(v, ["type", "room", "text", "id"]) && v.type === "chat" &&
    typeof v.room === "string" && v.room.length > 0 && v.room.length <= 64 &&
    typeof v.text === "string" && v.text.length <= 2000 && isId(v.id);
}

function isMove(v: unknown): v is Move {
  return isPlain(v) && onlyKeys(v, ["type", "x", "y", "id"]) && v.type === "move" &&
    typeof v.x === "number" && Number.isFinite(v.x) && typeof v.y === "number" &&
    Number.isFinite(v.y) && isId(v.id);
}

/** A Standard Schema from a predicate (what zod or valibot would be in an app). */
function schemaOf<T>(predicate: (v: unknown) => v is T): StandardSchemaV1<unknown, T> {
  return {
    "~standard": {
      version: 1,
      vendor: "hubbub-hardening",
      validate: (v) => predicate(v) ? { value: v } : { issues: [{ message: "invalid" }] },
    },
  };
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function preview(v: unknown): string {
  try {
    return (JSON.stringify(v) ?? String(v)).slice(0, 120);
  } catch {
    return String(v).slice(0, 120);
  }
}

/** Everything the fuzzer's hooks observed. */
interface Observed {
  /** Payloads a hook saw that should never have got past validation. */
  violations: string[];
  /** Errors reported through onError. */
  hookErrors: string[];
  /** Close codes reported by onDisconnect. */
  serverCloseCodes: number[];
  /** App messages that reached a handler. */
  handled: number;
}

/** Hub options that check, in every hook, that what arrives was validated. */
function fuzzHubOptions(o: Observed, hub: () => Hub): HubOptions {
  return {
    maxMessageBytes: MAX,
    // Generous: the fuzzer wants its frames processed; the flood tests use the defaults.
    rateLimit: { messagesPerSecond: 1e6, burst: 1e6, bytesPerSecond: 1 << 30, byteBurst: 1 << 30 },
    schema: schemaOf(isChat) as StandardSchemaV1<unknown, InboundMessage>,
    canJoin: (_c, room) => {
      if (typeof room !== "string" || room === "" || room.length > 128 || CONTROL.test(room)) {
        o.violations.push(`canJoin saw room ${preview(room)}`);
      }
      return room.startsWith("ok-");
    },
    authenticate: (_c, m) => {
      if (!isPlain(m) || m.type !== "authenticate") {
        o.violations.push(`authenticate saw ${preview(m)}`);
      }
      return m.token === "good" ? "fuzz-user" : null;
    },
    onMessage: (c, m) => {
      o.handled++;
      if (!isChat(m)) {
        o.violations.push(`onMessage saw ${preview(m)}`);
        return;
      }
      if (!c.rooms.has(m.room)) {
        throw new MessageError("NOT_IN_ROOM", "Cannot chat: you have not joined the room");
      }
      hub().emit("chat", { text: m.text.slice(0, 50) }, { rooms: m.room });
    },
    onBinary: (_c, data) => {
      if (!(data instanceof Uint8Array) || data.byteLength > MAX) {
        o.violations.push(`onBinary saw ${preview(data)}`);
      }
    },
    onJoin: (_c, room) => {
      if (typeof room !== "string") o.violations.push(`onJoin saw ${preview(room)}`);
    },
    onLeave: (_c, room, cause) => {
      if (typeof room !== "string" || !["unsubscribe", "server", "disconnect"].includes(cause)) {
        o.violations.push(`onLeave saw ${preview([room, cause])}`);
      }
    },
    onDisconnect: (_c, info) => void o.serverCloseCodes.push(info.code),
    onError: (e, source) => void o.hookErrors.push(`${source}: ${e}`),
  };
}

/** What the fuzzer's app lets through to a handler: a valid chat (onMessage) or move (on). */
function reachesHandler(data: string | Uint8Array): "chat" | "move" | undefined {
  if (typeof data !== "string") return undefined;
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return undefined;
  }
  return isChat(v) ? "chat" : isMove(v) ? "move" : undefined;
}

function registerMove(hub: Hub, o: Observed): void {
  (hub as unknown as Hub<FuzzMsg>).on("move", (_c, m) => {
    o.handled++;
    if (!isMove(m)) o.violations.push(`on("move") saw ${preview(m)}`);
    return { sum: m.x + m.y };
  }, { schema: schemaOf(isMove) });
}

/** Own property names of the built-in prototypes a payload could try to pollute. */
function prototypeSnapshot(): string {
  return [Object.prototype, Array.prototype, Function.prototype, String.prototype]
    .map((p) => Reflect.ownKeys(p).map(String).sort().join(","))
    .join("|");
}

function assertPrototypesClean(before: string): void {
  assert.equal(prototypeSnapshot(), before, "a built-in prototype gained or lost a key");
  // deno-lint-ignore no-explicit-any
  const probe = {} as any;
  assert.equal(probe.polluted, undefined, "({}).polluted is defined");
  assert.equal(probe.isAdmin, undefined, "({}).isAdmin is defined");
  assert.equal(Object.getPrototypeOf(probe), Object.prototype);
}

function assertEnvelope(m: Msg): void {
  assert.equal(typeof m.type, "string", `bad envelope ${preview(m)}`);
  assert.equal(typeof m.timestamp, "number", `bad envelope ${preview(m)}`);
  assert.ok("data" in m, `bad envelope ${preview(m)}`);
}

const KNOWN_ERROR_CODES = new Set<string>([...Object.values(ErrorCode), "NOT_IN_ROOM"]);

/** A fresh client can do everything: established, ping, subscribe, and gets a room emit. */
async function assertServes(s: ServerHandle, room = "ok-fresh"): Promise<void> {
  const a = await TestClient.connect(s.url);
  const b = await TestClient.connect(s.url);
  try {
    assert.equal((await a.next()).type, "connection.established");
    assert.equal((await b.next()).type, "connection.established");
    assert.equal((await a.request({ type: "ping" }, "pong")).type, "pong");
    const sub = await a.request({ type: "subscribe", room });
    assert.equal(sub.type, "subscribed", `subscribe: ${preview(sub)}`);
    assert.equal((await b.request({ type: "subscribe", room })).type, "subscribed");
    assert.equal(s.hub.emit("fresh", { ok: true }, { rooms: room }), 2);
    assert.deepEqual((await a.next("fresh")).data, { ok: true });
    assert.deepEqual((await b.next("fresh")).data, { ok: true });
  } finally {
    await a.shut();
    await b.shut();
  }
}

function countBy<T>(items: T[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of items) out[String(x)] = (out[String(x)] ?? 0) + 1;
  return out;
}

/** Send a ping with a fresh id and wait for its pong; false if the connection closed. */
async function sync(c: TestClient, id: string, ms = 10_000): Promise<boolean> {
  try {
    c.send({ type: "ping", id });
    while (true) {
      const m = await c.next("pong", ms);
      if ((m.data as { id?: string }).id === id) return true;
    }
  } catch {
    return false;
  }
}

function trySend(c: TestClient, data: string | Uint8Array): void {
  try {
    c.send(data);
  } catch { /* closing: the next sync notices */ }
}

/**
 * What a server does with each crafted frame of the malformed-frames test. RFC 6455: close
 * with 1002 (protocol error), 1007 (invalid UTF-8 in a text frame or close reason) or 1009
 * (over the size limit: the hub's maxMessageBytes, or a length no runtime accepts). Bun (uWS,
 * also under Hono) does exactly that. Deno's server (also under Hono) does not, and the test
 * holds it to what it does, so a change either way is noticed:
 * - on a protocol error it drops the TCP connection without a close frame (the client sees
 *   1006), except for an invalid close code, which it answers with 1002;
 * - it accepts unmasked client frames (RFC 6455 5.1 says a server must close);
 * - a reassembled message over maxMessageBytes is closed by the hub with 1009 (it sends
 *   connection.closed 1009 first), but the close frame is lost to the frame the client sends
 *   after it: Deno drops a close frame when frames arrive after it closed.
 * @param cases The crafted cases' names.
 * @returns The expected outcome of each, on this runtime.
 */
function expectedFrameOutcomes(cases: string[]): Record<string, number | string> {
  const rfc: Record<string, number> = {
    "invalid UTF-8 text": 1007,
    "overlong UTF-8 text": 1007,
    "UTF-8 surrogate in text": 1007,
    "unmasked frame": 1002,
    "RSV1 without an extension": 1002,
    "reserved data opcode": 1002,
    "reserved control opcode": 1002,
    "ping over 125 bytes": 1002,
    "fragmented ping": 1002,
    "continuation with no message": 1002,
    "new message inside a fragmented one": 1002,
    "fragments adding up over maxMessageBytes": 1009,
    "length 2^63": 1009,
    "length 100 MiB, no body": 1009,
    "close code 999": 1002,
    "close code 1005": 1002,
    "close code 5000": 1002,
    "1-byte close payload": 1002,
    "invalid UTF-8 close reason": 1007,
    "garbage instead of a frame": 1002,
  };
  const out: Record<string, number | string> = {};
  for (const what of cases) {
    const code = rfc[what];
    if (code === undefined) throw new Error(`no expected outcome for the crafted case ${what}`);
    if (!isDeno) out[what] = code;
    else if (what === "unmasked frame") out[what] = "pong";
    else if (what === "fragments adding up over maxMessageBytes") {
      out[what] = "1006 after connection.closed 1009";
    } else out[what] = what.startsWith("close code") ? 1002 : 1006;
  }
  return out;
}

/** Options for {@linkcode hardeningSuite}. */
export interface HardeningOptions extends TestOptions {
  /** A shorter run of every test (fewer frames and cycles); default false. */
  light?: boolean;
}

/**
 * Register the hardening suite for one adapter.
 * @param name Adapter name, prefixed to each test.
 * @param start Server factory (real server on port 0).
 * @param options Skip (e.g. wrong runtime).
 */
export function hardeningSuite(
  name: string,
  start: StartServer,
  options: HardeningOptions = {},
): void {
  // A light run (the Hono suites, whose hub and runtime are covered in full by the adapters'
  // own suites): fewer random frames and churn cycles, a shorter flood and drain deadline.
  const light = options.light === true;
  const fuzzFrames = light ? Math.min(FUZZ_FRAMES, 1500) : FUZZ_FRAMES;
  const churnCycles = light ? 1000 : 2000;
  const floodMs = light ? 1000 : 1500;
  const drainMs = light ? 1000 : 2000;
  const t = (title: string, fn: () => Promise<void>, timeout = 30_000, when = true) =>
    test(`${name}: ${title}`, fn, { timeout, ...options, if: options.if !== false && when });

  // ------------------------------------------------------------ 1. the protocol fuzzer

  t(
    "survives thousands of hostile frames; hooks only see validated input; prototypes stay clean",
    async () => {
      const seed = fuzzSeed();
      console.log(`[fuzz] seed ${seed} (replay with HUBBUB_FUZZ_SEED=${seed})`);
      const rng = new Rng(seed);
      const protoBefore = prototypeSnapshot();
      const o: Observed = { violations: [], hookErrors: [], serverCloseCodes: [], handled: 0 };
      const ref: { hub?: Hub } = {};
      const s = await start(fuzzHubOptions(o, () => ref.hub!));
      ref.hub = s.hub;
      registerMove(s.hub, o);
      const pool: TestClient[] = [];
      const all: TestClient[] = [];
      const clientCloseCodes: number[] = [];
      const unexpected: string[] = [];
      const kinds: string[] = [];
      const open = async () => {
        const c = await TestClient.connect(s.url);
        all.push(c);
        assert.equal((await c.next()).type, "connection.established");
        return c;
      };
      try {
        for (let i = 0; i < 4; i++) pool.push(await open());
        let sent = 0;
        let oversize = 0;
        let round = 0;
        /** Valid app messages sent (each must reach its handler), and moves with an id. */
        const expected = { chat: 0, move: 0, chatIds: 0, moveIds: 0 };
        const recent: string[][] = pool.map(() => []);
        const sweep = fieldSweep();
        const total = sweep.length + fuzzFrames;
        while (sent < total) {
          for (let k = 0; k < pool.length && sent < total; k++) {
            for (let j = 0; j < 50 && sent < total; j++) {
              const frame = sent < sweep.length ? sweep[sent] : fuzzFrame(rng, MAX);
              sent++;
              kinds.push(sent <= sweep.length ? "field sweep" : frame.kind);
              if (frame.oversize) {
                // Over the limit: its own connection, which must be closed with 1009.
                oversize++;
                const c = await open();
                trySend(c, frame.data);
                const info = await Promise.race([c.closed, delay(5000).then(() => undefined)]);
                assert.ok(info, `no close after an oversize frame (${frame.kind})`);
                assert.equal(info.code, CloseCode.MESSAGE_TOO_BIG, `${frame.kind}`);
                clientCloseCodes.push(info.code);
                continue;
              }
              recent[k].push(frame.kind);
              const handler = reachesHandler(frame.data);
              if (handler !== undefined) {
                expected[handler]++;
                if (JSON.parse(frame.data as string).id !== undefined) expected[`${handler}Ids`]++;
              }
              trySend(pool[k], frame.data);
            }
          }
          const ok = await Promise.all(pool.map((c, k) => sync(c, `sync-${round}-${k}`)));
          round++;
          for (let k = 0; k < pool.length; k++) {
            if (!ok[k]) {
              const code = pool[k].closeInfo?.code;
              unexpected.push(`closed with ${code} after one of: ${[...new Set(recent[k])]}`);
              if (code !== undefined) clientCloseCodes.push(code);
              await pool[k].shut();
              pool[k] = await open();
            }
            recent[k] = [];
          }
        }
        // Every reply is an envelope; every error carries a known code.
        const errors: string[] = [];
        for (const c of all) {
          for (const m of c.messages) {
            assertEnvelope(m);
            if (m.type === "error") {
              const code = (m.data as { code?: unknown }).code;
              assert.ok(KNOWN_ERROR_CODES.has(code as string), `unknown error code ${preview(m)}`);
              errors.push(code as string);
            }
          }
        }
        console.log(
          `[fuzz] ${sent} frames (${sweep.length} from the field sweep, ${oversize} oversize, each on its own connection), ` +
            `${o.handled} reached a handler; errors by code ${JSON.stringify(countBy(errors))}; ` +
            `frame kinds ${JSON.stringify(countBy(kinds.map((k) => k.replace(/\d+/g, "N"))))}`,
        );
        assert.deepEqual(
          unexpected,
          [],
          "a well-formed frame under the size limit closed a connection",
        );
        assert.deepEqual(o.violations, [], "a hook saw unvalidated input");
        // The positive side: every valid app message was handled (a schema that refused
        // everything would leave the hooks nothing to check), and every move with an id got its ack.
        const acks = all.flatMap((c) => c.messages.filter((m) => m.type === "ack"));
        const moveAcks = acks.filter((m) =>
          (m.data as { result?: { sum?: number } }).result?.sum !== undefined
        );
        console.log(
          `[fuzz] handled ${o.handled}, expected ${
            JSON.stringify(expected)
          }; ${acks.length} acks, ${moveAcks.length} of moves`,
        );
        assert.ok(expected.chat > 0 && expected.move > 0, "the fuzz run sent no valid messages");
        assert.equal(
          o.handled,
          expected.chat + expected.move,
          "valid messages that reached a handler",
        );
        assert.equal(moveAcks.length, expected.moveIds, "acks for moves that carried an id");
        assert.ok(
          acks.length - moveAcks.length <= expected.chatIds,
          "more chat acks than chats with an id",
        );
        assert.deepEqual(o.hookErrors, [], "a hook failed");
        assertPrototypesClean(protoBefore);
        await assertServes(s);
        for (const c of all) await c.shut();
        await until(() => s.hub.connectionCount === 0, 5000, "every fuzz connection to close");
        assert.equal(s.hub.roomCount, 0);
        assert.equal(s.hub.userCount, 0);
        for (const code of [...clientCloseCodes, ...o.serverCloseCodes]) {
          assert.ok(DOCUMENTED_CLOSE_CODES.has(code), `undocumented close code ${code}`);
        }
        console.log(
          `[fuzz] close codes: client ${JSON.stringify(countBy(clientCloseCodes))}, ` +
            `server ${JSON.stringify(countBy(o.serverCloseCodes))}`,
        );
      } catch (error) {
        console.log(`[fuzz] FAILED with seed ${seed}`);
        throw error;
      } finally {
        await Promise.all(all.map((c) => c.shut()));
        await s.close();
      }
    },
  );

  t(
    "survives malformed WebSocket frames (bad opcodes, lying lengths, invalid UTF-8 text)",
    async () => {
      const seed = fuzzSeed();
      console.log(`[frames] seed ${seed}`);
      const rng = new Rng(seed);
      const protoBefore = prototypeSnapshot();
      const o: Observed = { violations: [], hookErrors: [], serverCloseCodes: [], handled: 0 };
      const ref: { hub?: Hub } = {};
      const s = await start(fuzzHubOptions(o, () => ref.hub!));
      ref.hub = s.hub;
      registerMove(s.hub, o);
      const enc = (x: string) => new TextEncoder().encode(x);
      const ping = enc('{"type":"ping"}');
      const garbage = new Rng(7).bytes(64);
      garbage[0] |= 0x70;
      const crafted: [string, (r: RawSocket) => void][] = [
        ["invalid UTF-8 text", (r) => r.send(Op.TEXT, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))],
        ["overlong UTF-8 text", (r) => r.send(Op.TEXT, new Uint8Array([0xc0, 0xaf]))],
        ["UTF-8 surrogate in text", (r) => r.send(Op.TEXT, new Uint8Array([0xed, 0xa0, 0x80]))],
        ["unmasked frame", (r) => r.send(Op.TEXT, ping, { mask: false })],
        ["RSV1 without an extension", (r) => r.send(Op.TEXT, ping, { rsv: 4 })],
        ["reserved data opcode", (r) => r.send(3, enc("x"))],
        ["reserved control opcode", (r) => r.send(11, enc("x"))],
        ["ping over 125 bytes", (r) => r.send(Op.PING, new Uint8Array(126))],
        ["fragmented ping", (r) => r.send(Op.PING, enc("x"), { fin: false })],
        ["continuation with no message", (r) => r.send(Op.CONTINUATION, ping)],
        ["new message inside a fragmented one", (r) => {
          r.send(Op.TEXT, enc('{"type":'), { fin: false });
          r.send(Op.TEXT, enc('"ping"}'));
        }],
        ["fragments adding up over maxMessageBytes", (r) => {
          for (let i = 0; i < 20; i++) {
            r.send(i ? Op.CONTINUATION : Op.TEXT, new Uint8Array(4096).fill(0x20), { fin: false });
          }
          r.send(Op.CONTINUATION, enc("1"));
        }],
        [
          "length 2^63",
          (r) => r.write(encodeFrame(Op.TEXT, new Uint8Array(0), { declaredLength: 1n << 63n })),
        ],
        [
          "length 100 MiB, no body",
          (r) => r.write(encodeFrame(Op.TEXT, new Uint8Array(0), { declaredLength: 100 * MiB })),
        ],
        ["close code 999", (r) => r.send(Op.CLOSE, closePayload(999))],
        ["close code 1005", (r) => r.send(Op.CLOSE, closePayload(1005))],
        ["close code 5000", (r) => r.send(Op.CLOSE, closePayload(5000))],
        ["1-byte close payload", (r) => r.send(Op.CLOSE, new Uint8Array([3]))],
        ["invalid UTF-8 close reason", (r) => r.send(Op.CLOSE, new Uint8Array([3, 232, 0xff]))],
        // Random bytes, but fixed, with the reserved bits set: a protocol error on any runtime
        // (random garbage can happen to be a valid close frame, which the server echoes).
        ["garbage instead of a frame", (r) => r.write(garbage)],
      ];
      // Then random headers: any opcode, FIN/RSV bits, mask or not, lengths that lie a little.
      // A header that lies about its length can leave the server waiting for bytes that never
      // come (our ping becomes the rest of its payload): only those may end with no answer.
      const lied = new Set<string>();
      const random: [string, (r: RawSocket) => void][] = Array.from({ length: 24 }, (_, i) => [
        `random frames #${i}`,
        (r: RawSocket) => {
          for (let n = 0; n < 10; n++) {
            const payload = rng.chance(0.3) ? ping : rng.bytes(rng.int(0, 300));
            const declaredLength = rng.chance(0.8)
              ? undefined
              : payload.length + rng.int(-5, 5) * (payload.length > 5 ? 1 : 0);
            if (declaredLength !== undefined && declaredLength !== payload.length) {
              lied.add(`random frames #${i}`);
            }
            r.write(encodeFrame(rng.int(0, 15), payload, {
              fin: rng.chance(0.8),
              rsv: rng.chance(0.8) ? 0 : rng.int(1, 7),
              mask: rng.chance(0.9),
              declaredLength,
            }));
          }
        },
      ]);
      const sockets: RawSocket[] = [];
      const outcomes: string[] = [];
      const frameCodes: number[] = [];
      /** Per crafted case: the close code of the server's close frame, 1006 (TCP closed with
       * no close frame), "pong" (answered and still open) or "silent" (neither, in 1.5 s). */
      const got: Record<string, number | string> = {};
      const failedWaits: string[] = [];
      const pong = (r: RawSocket) => r.texts().some((t) => JSON.parse(t).type === "pong");
      try {
        await Promise.all([...crafted, ...random].map(async ([what, act]) => {
          const r = await rawConnect(s.url);
          sockets.push(r);
          if (!await r.wait(() => r.frames.length >= 1, 5000)) {
            failedWaits.push(`${what}: no connection.established`);
          }
          act(r);
          r.send(Op.TEXT, ping);
          // Either the server answers (pong) or it closes the connection (a close frame, or
          // TCP closed without one).
          const answered = await r.wait(() => r.closeCode !== undefined || pong(r), 1500);
          if (!answered && !r.isClosed && !lied.has(what)) {
            failedWaits.push(`${what}: neither answered nor closed in 1.5 s`);
          }
          const code = r.closeCode ?? (r.isClosed ? 1006 : undefined);
          if (code !== undefined) frameCodes.push(code);
          outcomes.push(`${what}: ${code === undefined ? "open" : `closed ${code}`}`);
          if (what.startsWith("random")) return;
          got[what] = code ?? (pong(r) ? "pong" : "silent");
          // The hub's own 1009 on Deno: the close frame is lost to the ping written after it
          // (see below), but the hub's connection.closed says why.
          if (got[what] === 1006 && r.texts().some((t) => t.includes('"code":1009'))) {
            got[what] = "1006 after connection.closed 1009";
          }
        }));
        assert.deepEqual(failedWaits, [], "a wait for the server's answer failed");
        assert.deepEqual(got, expectedFrameOutcomes(crafted.map(([what]) => what)));
        for (const r of sockets) await r.destroy();
        await until(() => s.hub.connectionCount === 0, 5000, "every raw connection to be gone");
        console.log(`[frames] close codes in close frames: ${JSON.stringify(countBy(frameCodes))}`);
        for (const code of [...frameCodes, ...o.serverCloseCodes]) {
          assert.ok(
            DOCUMENTED_CLOSE_CODES.has(code),
            `undocumented close code ${code}: ${outcomes}`,
          );
        }
        assert.deepEqual(o.violations, []);
        assert.deepEqual(o.hookErrors, []);
        assertPrototypesClean(protoBefore);
        await assertServes(s);
        assert.equal(s.hub.roomCount, 0);
      } finally {
        await Promise.all(sockets.map((r) => r.destroy()));
        await s.close();
      }
    },
  );

  // ------------------------------------------------------------ 2. floods

  t(
    "a flooding client is told RATE_LIMITED, then closed with 4002, while a calm client is still served",
    async () => {
      const closes = new Map<string, number>();
      // Real time, except that it stands still during the first burst: the allowance is 200
      // frames at one instant, and the buckets would refill (100/s) while 420 frames arrive.
      let frozen: number | undefined;
      const clock: Clock = {
        now: () => frozen ?? Date.now(),
        setInterval: (fn, ms) => setInterval(fn, ms),
        clearInterval: (h) => clearInterval(h as number),
        setTimeout: (fn, ms) => setTimeout(fn, ms),
        clearTimeout: (h) => clearTimeout(h as number),
      };
      const s = await start({
        clock,
        onDisconnect: (c, i) => void closes.set(c.id, i.code),
        onError: () => {},
      });
      const calm = await TestClient.connect(s.url);
      const flooders: TestClient[] = [];
      try {
        await calm.next();
        let seq = 0;
        const rtt = async () => {
          const id = `calm-${seq++}`;
          const t0 = performance.now();
          assert.ok(await sync(calm, id, 5000), "the calm client was closed");
          return performance.now() - t0;
        };
        // Paced well under the default limit (100/s), as a well-behaved client would be.
        const before: number[] = [];
        for (let i = 0; i < 30; i++) {
          before.push(await rtt());
          await delay(15);
        }
        // One burst just over the allowance (200 + 200 dropped), then the client only reads.
        const burst = await TestClient.connect(s.url);
        flooders.push(burst);
        await burst.next();
        frozen = Date.now();
        for (let i = 0; i < 420; i++) burst.send({ type: "ping" });
        // Deno drops the close frame when frames arrive after it closed (the client sees 1006).
        const burstClose = (await burst.closed).code;
        assert.ok([CloseCode.RATE_LIMITED, 1006].includes(burstClose));
        frozen = undefined;
        const burstTypes = burst.messages.map((m) =>
          m.type === "error" ? (m.data as { code: string }).code : m.type
        );
        const pongs = burstTypes.filter((x) => x === "pong").length;
        if (burstClose === CloseCode.RATE_LIMITED) {
          // A clean close shows the whole sequence: the allowance, the warning, then the close.
          assert.equal(pongs, 200, "the burst allowance");
          assert.ok(burstTypes.includes(ErrorCode.RATE_LIMITED), "told RATE_LIMITED");
          assert.ok(
            burstTypes.indexOf(ErrorCode.RATE_LIMITED) < burstTypes.indexOf("connection.closed"),
            "told before being closed",
          );
          assert.deepEqual(burst.messages.at(-1)?.data, { code: 4002, reason: "rate limited" });
        } else {
          // A reset (1006) loses what was still in flight, the warning and connection.closed
          // included (seen on CI on Deno): at most the allowance arrives. The server side, a
          // close with 4002, is checked for every flooder below, and the warning is counted.
          assert.ok(pongs > 0 && pongs <= 200, `${pongs} pongs for a burst allowance of 200`);
        }
        // Then a sustained flood: clients that reconnect and send as fast as they can.
        let flooding = true;
        const floodFrames = [0, 0];
        const flood = async (which: number) => {
          // Pings (message bucket) or 16 KiB frames (byte bucket), as fast as the client can.
          const frame = which === 0
            ? '{"type":"ping"}'
            : JSON.stringify({ type: "ping", pad: "x".repeat(16 * 1024) });
          while (flooding) {
            const c = await TestClient.connect(s.url);
            flooders.push(c);
            await c.next();
            while (!c.closeInfo && Date.now() < floodEnd + 5000) {
              for (let i = 0; i < 100; i++) trySend(c, frame);
              floodFrames[which] += 100;
              await delay(0);
            }
          }
        };
        const floodEnd = Date.now() + floodMs;
        const floods = [flood(0), flood(1)];
        const during: number[] = [];
        while (Date.now() < floodEnd) {
          during.push(await rtt());
          await delay(15);
        }
        flooding = false;
        await Promise.all(floods);
        // Server side, every flooding connection was closed with 4002. Client side, the close
        // frame can be lost: the server closes with flood frames still unread in its receive
        // buffer, so TCP resets the connection (1006). A clean close shows the whole sequence.
        let clean = 0;
        let warned = 0;
        for (const c of flooders) {
          const info = await c.closed;
          const id = await c.clientId();
          await until(() => closes.has(id), 5000, "the flooder's disconnect hook");
          assert.equal(
            closes.get(id),
            CloseCode.RATE_LIMITED,
            "a flooder was not closed with 4002",
          );
          assert.ok([CloseCode.RATE_LIMITED, 1006].includes(info.code), `flooder saw ${info.code}`);
          const errors = c.messages.filter((m) => m.type === "error").map((m) =>
            (m.data as { code: string }).code
          );
          if (errors.includes(ErrorCode.RATE_LIMITED)) warned++;
          if (info.code !== CloseCode.RATE_LIMITED) continue;
          clean++;
          assert.deepEqual(c.messages.at(-1)?.data, { code: 4002, reason: "rate limited" });
        }
        assert.ok(warned > flooders.length / 2, `only ${warned} flooders saw RATE_LIMITED`);
        const fmt = (xs: number[]) =>
          `p50 ${percentile(xs, 50).toFixed(2)} ms, max ${
            Math.max(...xs).toFixed(2)
          } ms (n=${xs.length})`;
        console.log(
          `[flood] ${flooders.length} flooding connections (${floodFrames[0]} pings, ` +
            `${
              floodFrames[1]
            } 16 KiB frames sent), all closed with 4002 (${warned} saw RATE_LIMITED, ${clean} the ` +
            `close frame, ${flooders.length - clean} a reset). Calm client RTT ` +
            `before: ${fmt(before)}; during: ${fmt(during)}`,
        );
        // Every calm round trip was answered (within 5 s each, see rtt()); its latency is
        // logged above, not bounded here: a latency bound belongs to a benchmark.
        assert.equal(calm.closeInfo, undefined, "the calm client was closed");
        assert.ok(during.length > 0, "the calm client was served during the flood");
      } finally {
        await calm.shut();
        await Promise.all(flooders.map((c) => c.shut()));
        await s.close();
      }
    },
  );

  t("1,000 subscribe/unsubscribe cycles of distinct rooms leave no room behind", async () => {
    // The async guard of "slow-" rooms answers only when the test lets it (after the client left).
    let guardStarted = false;
    let release!: () => void;
    const guardRelease = {
      promise: new Promise<void>((r) => release = r),
      resolve: () => release(),
    };
    const s = await start({
      rateLimit: { messagesPerSecond: 1e5, burst: 1e5 },
      canJoin: (_c, room) => {
        if (!room.startsWith("slow-")) return room.startsWith("r-") || room.startsWith("keep-");
        guardStarted = true;
        return guardRelease.promise.then(() => true);
      },
      onError: () => {},
    });
    const clients: TestClient[] = [];
    const open = async () => {
      const c = await TestClient.connect(s.url);
      clients.push(c);
      await c.next();
      return c;
    };
    try {
      const a = await open();
      const replies = (type: string) => a.messages.filter((m) => m.type === type).length;
      for (let base = 0; base < 1000; base += 100) {
        for (let i = base; i < base + 100; i++) {
          a.send({ type: "subscribe", room: `r-${i}` });
          a.send({ type: "unsubscribe", room: `r-${i}` });
          if (i % 10 === 0) a.send({ type: "subscribe", room: `refused-${i}` });
        }
        await until(() => replies("unsubscribed") === base + 100, 10_000, "replies");
      }
      assert.equal(replies("subscribed"), 1000);
      assert.equal(a.messages.filter((m) => m.type === "error").length, 100, "refusals");
      assert.equal(s.hub.roomCount, 0);
      assert.deepEqual([...s.hub.rooms()], []);
      // Rooms left by disconnecting: cleanly, abruptly, and by a server kick.
      const b = await open();
      const c = await open();
      const d = await open();
      for (const [k, x] of [b, c, d].entries()) {
        for (let i = 0; i < 100; i++) x.send({ type: "subscribe", room: `keep-${k}-${i}` });
        await until(() => x.messages.filter((m) => m.type === "subscribed").length === 100);
        x.send({ type: "subscribe", room: `keep-${k}-over` });
        const err = await x.next("error");
        assert.equal((err.data as { code: string }).code, ErrorCode.LIMIT_EXCEEDED);
      }
      assert.equal(s.hub.roomCount, 300);
      await b.shut();
      c.ws.terminate();
      s.hub.connection(await d.clientId())!.close(4100, "kicked");
      await until(() => s.hub.roomCount === 0, 5000, "rooms of gone clients to be pruned");
      // A subscribe whose (async) guard answers after the client left creates nothing.
      const e = await open();
      e.send({ type: "subscribe", room: "slow-1" });
      await until(() => guardStarted, 5000, "the guard to start"); // the race is real
      e.ws.terminate();
      await e.closed;
      await until(() => s.hub.connectionCount === 1, 5000, "the hub to see the client go");
      guardRelease.resolve(); // the guard says yes, to a client that is gone
      await delay(100);
      assert.equal(s.hub.roomCount, 0);
      assert.deepEqual([...s.hub.rooms()], []);
      await until(() => s.hub.connectionCount === 1, 5000);
    } finally {
      await Promise.all(clients.map((c) => c.shut()));
      await s.close();
    }
  });

  // ------------------------------------------------------------ 3. slow readers

  t(
    "2 stalled readers of 20 are closed with 4000, memory stays bounded, the rest get every message in order",
    async () => {
      const limits = {
        highWaterMark: 64 * 1024,
        lowWaterMark: 16 * 1024,
        maxQueueBytes: 256 * 1024,
        maxQueueMessages: 10_000,
      };
      const closes: { id: string; code: number }[] = [];
      const s = await start({
        ...limits,
        onDisconnect: (c, i) => void closes.push({ id: c.id, code: i.code }),
        onError: () => {},
      });
      const stalled = [await openStalledSocket(s.url), await openStalledSocket(s.url)];
      const readers: SequenceReader[] = [];
      try {
        await until(() => s.hub.connectionCount === 2, 5000, "the stalled clients");
        const stalledIds = s.hub.connections().map((c) => c.id);
        for (let i = 0; i < 18; i++) readers.push(await SequenceReader.connect(s.url));
        await until(() => s.hub.connectionCount === 20, 5000, "20 clients");
        for (const c of s.hub.connections()) s.hub.join(c, "r");
        const before = await settledMemory();
        let peak = before.rss;
        let peakQueued = 0;
        const pad = "x".repeat(4 * 1024);
        let sent = 0;
        let closedAt = -1;
        const started = Date.now();
        // A sustained broadcast in bursts the readers keep up with; 256 more after both are closed.
        while (sent < 8192 && (closedAt < 0 || sent < closedAt + 256)) {
          for (let i = 0; i < 32; i++) s.hub.emit("n", { i: sent++, pad }, { rooms: "r" });
          await until(
            () => readers.every((r) => r.count >= sent),
            10_000,
            "the readers to keep up",
          );
          peak = Math.max(peak, memory().rss);
          peakQueued = Math.max(peakQueued, s.hub.stats().queuedBytes.max);
          if (closedAt < 0 && closes.filter((c) => c.code === CloseCode.SLOW_CLIENT).length === 2) {
            closedAt = sent;
          }
        }
        const ms = Date.now() - started;
        const after = await settledMemory();
        const bound = stalled.length * (limits.maxQueueBytes + limits.highWaterMark) + 64 * MiB;
        console.log(
          `[slow] ${sent} × 4 KiB to 20 clients in ${ms} ms; stalled closed after ${closedAt}; ` +
            `RSS ${mib(before.rss)} → ${mib(after.rss)} MiB (peak ${mib(peak)}), growth ` +
            `${mib(after.rss - before.rss)} MiB, bound ${mib(bound)} MiB; heap ` +
            `${mib(before.heapUsed)} → ${
              mib(after.heapUsed)
            } MiB; largest send queue ${peakQueued} bytes`,
        );
        assert.ok(closedAt > 0, "the stalled readers were not closed");
        assert.deepEqual(
          closes.map((c) => c.id).sort(),
          [...stalledIds].sort(),
          "exactly the stalled clients were closed",
        );
        assert.ok(closes.every((c) => c.code === CloseCode.SLOW_CLIENT));
        for (const r of readers) {
          assert.equal(r.disorder, undefined, `a reader saw a gap: ${r.disorder}`);
          assert.equal(r.count, sent, "a reader missed messages");
          assert.equal(r.closeCode, undefined, "a reader was closed");
        }
        assert.ok(after.rss - before.rss < bound, `RSS grew ${mib(after.rss - before.rss)} MiB`);
        // Tighter than RSS (which the allocator keeps): what the hub itself holds. No send queue
        // ever held more than maxQueueBytes and one frame; once the stalled clients are gone,
        // the heap is back within what their two queues and socket buffers could hold, + 1 MiB.
        const frame = 4 * 1024 + 64;
        assert.ok(
          peakQueued <= limits.maxQueueBytes + frame,
          `a send queue held ${peakQueued} bytes (maxQueueBytes ${limits.maxQueueBytes})`,
        );
        const heapBound = stalled.length * (limits.maxQueueBytes + limits.highWaterMark) + MiB;
        assert.ok(
          after.heapUsed - before.heapUsed < heapBound,
          `heap grew ${mib(after.heapUsed - before.heapUsed)} MiB (bound ${mib(heapBound)} MiB)`,
        );
        assert.ok(
          after.rss - before.rss < stalled.length * (limits.maxQueueBytes + limits.highWaterMark) +
              32 * MiB,
          `RSS grew ${mib(after.rss - before.rss)} MiB: more than 32 MiB beyond the two queues`,
        );
        assert.equal(s.hub.roomSize("r"), 18);
      } finally {
        for (const x of stalled) await x.destroy();
        await Promise.all(readers.map((r) => r.shut()));
        await s.close();
      }
    },
  );

  t(
    "a reader that stops reading a trickle is closed once its backlog passes the hub's limits",
    async () => {
      const limits = {
        highWaterMark: 64 * 1024,
        lowWaterMark: 16 * 1024,
        maxQueueBytes: 256 * 1024,
        maxQueueMessages: 10_000,
      };
      const closes: number[] = [];
      const s = await start({ ...limits, onDisconnect: (_c, i) => void closes.push(i.code) });
      const stalled = await openStalledSocket(s.url);
      try {
        await until(() => s.hub.connectionCount === 1, 5000);
        s.hub.join(s.hub.connections()[0], "r");
        // One 8 KiB frame per event-loop turn: every flush finds an empty queue.
        const frame = 8 * 1024;
        const pad = "x".repeat(frame);
        const bound = kernelBuffering() + limits.highWaterMark + limits.maxQueueBytes + 4 * MiB;
        let sent = 0;
        while (closes.length === 0 && sent * frame < bound + 16 * MiB) {
          s.hub.emit("n", { i: sent++, pad }, { rooms: "r" });
          await delay(0);
        }
        console.log(
          `[trickle] stalled reader closed with ${closes[0]} after ${mib(sent * frame)} MiB ` +
            `(bound ${mib(bound)} MiB: kernel buffers + highWaterMark + maxQueueBytes + 4 MiB)`,
        );
        assert.deepEqual(closes, [CloseCode.SLOW_CLIENT], "the stalled reader was not closed");
        assert.ok(
          sent * frame < bound,
          `closed only after ${mib(sent * frame)} MiB: the runtime buffered past the hub's limits`,
        );
      } finally {
        await stalled.destroy();
        await s.close();
      }
    },
  );

  // ------------------------------------------------------------ 4. churn

  const churn = (tight: boolean) => async () => {
    let opened = 0;
    let disconnected = 0;
    const s = await start({
      identify: (req) => {
        const user = new URL(req.url).searchParams.get("user");
        return user ? { userId: user } : undefined;
      },
      canJoin: () => true,
      onConnect: () => void opened++,
      onDisconnect: () => void disconnected++,
      onError: () => {},
    });
    const cycle = async (i: number) => {
      const c = await TestClient.connect(`${s.url}?user=u${i % 37}`);
      const hello = await c.next();
      assert.equal((hello.data as { userId: string }).userId, `u${i % 37}`);
      c.send({ type: "subscribe", room: `shared-${i % 10}` });
      c.send({ type: "subscribe", room: `own-${i}` });
      await c.next("subscribed");
      await c.next("subscribed");
      switch (i % 4) {
        case 0:
          await c.shut();
          break;
        case 1:
          c.ws.terminate();
          await c.closed;
          break;
        case 2:
          s.hub.connection(await c.clientId())?.close(4100, "kicked");
          await c.closed;
          break;
        default:
          c.send({ type: "ping" }); // and leave without waiting for the answer
          await c.shut();
      }
    };
    const run = async (from: number, to: number) => {
      for (let b = from; b < to; b += 100) {
        await Promise.all(Array.from({ length: Math.min(100, to - b) }, (_, k) => cycle(b + k)));
      }
    };
    // Measured cycles after the warm-up: churnCycles - 200 on every runtime.
    const measured = churnCycles - 200;
    try {
      await run(0, warmup); // warm-up: JIT, pools, buffers
      await until(() => s.hub.connectionCount === 0, 5000);
      const before = await settledMemory();
      const started = Date.now();
      await run(warmup, warmup + measured);
      await until(() => s.hub.connectionCount === 0, 10_000, "every connection to go");
      await until(() => disconnected === opened, 5000, "every disconnect hook");
      const ms = Date.now() - started;
      const after = await settledMemory();
      console.log(
        `[churn] ${measured} cycles in ${ms} ms after a ${warmup}-cycle warm-up; heap ` +
          `${mib(before.heapUsed)} → ${mib(after.heapUsed)} MiB, RSS ${mib(before.rss)} → ` +
          `${mib(after.rss)} MiB`,
      );
      assert.equal(opened, warmup + measured);
      assert.equal(s.hub.connectionCount, 0);
      assert.equal(s.hub.roomCount, 0);
      assert.equal(s.hub.userCount, 0);
      assert.deepEqual([...s.hub.rooms()], []);
      assert.ok(
        after.heapUsed - before.heapUsed < 16 * MiB,
        `heap grew ${mib(after.heapUsed - before.heapUsed)} MiB over ${measured} cycles`,
      );
      const perCycle = (after.heapUsed - before.heapUsed) / measured;
      console.log(`[churn] heap growth ${perCycle.toFixed(0)} bytes per cycle`);
      if (tight) {
        assert.ok(
          perCycle < CHURN_BYTES_PER_CYCLE,
          `heap grew ${perCycle.toFixed(0)} bytes per cycle (bound ${CHURN_BYTES_PER_CYCLE})`,
        );
      }
      await assertServes(s);
    } finally {
      await s.close();
    }
  };
  // Node's heap (V8 old space and code) keeps growing for ~2,000 cycles of this churn whatever
  // serves (a plain node:http + ws server grew 390-460 bytes per cycle over cycles 200-2,000),
  // then levels off: there the warm-up is 2,000 cycles, elsewhere 200.
  const warmup = isNode ? 2000 : 200;
  // KNOWN BUG (Deno 2.9, and Hono on Deno): the server keeps heap for every WebSocket whose
  // TCP connection drops without a close handshake, linearly (a client's terminate(); clean
  // closes and server kicks leave nothing). Measured in a separate server process: ~3.1 KB per
  // drop with a plain Deno.serve + upgradeWebSocket echo server (a runtime bug), ~4.6 KB with
  // hubbub (its per-connection objects stay reachable, likely through the socket's handlers).
  // The 450 drops of this test leave ~2.5 MiB. The tight bound is registered as skipped there;
  // the 16 MiB crash guard still runs.
  const heapKeptOnDrop = isDeno;
  t(
    `${
      churnCycles.toLocaleString("en")
    } connect/join/disconnect cycles leave every index empty and memory near its start`,
    churn(!heapKeptOnDrop),
    60_000,
  );
  if (heapKeptOnDrop) {
    t(
      `KNOWN BUG: ${
        churnCycles.toLocaleString("en")
      } connect/join/disconnect cycles keep under ${CHURN_BYTES_PER_CYCLE} heap bytes per cycle`,
      churn(true),
      60_000,
      false,
    );
  }

  // ------------------------------------------------------------ 5. hooks that fail

  type Trigger = (s: ServerHandle, clients: TestClient[]) => Promise<void>;
  interface HookCase {
    hook: string;
    source: HubErrorSource;
    options: (fail: (what: string) => unknown) => HubOptions;
    trigger: Trigger;
  }
  const connect = async (s: ServerHandle, clients: TestClient[], query = "") => {
    const c = await TestClient.connect(s.url + query);
    clients.push(c);
    await c.next();
    return c;
  };
  const hookCases: HookCase[] = [
    {
      hook: "identify",
      source: "identify",
      options: (fail) => ({
        maxPendingUpgrades: 2,
        identify: (req) => req.url.includes("evil") ? fail("identify") as never : undefined,
      }),
      trigger: async (s) => {
        // More refusals than maxPendingUpgrades. A throwing identify is the server's failure
        // (503, issue 18), not a bad login (401); a leaked slot would refuse the good client.
        for (let i = 0; i < 4; i++) assert.equal(await TestClient.status(`${s.url}?evil=1`), 503);
        assert.equal(s.hub.stats().refused.identify_error, 4);
        assert.equal(await TestClient.status(s.url), 101);
      },
    },
    {
      hook: "onConnect",
      source: "connect",
      options: (fail) => ({
        onConnect: (c) => c.request.url.includes("evil") ? fail("onConnect") as never : undefined,
      }),
      trigger: async (s) => {
        const c = await TestClient.connect(`${s.url}?evil=1`);
        assert.equal((await c.closed).code, CloseCode.POLICY_VIOLATION);
        assert.deepEqual(c.messages.at(-1)?.data, { code: 1008, reason: "connection refused" });
      },
    },
    {
      hook: "onMessage",
      source: "message",
      options: (fail) => ({
        onMessage: (_c, m) => m.type === "evil" ? fail("onMessage") as never : undefined,
      }),
      trigger: async (s, clients) => {
        const c = await connect(s, clients);
        const err = await c.request({ type: "evil" }, "error");
        assert.equal((err.data as { code: string }).code, ErrorCode.INTERNAL_ERROR);
        assert.equal((await c.request({ type: "ping" }, "pong")).type, "pong");
      },
    },
    {
      hook: "onBinary",
      source: "binary",
      options: (fail) => ({ onBinary: () => fail("onBinary") as never }),
      trigger: async (s, clients) => {
        const c = await connect(s, clients);
        c.send(new Uint8Array([1, 2, 3]));
        const err = await c.next("error");
        assert.equal((err.data as { code: string }).code, ErrorCode.INTERNAL_ERROR);
        assert.equal((await c.request({ type: "ping" }, "pong")).type, "pong");
      },
    },
    {
      hook: "onDisconnect",
      source: "disconnect",
      options: (fail) => ({
        onDisconnect: (c) =>
          c.request.url.includes("evil") ? fail("onDisconnect") as never : undefined,
      }),
      trigger: async (s, clients) => {
        const c = await connect(s, clients, "?evil=1");
        await c.request({ type: "subscribe", room: "lobby" }, "subscribed");
        await c.shut();
        await until(() => s.hub.connectionCount === 0 && s.hub.roomCount === 0, 5000);
      },
    },
    {
      hook: "canJoin",
      source: "canJoin",
      options: (fail) => ({
        canJoin: (_c, room) => room === "evil" ? fail("canJoin") as never : true,
      }),
      trigger: async (s, clients) => {
        const c = await connect(s, clients);
        const err = await c.request({ type: "subscribe", room: "evil" }, "error");
        assert.equal((err.data as { code: string }).code, ErrorCode.SUBSCRIBE_REFUSED);
        assert.equal(s.hub.roomSize("evil"), 0);
      },
    },
    {
      hook: "authenticate",
      source: "authenticate",
      options: (fail) => ({
        authenticate: (_c, m) => m.token === "evil" ? fail("authenticate") as never : "ada",
      }),
      trigger: async (s, clients) => {
        const c = await connect(s, clients);
        const err = await c.request({ type: "authenticate", token: "evil" }, "error");
        assert.equal((err.data as { code: string }).code, ErrorCode.UNAUTHENTICATED);
        assert.equal(s.hub.userCount, 0);
        const ok = await c.request({ type: "authenticate", token: "good" }, "authenticated");
        assert.deepEqual(ok.data, { userId: "ada", status: "success" });
        assert.equal(s.hub.userCount, 1);
      },
    },
    {
      hook: "onJoin",
      source: "join",
      options: (fail) => ({
        onJoin: (_c, room) => room === "evil" ? fail("onJoin") as never : undefined,
      }),
      trigger: async (s, clients) => {
        const c = await connect(s, clients);
        // Membership is decided before the hook runs: the join stands, consistently.
        await c.request({ type: "subscribe", room: "evil" }, "subscribed");
        const conn = s.hub.connection(await c.clientId())!;
        assert.equal(s.hub.roomSize("evil"), 1);
        assert.ok(conn.rooms.has("evil"));
        await c.request({ type: "unsubscribe", room: "evil" }, "unsubscribed");
        assert.equal(s.hub.roomCount, 0);
      },
    },
    {
      hook: "onLeave",
      source: "leave",
      options: (fail) => ({
        onLeave: (_c, room) => room === "evil" ? fail("onLeave") as never : undefined,
      }),
      trigger: async (s, clients) => {
        const c = await connect(s, clients);
        await c.request({ type: "subscribe", room: "evil" }, "subscribed");
        await c.request({ type: "unsubscribe", room: "evil" }, "unsubscribed");
        assert.equal(s.hub.roomCount, 0);
        const d = await connect(s, clients);
        await d.request({ type: "subscribe", room: "evil" }, "subscribed");
        await d.shut();
        await until(() => s.hub.roomCount === 0, 5000, "the room to be pruned");
      },
    },
  ];

  for (const mode of ["throws", "rejects"] as const) {
    for (const hc of hookCases) {
      t(
        `${hc.hook} that ${mode} is reported, and leaves the hub consistent and serving`,
        async () => {
          const reported: HubErrorSource[] = [];
          const fail = (what: string) => {
            const error = new Error(`${what} failed on purpose`);
            if (mode === "throws") throw error;
            return Promise.reject(error);
          };
          const s = await start({
            canJoin: (_c, room) => room !== "secret",
            ...hc.options(fail),
            onError: (_e, source) => void reported.push(source),
          });
          const clients: TestClient[] = [];
          try {
            await hc.trigger(s, clients);
            await until(() => reported.includes(hc.source), 5000, `onError("${hc.source}")`);
            await Promise.all(clients.map((c) => c.shut()));
            await until(() => s.hub.connectionCount === 0, 5000, "connections to close");
            assert.equal(s.hub.roomCount, 0);
            assert.equal(s.hub.userCount, 0);
            assert.deepEqual([...s.hub.rooms()], []);
            await assertServes(s, "lobby");
          } finally {
            await Promise.all(clients.map((c) => c.shut()));
            await s.close();
          }
        },
      );
    }
  }

  for (const mode of ["throws", "rejects"] as const) {
    t(`an onError that ${mode} does not take the process down`, async () => {
      let calls = 0;
      const s = await start({
        canJoin: () => true,
        onMessage: () => {
          throw new Error("handler failed");
        },
        onError: () => {
          calls++;
          const error = new Error("the reporter failed too");
          if (mode === "throws") throw error;
          return Promise.reject(error) as never;
        },
      });
      const c = await TestClient.connect(s.url);
      try {
        await c.next();
        for (let i = 0; i < 3; i++) await c.request({ type: "boom" }, "error");
        // A fence instead of a sleep: once a later ping is answered, a 4th call would be in.
        assert.equal((await c.request({ type: "ping" }, "pong")).type, "pong");
        assert.equal(calls, 3);
        await assertServes(s, "lobby");
      } finally {
        await c.shut();
        await s.close();
      }
    });
  }

  // ------------------------------------------------------------ 6. graceful shutdown

  t(
    "hub.close({ drainMs }) delivers queued frames to a reader, cuts off a stalled one at the deadline, refuses upgrades with 503",
    async () => {
      const closes: { id: string; code: number }[] = [];
      const s = await start({
        maxQueueBytes: 32 * MiB,
        maxQueueMessages: 100_000,
        onDisconnect: (c, i) => void closes.push({ id: c.id, code: i.code }),
      });
      const stalled = await openStalledSocket(s.url);
      const reader = await TestClient.connect(s.url);
      try {
        await reader.next();
        await until(() => s.hub.connectionCount === 2, 5000);
        const pad = "x".repeat(8 * 1024);
        // One synchronous burst: most of it waits in the queues, and the stalled one never reads.
        // Bigger than what the kernel buffers for the stalled socket (a few MiB on loopback).
        for (let i = 0; i < BURST; i++) s.hub.emit("n", { i, pad });

        const started = Date.now();
        const closing = s.hub.close({ drainMs });
        assert.equal(s.hub.emit("late", 1), 0, "no new frames are accepted while draining");
        assert.equal(await TestClient.status(s.url), 503, "an upgrade during close gets 503");
        await closing;
        const took = Date.now() - started;
        const info = await reader.closed;
        const got = reader.messages.filter((m) => m.type === "n").map((m) =>
          (m.data as { i: number }).i
        );
        console.log(
          `[shutdown] close({ drainMs: ${drainMs} }) took ${took} ms; reader got ${got.length}/${BURST}`,
        );
        assert.deepEqual(
          got,
          Array.from({ length: BURST }, (_, i) => i),
          "the reader got every frame",
        );
        assert.deepEqual(reader.messages.at(-1)?.data, {
          code: 1001,
          reason: "server shutting down",
        });
        assert.equal(info.code, 1001);
        assert.ok(took >= drainMs - 50, `close() returned after ${took} ms, before the deadline`);
        assert.ok(took < drainMs + 3000, `close() took ${took} ms`);
        assert.equal(closes.length, 2);
        assert.ok(closes.every((c) => c.code === 1001));
        assert.equal(s.hub.connectionCount, 0);
      } finally {
        await stalled.destroy();
        await reader.shut();
        await s.close();
      }
    },
  );

  // ------------------------------------------------------------ sockets the hub closed

  /**
   * Open up to maxConnections (2) new clients once the hub closed its only client, and check
   * what the server holds. With `admission`, both must be admitted (the closed client's slot
   * is free again, within `SLOT_FREED_MS`); without, only that the hub counts what it admitted.
   */
  const reopen = async (
    s: ServerHandle,
    what: string,
    clients: TestClient[],
    admission: boolean,
  ): Promise<void> => {
    const port = Number(new URL(s.url).port);
    const refused: unknown[] = [];
    const freeBy = Date.now() + SLOT_FREED_MS;
    for (let i = 0; i < 2; i++) {
      while (true) {
        try {
          clients.push(await TestClient.connect(s.url));
          break;
        } catch (e) { // 503: the slot is still taken
          const status = (e as { status?: number }).status ?? String(e);
          if (!admission || status !== 503 || Date.now() > freeBy) {
            refused.push(status);
            break;
          }
          await delay(100);
        }
      }
    }
    // Refused upgrades are plain HTTP connections: give them a moment to go away.
    // Deno keeps the abandoned socket until its peer goes away (no API drops it): one more.
    const bound = 2 + (isDeno ? 1 : 0);
    const end = Date.now() + 3000;
    while (heldServerSockets(port) > bound && Date.now() < end) await delay(50);
    const held = heldServerSockets(port);
    console.log(
      `[zombie] after ${what}: ${clients.length} new clients admitted, server holds ${held} sockets`,
    );
    assert.ok(held <= bound, `the server holds ${held} sockets with maxConnections 2`);
    assert.equal(s.hub.connectionCount, clients.length, "the hub counts what it admitted");
    if (!admission) return;
    assert.deepEqual(refused, [], "a new client was refused: the closed client's slot leaked");
    assert.equal(clients.length, 2);
    assert.equal(s.hub.connectionCount, 2);
  };

  const stalledReader = (admission: boolean) => async () => {
    const closes: number[] = [];
    const s = await start({
      maxConnections: 2,
      closeTimeoutMs: 1000,
      highWaterMark: 16 * 1024,
      lowWaterMark: 4 * 1024,
      maxQueueBytes: 64 * 1024,
      onDisconnect: (_c, i) => void closes.push(i.code),
    });
    const stalled = await openStalledSocket(s.url);
    const clients: TestClient[] = [];
    try {
      await until(() => s.hub.connectionCount === 1, 5000);
      s.hub.join(s.hub.connections()[0], "r");
      const pad = "x".repeat(8 * 1024);
      for (let i = 0; i < 4096 && closes.length === 0; i++) {
        s.hub.emit("n", { i, pad }, { rooms: "r" });
        if (i % 16 === 15) await delay(1);
      }
      assert.deepEqual(closes, [CloseCode.SLOW_CLIENT]);
      assert.equal(s.hub.connectionCount, 0, "the hub forgot the stalled client");
      await delay(200);
      await reopen(s, "a slow-client close", clients, admission);
    } finally {
      await stalled.destroy();
      await Promise.all(clients.map((c) => c.shut()));
      await s.close();
    }
  };

  const ignoresClose = (admission: boolean) => async () => {
    const s = await start({ maxConnections: 2, maxMessageBytes: 1024, closeTimeoutMs: 1000 });
    const silent = await rawConnect(s.url);
    const clients: TestClient[] = [];
    try {
      assert.ok(await silent.wait(() => silent.frames.length >= 1, 5000), "established");
      silent.send(Op.TEXT, new Uint8Array(2048).fill(0x20)); // over the limit: closed with 1009
      assert.ok(await silent.wait(() => silent.closeCode !== undefined, 5000), "a close frame");
      assert.equal(silent.closeCode, CloseCode.MESSAGE_TOO_BIG);
      await until(() => s.hub.connectionCount === 0, 5000);
      await delay(200);
      await reopen(s, "a 1009 the client never answered", clients, admission);
    } finally {
      await silent.destroy();
      await Promise.all(clients.map((c) => c.shut()));
      await s.close();
    }
  };

  // A socket the hub closed whose peer never answers the close frame counts toward
  // maxConnections for at most closeTimeoutMs (issue 11): Deno waits for the close frame
  // forever and offers no way to drop the TCP connection, so the hub stops counting it there
  // (Deno still holds the socket: the held-socket bound allows that one); Bun terminates it.
  t(
    "a stalled reader closed as a slow client frees its slot for a new client within closeTimeoutMs",
    stalledReader(true),
    20_000,
    canReadTcp,
  );
  t(
    "a client that ignores the server's close frame frees its slot for a new client within closeTimeoutMs",
    ignoresClose(true),
    20_000,
    canReadTcp,
  );
}
