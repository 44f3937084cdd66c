// A seeded generator of hostile inbound frames for the protocol fuzzer. Every frame comes from
// one PRNG, so a seed reproduces a run exactly (set HUBBUB_FUZZ_SEED to replay one).

/** A small, fast, seedable PRNG (mulberry32). */
export class Rng {
  #s: number;
  /** @param seed Any 32-bit integer. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}

/** An environment variable, on Deno or Bun. */
export function env(name: string): string | undefined {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  return g.Deno?.env.get(name) ?? g.process?.env?.[name];
}

/** The seed for this run: HUBBUB_FUZZ_SEED if set, else random. */
export function fuzzSeed(): number {
  const fromEnv = env("HUBBUB_FUZZ_SEED");
  if (fromEnv !== undefined && fromEnv !== "") return Number(fromEnv) >>> 0;
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** One generated frame. */
export interface FuzzFrame {
  /** What generated it (for the failure message). */
  kind: string;
  /** A text frame (string) or a binary frame (bytes). */
  data: string | Uint8Array;
  /** It is over maxMessageBytes: the server must close the connection with 1009. */
  oversize: boolean;
}

const PROTO_KEYS = ["__proto__", "constructor", "prototype"] as const;
const TYPES = [
  "ping",
  "subscribe",
  "unsubscribe",
  "authenticate",
  "chat",
  "move",
  "",
  "PING",
  "ping ",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "connection.established",
  "error",
  "ack",
  "\u0000",
  "\ud800",
  "x".repeat(300),
];
const FIELDS = ["type", "room", "id", "token", "text", "x", "y", "data", "userId"];

/** Strings that tend to break things. */
function weirdString(r: Rng): string {
  return r.pick([
    "",
    " ",
    "ok-1",
    "ok-2",
    "lobby",
    "\u0000",
    "a\nb",
    "\u007f",
    "\u2028\u2029",
    "\ud800",
    "\udc00x",
    "😀",
    "é".repeat(r.int(1, 200)),
    "x".repeat(r.int(100, 200)),
    "x".repeat(r.int(1000, 5000)),
    "__proto__",
    "constructor",
    "prototype",
    "toString",
    "<script>",
    "../../etc/passwd",
    "%00",
    "\\u0000",
    "null",
    "undefined",
    "NaN",
    String(r.next()),
  ]);
}

/** A random JSON value (as a JS value), depth-limited. */
function randomValue(r: Rng, depth: number): unknown {
  const leafOnly = depth <= 0;
  switch (r.int(0, leafOnly ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1, 1.5, -0, 2 ** 53, -(2 ** 53), 1e308, -1e308, 5e-324]);
    case 3:
    case 4:
      return weirdString(r);
    case 5:
      return r.int(-1000, 1000);
    case 6:
      return r.pick(PROTO_KEYS);
    case 7:
    case 8: {
      const o: Record<string, unknown> = {};
      const n = r.int(0, 5);
      for (let i = 0; i < n; i++) {
        const key = r.chance(0.3) ? r.pick(PROTO_KEYS) : r.pick([...FIELDS, weirdString(r)]);
        o[key] = randomValue(r, depth - 1);
      }
      return o;
    }
    default: {
      const n = r.int(0, 5);
      return Array.from({ length: n }, () => randomValue(r, depth - 1));
    }
  }
}

/**
 * Serialise an object whose keys may include `__proto__` as an own key (JSON.stringify
 * of an object literal would drop it: `{ __proto__: x }` sets the prototype instead).
 */
function objectText(entries: [string, string][]): string {
  return "{" + entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",") + "}";
}

