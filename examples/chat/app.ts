/**
 * The hubbub chat demo: rooms, messages, whispers, presence and history on one hub.
 *
 * - `GET /` serves a single self-contained page; `/ws` is the hub.
 * - Identity: a `?user=NAME` query parameter. **DEMO ONLY**: anyone can claim
 *   any name. A real app verifies a session cookie or a signed token in `identify`.
 * - Rooms: a client joins with the built-in `subscribe`; the guard allows names
 *   matching `^[a-z0-9-]{1,32}$`.
 * - `{"type":"message","room":R,"text":T}` reaches every member of R, and only
 *   from a member of R (else `error` `NOT_IN_ROOM`). It is stored in R's history
 *   first: when the store cannot take it (Redis down), nobody gets it and the sender
 *   gets `error` `UNAVAILABLE`.
 * - History: every room keeps its last {@linkcode CHAT_HISTORY} messages (100, for
 *   10 minutes), so each message carries `room` and `offset`; the page shows a room's
 *   recent messages when it joins (`history`), and a reconnecting page recovers what
 *   it missed (the client's `recover`).
 * - `{"type":"whisper","to":U,"text":T}` reaches every connection of U and of the
 *   sender (so all the sender's tabs show the conversation); `error`
 *   `USER_OFFLINE` when U has no connection on any replica (the hub's user presence).
 * - Presence: the hub's built-in presence, in every room: members get
 *   `presence.join` / `presence.leave` for every connection that joins or leaves
 *   (the × on the page is an `unsubscribe`), and ask `presence` for the member list;
 *   the page keeps it with the client's `members(room)` (a user's tabs merged).
 * - `GET /inspect`: the hub inspector (live counts, rates, recent frames). **DEMO
 *   ONLY** access rule: requests addressed to localhost (see `authorize` below).
 * - Several replicas (pass a `backplane`, see `main.ts` and `serve.ts`): messages,
 *   whispers and presence events reach every replica. History and presence then need
 *   stores every replica shares (`historyStore`, `presenceStore`: Redis, see
 *   `redis.ts`); without them the app keeps no history and tracks no presence (the
 *   page says its member list is unavailable) and cannot refuse a whisper to someone
 *   offline.
 *
 * The only runtime-specific part is picking the adapter (on Node, `main_node.ts` routes the
 * server's `upgrade` event to the `./node` adapter).
 *
 * @example
 * ```ts ignore
 * import { createChatApp } from "./app.ts";
 * const app = createChatApp();
 * Deno.serve((req) => app.fetch(req) as Promise<Response>);
 * ```
 *
 * @module
 */

import {
  type HistoryPolicy,
  Hub,
  type HubOptions,
  type InboundMessage,
  MessageError,
  type StandardSchemaIssue,
  type StandardSchemaResult,
  type StandardSchemaV1,
} from "../../mod.ts";
import { createDenoHandler } from "../../src/adapters/deno.ts";
import {
  type BunServerLike,
  type BunWebSocketHandler,
  createBunHandler,
} from "../../src/adapters/bun.ts";
import { createInspector } from "../../src/inspector/mod.ts";
import { CHAT_PAGE } from "./page.ts";
import { readFileSync } from "node:fs";

/** Where `npm start` puts the browser build of `@hubbub/hubbub/client`. */
export const CLIENT_BUNDLE: URL = new URL("./public/hubbub-client.js", import.meta.url);

let bundle: string | undefined;

/** The bundled client, read once; 503 with a hint when it has not been built. */
function clientBundle(): Response {
  try {
    bundle ??= readFileSync(CLIENT_BUNDLE, "utf8");
  } catch {
    return new Response(
      "The client bundle is missing: run `npm start`, or " +
        "`node scripts/build_client_bundle.mjs examples/chat/public/hubbub-client.js`",
      { status: 503 },
    );
  }
  return new Response(bundle, {
    headers: {
      "content-type": "text/javascript; charset=utf-8",
      "x-content-type-options": "nosniff",
    },
  });
}

/** Room names the guard allows. */
export const ROOM_NAME: RegExp = /^[a-z0-9-]{1,32}$/;
/** User names `identify` accepts (DEMO ONLY identity, see the module docs). */
export const USER_NAME: RegExp = /^[\p{L}\p{N}_.-]{1,32}$/u;
/** Longest chat or whisper text, in UTF-16 code units. */
export const MAX_TEXT = 2000;

