// The hub's bridge to a backplane (Redis, BroadcastChannel, MemoryBus): publishes what this
// replica emits, with its target, to the channels of that target; subscribes to the channels of
// its local rooms, users and clients; and hands what other replicas publish to `fanout()`.
// Every envelope from the bus is input: each field is validated, one bad envelope costs exactly
// itself, and with a shared secret only signed envelopes are accepted.
import type { Target } from "../protocol/target.ts";
import type {
  Backplane,
  BackplaneEnvelope,
  BackplaneHeader,
  BackplaneHealth,
  BackplaneStats,
} from "./backplane.ts";
import { exceptIds, fanout, names } from "./fanout.ts";
import type { Hooks } from "./hooks.ts";
import type { ChannelKind, Registry } from "./registry.ts";
import type { Frame } from "./send_queue.ts";
import { fromBase64, toBase64 } from "./_base64.ts";
import { Hmac } from "./_hmac.ts";
import type { HistoryAppended } from "./history_store.ts";
import { applyControl, type ControlCommand, parseControl } from "./control.ts";

/** Longest id (node id, envelope id) accepted in an envelope. */
const MAX_ENVELOPE_ID = 128;

/**
 * The unsigned tail of a signed history entry, after `"n":`: its offset and epoch, exactly as a
 * store writes them (an epoch of printable ASCII without quotes or backslashes), and the end.
 */
const ENTRY_TAIL = /^[1-9][0-9]{0,15},"e":"[!#-[\]-~]{1,128}"\}$/;

/** What the bridge is made with. */
export interface BridgeOptions {
  backplane: Backplane | undefined;
  /** Channel name prefix (`"hubbub:"`). */
  prefix: string;
  /** Shared secret for signed envelopes, if any. */
  secret: string | undefined;
  /** The format plain emits are published in (both are always read). */
  format: 1 | 2 | undefined;
  registry: Registry;
  hooks: Hooks;
}

/** One hub's backplane bridge (inert without a backplane). */
export class BackplaneBridge {
  readonly nodeId: string = crypto.randomUUID();
  readonly #bp: Backplane | undefined;
  readonly #prefix: string;
  readonly #signer: Hmac | undefined;
  readonly #format: 1 | 2;
  /** The start of a format-2 header for one room: `{"v":2,"o":"<node id>","t":{"r":[`. */
  readonly #roomHead: string;
  readonly #registry: Registry;
  readonly #hooks: Hooks;
  #health: BackplaneHealth = { ok: true };
  readonly #counts = { published: 0, publishFailed: 0, received: 0, duplicates: 0, malformed: 0 };
  readonly #channels = new Set<string>();
  #seen = new Set<string>();
  #seenOld = new Set<string>();
  /** Entries of history rooms from other replicas go here (the history part), not to fanout. */
  onHistory:
    | ((room: string, entry: HistoryAppended) => void)
    | undefined = undefined;
  /** The bus is healthy again after an outage (the history part repairs its rooms). */
  onRestored: (() => void) | undefined = undefined;
  /** Resolves once started and subscribed to broadcasts (see `Hub.ready`). */
  readonly ready: Promise<void>;

  constructor(options: BridgeOptions) {
    this.#bp = options.backplane;
    this.#prefix = options.prefix;
    this.#registry = options.registry;
    this.#hooks = options.hooks;
    const format = options.format === undefined ? 2 : options.format;
    if (format !== 1 && format !== 2) {
      throw new TypeError("Cannot create hub: backplaneFormat must be 1 or 2");
    }
    this.#format = format;
    this.#roomHead = '{"v":2,"o":' + JSON.stringify(this.nodeId) + ',"t":{"r":[';
    const secret = options.secret;
    if (secret !== undefined) {
      if (typeof secret !== "string" || secret.length < 16) {
        throw new TypeError(
          "Cannot create hub: backplaneSecret must be a string of 16+ characters",
        );
      }
      this.#signer = new Hmac(secret);
    }
    this.ready = this.#bp === undefined ? Promise.resolve() : this.#start(this.#bp);
  }

  /** Whether a shared store may publish on the bus itself (see `Backplane.acceptsStorePublishes`). */
  get acceptsStorePublishes(): boolean {
    return this.#bp?.acceptsStorePublishes !== false;
  }

  /** Whether there is a backplane at all. */
  get active(): boolean {
    return this.#bp !== undefined;
  }

  /** The backplane's health (`{ ok: true }` without one). */
  get health(): BackplaneHealth {
    return this.#health;
  }

  /** Counters (all zero without a backplane). */
  stats(): BackplaneStats {
    return {
      nodeId: this.nodeId,
      health: this.#health,
      ...this.#counts,
      channels: this.#channels.size,
    };
  }