/** Wrong-typed values for a field (serialised JSON), including non-finite numbers. */
function wrongValue(r: Rng): string {
  return r.pick([
    "null",
    "true",
    "0",
    "-1",
    "1e400",
    "-1e400",
    "[]",
    "{}",
    '[""]',
    '{"a":1}',
    '""',
    JSON.stringify(weirdString(r)),
    JSON.stringify(randomValue(r, 2)),
    '{"__proto__":{"polluted":true}}',
    '{"constructor":{"prototype":{"polluted":true}}}',
    JSON.stringify("x".repeat(129)),
  ]);
}

/** A message for a built-in or app type with some fields mangled. */
function mangledMessage(r: Rng): string {
  const type = r.pick(["ping", "subscribe", "unsubscribe", "authenticate", "chat", "move"]);
  const good: Record<string, string> = {
    ping: '{"type":"ping"}',
    subscribe: '{"type":"subscribe","room":"ok-1"}',
    unsubscribe: '{"type":"unsubscribe","room":"ok-1"}',
    authenticate: '{"type":"authenticate","token":"good"}',
    chat: '{"type":"chat","room":"ok-1","text":"hi"}',
    move: '{"type":"move","x":1,"y":2}',
  };
  const base = JSON.parse(good[type]) as Record<string, unknown>;
  const entries: [string, string][] = Object.entries(base).map(([k, v]) => [k, JSON.stringify(v)]);
  // Replace one or more fields with wrong types, add unknown or prototype keys, maybe an id.
  for (let n = r.int(1, 3); n > 0; n--) {
    const roll = r.int(0, 5);
    if (roll <= 2 && entries.length > 0) {
      const i = r.int(0, entries.length - 1);
      entries[i] = [entries[i][0], wrongValue(r)];
    } else if (roll === 3) {
      entries.push([r.pick(PROTO_KEYS), wrongValue(r)]);
    } else if (roll === 4) {
      entries.push(["id", r.pick(["1", '"req-1"', wrongValue(r)])]);
    } else {
      entries.push([r.pick(FIELDS), wrongValue(r)]);
    }
  }
  if (r.chance(0.1)) entries.push(["type", JSON.stringify(r.pick(TYPES))]); // a duplicate key
  if (r.chance(0.2)) entries.sort(() => r.next() - 0.5);
  return objectText(entries);
}

/** Prototype-pollution payloads at every level. */
function pollution(r: Rng): string {
  const inner = '{"polluted":true,"isAdmin":true}';
  const key = r.pick(PROTO_KEYS);
  const nested = (depth: number): string =>
    depth === 0 ? inner : objectText([[r.pick(PROTO_KEYS), nested(depth - 1)]]);
  return r.pick([
    objectText([["type", '"chat"'], ["room", '"ok-1"'], ["text", '"x"'], [key, inner]]),
    objectText([[key, '{"type":"ping"}']]),
    objectText([["__proto__", '{"type":"ping"}'], ["room", '"ok-1"']]),
    objectText([["type", '"subscribe"'], ["room", '"__proto__"']]),
    objectText([["type", '"subscribe"'], ["room", '"ok-__proto__"']]),
    objectText([["type", '"move"'], ["x", "1"], ["y", "2"], ["constructor", nested(3)]]),
    objectText([["type", '"authenticate"'], ["token", '"good"'], ["__proto__", nested(2)]]),
    objectText([["type", '"chat"'], ["room", nested(4)], ["text", nested(2)]]),
    objectText([["type", JSON.stringify(key)], [key, nested(r.int(1, 6))]]),
    `[${nested(3)}]`,
  ]);
}

/** A random JSON document (not necessarily an object). */
function randomJson(r: Rng): string {
  const v = randomValue(r, r.int(0, 5));
  if (r.chance(0.5) && typeof v === "object" && v !== null && !Array.isArray(v)) {
    (v as Record<string, unknown>).type = r.pick(TYPES);
  }
  return JSON.stringify(v);
}