/** A chat message to a room the sender has joined. */
export interface SayMessage extends InboundMessage {
  /** Always `"message"`. */
  type: "message";
  /** The room. */
  room: string;
  /** 1 to {@linkcode MAX_TEXT} characters. */
  text: string;
}

/** A private message to every connection of one user. */
export interface WhisperMessage extends InboundMessage {
  /** Always `"whisper"`. */
  type: "whisper";
  /** The recipient's user id. */
  to: string;
  /** 1 to {@linkcode MAX_TEXT} characters. */
  text: string;
}

/** What clients may send besides the hub's built-ins. */
export type ChatMessage = SayMessage | WhisperMessage;

/** How much of each room the chat keeps: the last 100 messages, for 10 minutes. */
export const CHAT_HISTORY: Readonly<Required<HistoryPolicy>> = Object.freeze({
  maxMessages: 100,
  maxAgeMs: 10 * 60_000,
});

/**
 * Options for {@linkcode createChatApp}: any hub option except the ones the
 * chat itself defines. With a `backplane`, pass a `historyStore` and a
 * `presenceStore` that every replica shares (Redis) to keep history and presence.
 */
export type ChatAppOptions = Omit<
  HubOptions<ChatMessage>,
  "identify" | "authenticate" | "canJoin" | "schema" | "onMessage" | "history" | "presence"
>;