  /** The bus channel for a room, user or client; `"all"` for broadcasts. */
  channel(kind: ChannelKind | "all", name = ""): string {
    return kind === "all" ? this.#prefix + "all" : this.#prefix + kind + ":" + name;
  }

  /** Subscribe to (or drop) the channel of a room, user or client. */
  interest(kind: ChannelKind, name: string, on: boolean): void {
    const bp = this.#bp;
    if (bp === undefined) return;
    const channel = this.channel(kind, name);
    if (on) {
      if (this.#channels.has(channel)) return;
      this.#channels.add(channel);
      bp.subscribe(channel).catch((error) => this.#hooks.report(error, "backplane"));
    } else if (this.#channels.delete(channel)) {
      bp.unsubscribe(channel).catch((error) => this.#hooks.report(error, "backplane"));
    }
  }

  /** Publish `frame` for `target` to every channel the target names. */
  publish(frame: Frame, target: Target | undefined): void {
    if (this.#bp === undefined) return;
    // One room, nobody excepted (the common case): one channel, a header of fixed shape.
    const room = target?.rooms;
    if (
      this.#format === 2 && typeof room === "string" && typeof frame === "string" &&
      target!.users === undefined && target!.clients === undefined && target!.except === undefined
    ) {
      const text = this.#roomHead + JSON.stringify(room) + "]}}\n" + frame;
      this.#send(this.channel("room", room), this.#sign(text));
      return;
    }
    const { t, channels } = this.#route(target);
    const binary = typeof frame !== "string";
    let text: string;
    if (this.#format === 2) {
      const head: BackplaneHeader = { v: 2, o: this.nodeId, t };
      // Only a message on several channels can reach a replica twice.
      if (channels.length > 1) head.i = crypto.randomUUID();
      if (binary) head.b = 1;
      text = JSON.stringify(head) + "\n" + (binary ? toBase64(frame) : frame);
    } else {
      const envelope: BackplaneEnvelope = binary
        ? { v: 1, o: this.nodeId, i: crypto.randomUUID(), t, f: toBase64(frame), b: 1 }
        : { v: 1, o: this.nodeId, i: crypto.randomUUID(), t, f: frame };
      text = JSON.stringify(envelope);
    }
    const payload = this.#sign(text);
    for (const channel of channels) this.#send(channel, payload);
  }

  /** With a secret, `"<43-char base64url MAC>.<text>"` (an unsigned hub refuses it). */
  #sign(text: string): string {
    return this.#signer === undefined ? text : this.#signer.signText(text) + "." + text;
  }

  /** Publish one payload, counted. */
  #send(channel: string, payload: string): void {
    this.#counts.published++;
    this.#bp!.publish(channel, payload).catch(() => {
      this.#counts.publishFailed++;
    });
  }