/** Cut a valid message short, or flip some of its characters. */
function corrupt(r: Rng): string {
  const s = r.chance(0.5) ? mangledMessage(r) : randomJson(r);
  if (r.chance(0.5)) return s.slice(0, r.int(0, Math.max(0, s.length - 1)));
  const chars = [...s];
  for (let n = r.int(1, 4); n > 0 && chars.length > 0; n--) {
    chars[r.int(0, chars.length - 1)] = r.pick(['"', "{", "}", "[", "]", ",", ":", "\\", "\u0000"]);
  }
  return chars.join("");
}

/** Deeply nested arrays or objects, alone or as a field of an otherwise valid message. */
function deep(r: Rng, levels: number): string {
  const arrays = r.chance(0.5);
  const open = arrays ? "[" : '{"a":';
  const close = arrays ? "]" : "}";
  const body = open.repeat(levels) + (arrays ? "" : "1") + close.repeat(levels);
  switch (r.int(0, 3)) {
    case 0:
      return body;
    case 1:
      return `{"type":"chat","room":"ok-1","text":"x","extra":${body}}`;
    case 2:
      return `{"type":"move","x":${body},"y":1}`;
    default:
      return open.repeat(levels); // unbalanced
  }
}

/** Invalid UTF-8 byte sequences (for binary frames). */
function invalidUtf8(r: Rng): Uint8Array {
  const seqs = [
    [0xff],
    [0xfe, 0xff],
    [0xc0, 0xaf],
    [0xe0, 0x80, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0x80],
    [0xc3],
  ];
  const out: number[] = [...new TextEncoder().encode('{"type":"ping"}')];
  for (let n = r.int(1, 8); n > 0; n--) {
    out.splice(r.int(0, out.length), 0, ...r.pick(seqs));
  }
  return new Uint8Array(out);
}

/** A text frame of about `bytes` UTF-8 bytes: a chat message padded with ASCII or multi-byte text. */
function sized(bytes: number, multibyte: boolean): string {
  const head = '{"type":"chat","room":"ok-1","text":"';
  const tail = '"}';
  const room = bytes - head.length - tail.length;
  // "é" is 2 UTF-8 bytes and 1 UTF-16 unit: the string looks half as big as it is.
  const pad = multibyte ? "é".repeat(Math.ceil(room / 2)) : "x".repeat(room);
  return head + pad + tail;
}

/**
 * Generate the `i`th frame of a fuzz run.
 * @param r The run's PRNG.
 * @param maxBytes The server's maxMessageBytes.
 * @returns One frame and whether it is over the size limit.
 */
export function fuzzFrame(r: Rng, maxBytes: number): FuzzFrame {
  const roll = r.int(0, 99);
  const frame = (kind: string, data: string | Uint8Array, oversize = false): FuzzFrame => ({
    kind,
    data,
    oversize,
  });
  if (roll < 22) return frame("mangled built-in/app message", mangledMessage(r));
  if (roll < 33) return frame("prototype pollution", pollution(r));
  if (roll < 43) return frame("random JSON", randomJson(r));
  if (roll < 53) return frame("truncated/corrupted JSON", corrupt(r));
  if (roll < 61) return frame("valid message", validMessage(r));
  if (roll < 67) {
    const levels = r.pick([100, 1000, 5000, 10_000]);
    return frame(`nesting x${levels}`, deep(r, levels));
  }
  if (roll < 76) return frame("random binary", r.bytes(r.int(0, 4096)));
  if (roll < 81) return frame("invalid UTF-8 binary", invalidUtf8(r));
  if (roll < 85) return frame("random text", new TextDecoder().decode(r.bytes(r.int(0, 512))));
  if (roll < 94) {
    // Near the limit, at it, and (sometimes) over it, in ASCII and in 2-byte characters.
    const multibyte = r.chance(0.4);
    const over = r.chance(0.25);
    const bytes = over ? maxBytes + r.pick([1, 2, 100, maxBytes]) : maxBytes - r.int(0, 64);
    const data = sized(bytes, multibyte);
    const real = new TextEncoder().encode(data).length;
    return frame(
      `${multibyte ? "multi-byte" : "ASCII"} string near the limit`,
      data,
      real > maxBytes,
    );
  }
  if (roll < 97) {
    const n = over(r, maxBytes);
    return frame("binary near the limit", new Uint8Array(n), n > maxBytes);
  }
  return frame(
    "message with a huge id/type/room",
    objectText([
      ["type", JSON.stringify(r.pick(["ping", "subscribe", "chat", "x".repeat(5000)]))],
      [r.pick(["id", "room", "token"]), JSON.stringify("y".repeat(r.int(129, 20_000)))],
    ]),
  );
}