/** What {@linkcode createChatApp} returns. */
export interface ChatApp {
  /** The hub (close it on shutdown). */
  hub: Hub<ChatMessage>;
  /**
   * The request handler: the page at `/`, the hub at `/ws`, 404 elsewhere.
   * On Bun pass the server (`fetch(req, server)`); the result is then
   * `undefined` once a socket is upgraded, as Bun expects. On Deno and Node it is
   * always a response.
   */
  fetch(request: Request, server?: BunServerLike): Promise<Response | undefined>;
  /** On Bun: pass as `websocket` to `Bun.serve`. `undefined` on Deno and Node. */
  websocket: BunWebSocketHandler | undefined;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; " +
    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * Build the chat demo: a hub with the chat's hooks, and a request handler.
 *
 * @param options Extra hub options (limits, origins, `onError`...).
 * @returns The hub, the handler, and Bun's `websocket` handlers when on Bun.
 */
export function createChatApp(options: ChatAppOptions = {}): ChatApp {
  // One process keeps both in memory; replicas need stores they share.
  const alone = options.backplane === undefined;
  const keepHistory = alone || options.historyStore !== undefined;
  const trackPresence = alone || options.presenceStore !== undefined;
  const hub: Hub<ChatMessage> = new Hub<ChatMessage>({
    ...options,
    history: keepHistory ? (room) => ROOM_NAME.test(room) && CHAT_HISTORY : undefined,
    presence: trackPresence ? (room) => ROOM_NAME.test(room) : undefined,
    // DEMO ONLY: the user names themselves in the URL and nobody checks it.
    // Never do this in production: verify a session cookie or a signed token here.
    identify(request) {
      const user = new URL(request.url).searchParams.get("user")?.trim();
      return user && USER_NAME.test(user) ? { userId: user } : null; // null → 401
    },
    canJoin: (_connection, room) => ROOM_NAME.test(room),
    schema: chatSchema,
    onMessage(connection, message) {
      const user = connection.userId!; // identify refuses anonymous connections
      if (message.type === "message") {
        const { room, text } = message;
        if (!connection.rooms.has(room)) {
          throw new MessageError("NOT_IN_ROOM", "Cannot send to room: you have not joined it", {
            room,
          });
        }
        if (!keepHistory) {
          hub.emit("message", { room, user, text }, { rooms: room });
          return;
        }
        // Stored in the room's history, then delivered; or, when the store cannot take it
        // (Redis down), delivered to nobody and refused to the sender, who may send it again.
        return hub.publish(room, "message", { room, user, text }).then(() => {}, () => {
          throw new MessageError("UNAVAILABLE", "Cannot send now: the history is unavailable", {
            room,
          });
        });
      } else {
        return whisper(user, message);
      }
    },
  });

  async function whisper(from: string, { to, text }: WhisperMessage): Promise<void> {
    if (!(await isOnline(to))) {
      throw new MessageError("USER_OFFLINE", "Cannot whisper: user is not online", { to });
    }
    hub.emit("whisper", { from, to, text }, { users: [to, from] });
  }

  /** Whether `user` has a connection on any replica (`true` when nobody can tell). */
  async function isOnline(user: string): Promise<boolean> {
    // The hub keeps every user's connection count across replicas when it tracks presence;
    // when its store cannot say (Redis down), only a local connection is sure.
    if (trackPresence) {
      return await hub.userPresence(user).then(
        (p) => p.online,
        () => alone ? hub.userConnections(user).length > 0 : true,
      );
    }
    return true; // replicas without a shared presence store: the user may be on another one
  }

  // DEMO ONLY: anyone who reaches the server as "localhost" may inspect it. The Host header
  // is the client's to set, so this protects nothing once the server listens beyond loopback
  // (HOST=0.0.0.0): a real app checks an admin session or token here.
  const inspector = createInspector(hub, {
    authorize: (request) => LOOPBACK.has(new URL(request.url).hostname),
    title: "chat demo",
  });

  const isBun = (globalThis as { Bun?: unknown }).Bun !== undefined;
  const isDeno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  let websocket: BunWebSocketHandler | undefined;
  let upgrade: (request: Request, server?: BunServerLike) => Promise<Response | undefined>;
  if (isBun) {
    const bun = createBunHandler(hub);
    websocket = bun.websocket;
    upgrade = (request, server) => {
      if (server === undefined) {
        throw new TypeError("Cannot upgrade on Bun: pass the server, as in fetch(req, server)");
      }
      return bun.upgrade(request, server);
    };
  } else if (isDeno) {
    upgrade = createDenoHandler(hub);
  } else {
    // Node (main_node.ts): upgrades arrive in the server's `upgrade` event and go to
    // createNodeHandler there, so what reaches /ws here is a plain request: 426.
    upgrade = () =>
      Promise.resolve(
        new Response("Expected a WebSocket upgrade", {
          status: 426,
          headers: { upgrade: "websocket", "content-type": "text/plain; charset=utf-8" },
        }),
      );
  }

  return {
    hub,
    websocket,
    async fetch(request, server) {
      const inspected = await inspector.fetch(request);
      if (inspected !== undefined) return inspected;
      const { pathname } = new URL(request.url);
      if (pathname === "/ws") return upgrade(request, server);
      if (pathname === "/hubbub-client.js") return Promise.resolve(clientBundle());
      if (pathname === "/" && (request.method === "GET" || request.method === "HEAD")) {
        return Promise.resolve(new Response(CHAT_PAGE, { headers: PAGE_HEADERS }));
      }
      return Promise.resolve(new Response("Not found", { status: 404 }));
    },
  };
}

/** The chat's inbound messages as a Standard Schema, written by hand (no library needed). */
export const chatSchema: StandardSchemaV1<unknown, ChatMessage> = {
  "~standard": { version: 1, vendor: "hubbub-chat", validate: validateChatMessage },
};

const FIELDS: Record<string, readonly string[]> = {
  message: ["type", "room", "text", "id"],
  whisper: ["type", "to", "text", "id"],
};

function validateChatMessage(value: unknown): StandardSchemaResult<ChatMessage> {
  // The hub only passes JSON objects with a string `type` here.
  const message = value as Record<string, unknown>;
  const fields = Object.hasOwn(FIELDS, message.type as string)
    ? FIELDS[message.type as string]
    : undefined;
  if (fields === undefined) {
    return { issues: [{ message: 'type must be "message" or "whisper"', path: ["type"] }] };
  }
  const issues: StandardSchemaIssue[] = [];
  for (const key of Object.keys(message)) {
    if (!fields.includes(key)) issues.push({ message: "unknown field", path: [key] });
  }
  for (const key of ["room", "to"]) {
    if (!fields.includes(key)) continue;
    const v = message[key];
    if (typeof v !== "string" || v.length < 1 || v.length > 128) {
      issues.push({ message: `${key} must be a string of 1 to 128 characters`, path: [key] });
    }
  }
  const text = message.text;
  if (typeof text !== "string" || text.length < 1 || text.length > MAX_TEXT) {
    issues.push({
      message: `text must be a string of 1 to ${MAX_TEXT} characters`,
      path: ["text"],
    });
  }
  return issues.length > 0 ? { issues } : { value: message as ChatMessage };
}