  /** A target's envelope field and bus channels (`all` when it names nobody in particular). */
  #route(target: Target | undefined): { t: BackplaneEnvelope["t"]; channels: string[] } {
    const t: BackplaneEnvelope["t"] = {};
    const channels: string[] = [];
    const rooms = names(target?.rooms);
    const users = names(target?.users);
    const clients = names(target?.clients);
    if (rooms === undefined && users === undefined && clients === undefined) {
      t.a = 1;
      channels.push(this.channel("all"));
    }
    if (rooms !== undefined) {
      t.r = rooms;
      for (const r of rooms) channels.push(this.channel("room", r));
    }
    if (users !== undefined) {
      t.u = users;
      for (const u of users) channels.push(this.channel("user", u));
    }
    if (clients !== undefined) {
      t.c = clients;
      for (const c of clients) channels.push(this.channel("client", c));
    }
    if (target?.except !== undefined) t.x = exceptIds(target.except);
    return { t, channels };
  }

  /**
   * The bus message for one entry of history room `room`, up to its offset's digits (see
   * `HistoryAppend.publish`): `undefined` without a backplane. The envelope's `f` is the frame
   * up to its offset (`head`), `n` the offset and `e` the epoch; a signed one's MAC covers it
   * up to `"n":` (a store publishes it, and only the store knows the offset).
   */
  historyMessage(
    room: string,
    head: string,
    except: readonly string[] | undefined,
  ): { channel: string; payload: string } | undefined {
    if (this.#bp === undefined) return undefined;
    const t: BackplaneEnvelope["t"] = { r: [room] };
    if (except !== undefined && except.length > 0) t.x = [...except];
    const json = JSON.stringify({ v: 1, o: this.nodeId, i: crypto.randomUUID(), t, f: head });
    return {
      channel: this.channel("room", room),
      payload: this.#sign(json.slice(0, -1) + ',"n":'),
    };
  }

  /** Publish a history entry whose store does not publish (see {@linkcode historyMessage}). */
  publishAppended(
    message: { channel: string; payload: string },
    entry: { readonly offset: number; readonly epoch: string },
  ): void {
    if (this.#bp === undefined) return;
    this.#send(
      message.channel,
      message.payload + entry.offset + ',"e":' + JSON.stringify(entry.epoch) + "}",
    );
  }

  /**
   * Send a control command to the other replicas, on the channels of `target` (its rooms,
   * users and clients): each carries it out on its own connections (see `control.ts`).
   */
  publishControl(target: Target, command: ControlCommand): void {
    if (this.#bp === undefined) return;
    const { t, channels } = this.#route(target);
    if (t.a === 1) return; // control always names someone
    const payload = this.#sign(
      JSON.stringify({ v: 1, o: this.nodeId, i: crypto.randomUUID(), t, k: command }),
    );
    for (const channel of channels) this.#send(channel, payload);
  }

  /** Stop: close the backplane (after it started). */
  async close(): Promise<void> {
    if (this.#bp === undefined) return;
    await this.ready.catch(() => {});
    await this.#bp.close().catch((error) => this.#hooks.report(error, "backplane"));
  }

  #start(bp: Backplane): Promise<void> {
    return bp.start(
      (_channel, payload) => this.#received(payload),
      (health) => {
        const was = this.#health.ok;
        this.#health = health;
        if (health.ok && !was) this.onRestored?.();
      },
    ).then(() => {
      // `ready` means subscribed to broadcasts: await that subscription too.
      const all = this.channel("all");
      if (this.#channels.has(all)) return;
      this.#channels.add(all);
      return bp.subscribe(all);
    }).catch((error) => {
      this.#health = { ok: false, error: String((error as Error)?.message ?? error) };
      this.#hooks.report(error, "backplane");
    });
  }

  #received(payload: string): void {
    // One bad envelope costs exactly itself: nothing in it may throw into the backplane's
    // receive loop (that would drop the messages behind it in the same read).
    try {
      const frame = this.#open(payload);
      if (frame === undefined) return;
      if (frame.entry !== undefined) {
        this.onHistory?.(frame.target.rooms as string, frame.entry);
      } else if (frame.command !== undefined) {
        applyControl(this.#registry, frame.target, frame.command);
      } else fanout(this.#registry, frame.frame, frame.target);
    } catch (error) {
      this.#counts.malformed++;
      this.#hooks.report(error, "backplane");
    }
  }

  /** Check and unwrap one payload; `undefined` (counted) when it is not to be delivered. */
  #open(
    payload: string,
  ):
    | { frame: Frame; target: Target; entry?: HistoryAppended; command?: ControlCommand }
    | undefined {
    if (typeof payload !== "string") return this.#malformed();
    let text = payload;
    if (this.#signer !== undefined) {
      if (payload.indexOf(".") !== 43) return this.#malformed();
      text = payload.slice(44);
    }
    // Format 2 is a header line and the frame; format 1 (one JSON object) has no raw newline.
    const nl = text.indexOf("\n");
    if (this.#signer !== undefined) {
      // A history entry's MAC covers it up to its offset (the store adds offset and epoch),
      // so what follows may be nothing else: a key repeated there would win in JSON.parse.
      const n = nl === -1 ? text.lastIndexOf(',"n":') : -1;
      if (n !== -1 && !ENTRY_TAIL.test(text.slice(n + 5))) return this.#malformed();
      const signed = n === -1 ? text : text.slice(0, n + 5);
      if (!this.#signer.verifyText(signed, payload.slice(0, 43))) return this.#malformed();
    }
    return nl === -1 ? this.#openV1(text) : this.#openV2(text, nl);
  }

  /** A format-2 payload: the header line, then the frame as encoded. */
  #openV2(text: string, nl: number): { frame: Frame; target: Target } | undefined {
    let head: unknown;
    try {
      head = JSON.parse(text.slice(0, nl));
    } catch {
      return this.#malformed();
    }
    if (!isHeader(head)) return this.#malformed();
    if (head.o === this.nodeId) return undefined;
    let frame: Frame = text.slice(nl + 1);
    if (head.b === 1) {
      const bytes = fromBase64(frame);
      if (bytes === undefined) return this.#malformed();
      frame = bytes;
    }
    if (head.i !== undefined && this.#duplicate(head.i)) return undefined;
    this.#counts.received++;
    return { frame, target: targetOf(head.t) };
  }

  /** A format-1 payload: one JSON envelope (a frame, a history entry or a control command). */
  #openV1(
    json: string,
  ):
    | { frame: Frame; target: Target; entry?: HistoryAppended; command?: ControlCommand }
    | undefined {
    let env: unknown;
    try {
      env = JSON.parse(json);
    } catch {
      return this.#malformed();
    }
    if (!isEnvelope(env)) return this.#malformed();
    if (env.o === this.nodeId) return undefined;
    let command: ControlCommand | undefined;
    if (env.k !== undefined) {
      command = parseControl(env.k);
      if (command === undefined) return this.#malformed();
    }
    let frame: Frame = "";
    if (command !== undefined) {
      // A control command: no frame.
    } else if (env.b === 1) {
      const bytes = fromBase64(env.f!);
      if (bytes === undefined) return this.#malformed();
      frame = bytes;
    } else frame = env.f!;
    if (this.#duplicate(env.i)) return undefined;
    this.#counts.received++;
    const t = env.t;
    if (env.n !== undefined) {
      // One entry of a history room's stream: `f` is the frame up to its offset.
      const full = (frame as string) + env.n + "}";
      const entry: HistoryAppended = t.x === undefined
        ? { offset: env.n, epoch: env.e!, frame: full, at: 0 }
        : { offset: env.n, epoch: env.e!, frame: full, at: 0, except: t.x };
      return { frame: full, target: { rooms: t.r![0] }, entry };
    }
    const target = targetOf(t);
    return command === undefined ? { frame, target } : { frame, target, command };
  }

  /** Whether message id `i` was seen already (counted); else remember it. */
  #duplicate(i: string): boolean {
    if (this.#seen.has(i) || this.#seenOld.has(i)) {
      this.#counts.duplicates++;
      return true;
    }
    // Two generations of ids: bounded memory, and a copy arriving soon after is still caught.
    this.#seen.add(i);
    if (this.#seen.size >= 10_000) {
      this.#seenOld = this.#seen;
      this.#seen = new Set();
    }
    return false;
  }

  #malformed(): undefined {
    this.#counts.malformed++;
    return undefined;
  }
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

function isId(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_ENVELOPE_ID;
}

/** The local target of an envelope's `t` (one room as a name: fanout's fast path). */
function targetOf(t: BackplaneEnvelope["t"]): Target {
  if (t.a === 1) return t.x === undefined ? {} : { except: t.x };
  const target: Target = t.r !== undefined && t.r.length === 1 && t.u === undefined &&
      t.c === undefined
    ? { rooms: t.r[0] }
    : { rooms: t.r, users: t.u, clients: t.c };
  if (t.x !== undefined) target.except = t.x;
  return target;
}

/** Whether `t` is a well-formed target field (each list of strings; `a` only as 1). */
function isTargetField(t: unknown): t is Record<string, unknown> {
  if (typeof t !== "object" || t === null || Array.isArray(t)) return false;
  const f = t as Record<string, unknown>;
  if (f.a !== undefined && f.a !== 1) return false;
  for (const k of ["r", "u", "c", "x"]) {
    if (f[k] !== undefined && !isStringArray(f[k])) return false;
  }
  return true;
}

/** Whether target field `t` names someone (or everyone). */
function namesSomeone(t: Record<string, unknown>): boolean {
  return t.a === 1 || t.r !== undefined || t.u !== undefined || t.c !== undefined;
}

/** A format-2 header, every field checked (only these fields, so nothing else is assumed). */
function isHeader(h: unknown): h is BackplaneHeader {
  if (typeof h !== "object" || h === null || Array.isArray(h)) return false;
  const head = h as Record<string, unknown>;
  if (head.v !== 2 || !isId(head.o)) return false;
  if (head.i !== undefined && !isId(head.i)) return false;
  if (head.b !== undefined && head.b !== 1) return false;
  for (const k in head) {
    if (k !== "v" && k !== "o" && k !== "i" && k !== "t" && k !== "b") return false;
  }
  return isTargetField(head.t) && namesSomeone(head.t);
}

/** Every field checked before any is used (the bus is input like any other). */
function isEnvelope(e: unknown): e is BackplaneEnvelope {
  if (typeof e !== "object" || e === null || Array.isArray(e)) return false;
  const env = e as Record<string, unknown>;
  if (env.v !== 1 || !isId(env.o) || !isId(env.i)) return false;
  const t = env.t;
  if (!isTargetField(t)) return false;
  if (env.k !== undefined) {
    // A control command (checked by parseControl): no frame, and it names someone.
    if (env.f !== undefined || env.b !== undefined || env.n !== undefined) return false;
    if (t.a !== undefined) return false;
  } else if (typeof env.f !== "string" || (env.b !== undefined && env.b !== 1)) return false;
  if (env.n !== undefined || env.e !== undefined) {
    // A history entry: one room, a positive offset, an epoch, a text frame.
    return Number.isSafeInteger(env.n) && (env.n as number) > 0 && isId(env.e) &&
      env.b === undefined && t.a === undefined && t.u === undefined && t.c === undefined &&
      Array.isArray(t.r) && t.r.length === 1;
  }
  return namesSomeone(t);
}