/** Well-formed traffic with odd but valid content, so handlers see plenty of input. */
function validMessage(r: Rng): string {
  const room = `ok-${r.int(1, 3)}`;
  const id = r.chance(0.5) ? { id: r.chance(0.5) ? r.int(0, 1e6) : `req-${r.int(0, 999)}` } : {};
  switch (r.int(0, 4)) {
    case 0:
      return JSON.stringify({ type: "subscribe", room, ...id });
    case 1:
      return JSON.stringify({ type: "unsubscribe", room, ...id });
    case 2:
      return JSON.stringify({ type: "move", x: r.int(-1e6, 1e6) / 7, y: r.next(), ...id });
    default:
      return JSON.stringify({ type: "chat", room, text: weirdString(r).slice(0, 2000), ...id });
  }
}

function over(r: Rng, maxBytes: number): number {
  return r.chance(0.5) ? maxBytes - r.int(0, 16) : maxBytes + r.int(1, 2048);
}

const WRONG_VALUES = [
  "null",
  "true",
  "false",
  "0",
  "-1",
  "1.5",
  "1e400",
  "[]",
  "{}",
  '["ok-1"]',
  '{"room":"ok-1"}',
  '""',
  '" "',
  '"\\u0000"',
  '"\\ud800"',
  JSON.stringify("x".repeat(129)),
  JSON.stringify("x".repeat(5000)),
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '"__proto__"',
  '"constructor"',
];

/**
 * Every field of every built-in and app message replaced by every wrong-typed value, and each
 * prototype key added at the top level: a deterministic sweep run before the random frames.
 * @returns The frames, none over the size limit.
 */
export function fieldSweep(): FuzzFrame[] {
  const bases: Record<string, [string, string][]> = {
    ping: [["type", '"ping"'], ["id", '"p"']],
    subscribe: [["type", '"subscribe"'], ["room", '"ok-1"'], ["id", "1"]],
    unsubscribe: [["type", '"unsubscribe"'], ["room", '"ok-1"'], ["id", "2"]],
    authenticate: [["type", '"authenticate"'], ["token", '"good"'], ["id", '"a"']],
    chat: [["type", '"chat"'], ["room", '"ok-1"'], ["text", '"hi"'], ["id", "3"]],
    move: [["type", '"move"'], ["x", "1"], ["y", "2"], ["id", "4"]],
  };
  const out: FuzzFrame[] = [];
  for (const [name, fields] of Object.entries(bases)) {
    for (let f = 0; f < fields.length; f++) {
      for (const wrong of WRONG_VALUES) {
        const entries = fields.map(([k, v], i): [string, string] => [k, i === f ? wrong : v]);
        out.push({
          kind: `${name}.${fields[f][0]} wrong`,
          data: objectText(entries),
          oversize: false,
        });
      }
      // The field missing altogether.
      out.push({
        kind: `${name}.${fields[f][0]} missing`,
        data: objectText(fields.filter((_, i) => i !== f)),
        oversize: false,
      });
    }
    for (const key of PROTO_KEYS) {
      out.push({
        kind: `${name} with ${key}`,
        data: objectText([...fields, [key, '{"polluted":true,"type":"ping"}']]),
        oversize: false,
      });
    }
  }
  return out;
}
