/**
 * An AsyncAPI 3.0 document for a hub's WebSocket endpoint, built from
 * `hub.describe()`. Runtime-neutral, no dependencies.
 *
 * - The document describes the **server** (the hub), as AsyncAPI 3 does: a
 *   client → server message is an operation with `action: "receive"`, a
 *   server → client event one with `action: "send"`.
 * - One channel (`hub`) for the endpoint; its address is the URL path.
 * - Client messages: the built-ins (`ping`, `subscribe`, `unsubscribe`,
 *   `authenticate`, each with its reply), every `hub.on()` type, and `*` for
 *   the `onMessage` catch-all. Payload schemas come from the schema's Standard
 *   JSON Schema where it has one; otherwise `{type}` only.
 * - Server events: the built-ins, wrapped in the envelope
 *   `{type, data, timestamp}`, plus the app's own events passed as `serverEvents`
 *   (the hub cannot know which events the app emits).
 * - Endpoint metadata: description and tags in `info`; middleware, limits and
 *   subprotocols as `x-hubbub-*` extensions.
 *
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * import { asyncApiDocument } from "@hubbub/hubbub/asyncapi";
 *
 * const hub = new Hub({ endpoint: { description: "Chat", tags: ["chat"] } });
 * const doc = asyncApiDocument(hub, {
 *   title: "Chat",
 *   version: "1.0.0",
 *   serverUrl: "wss://chat.example.com/ws",
 * });
 * console.log(doc.asyncapi); // "3.0.0"
 * await hub.close();
 * ```
 *
 * @module
 */

import type { Hub } from "./core/hub.ts";
import { jsonSchemaOf, type MessageDescription } from "./core/describe.ts";
import { ErrorCode } from "./protocol/error_codes.ts";
import { ServerEvent } from "./protocol/envelope.ts";

/** A JSON Schema (or AsyncAPI Schema) object. */
export type JsonSchema = Record<string, unknown>;

/** Options for {@linkcode asyncApiDocument}. */
export interface AsyncApiOptions {
  /** The API's title (`info.title`). */
  title: string;
  /** The API's version (`info.version`), e.g. `"1.0.0"`. */
  version: string;
  /**
   * The endpoint's URL, e.g. `wss://chat.example.com/ws`: becomes the server
   * (host and protocol) and the channel address (path). `http(s)` is read as `ws(s)`.
   * Without it the document has no server and the channel address is `path`.
   */
  serverUrl?: string;
  /**
   * The endpoint's path when there is no `serverUrl`.
   * @default {"/ws"}
   */
  path?: string;
  /**
   * `info.description`.
   * @default {hub.describe().endpoint.description}
   */
  description?: string;
  /**
   * The app's own server → client events: type → schema of `data`. A schema
   * implementing Standard JSON Schema (e.g. a contract's `server` map), a plain
   * JSON Schema object, or `true` for "any data".
   * @default {{}}
   */
  serverEvents?: Readonly<Record<string, unknown>>;
}

/** An AsyncAPI 3.0 message object. */
export interface AsyncApiMessage {
  /** The message type (the `type` field on the wire). */
  readonly name: string;
  /** One line about it. */
  readonly summary: string;
  /** Always JSON. */
  readonly contentType: "application/json";
  /** The payload's schema (or a `$ref` to it). */
  readonly payload: JsonSchema;
}

/** An AsyncAPI 3.0 operation object. */
export interface AsyncApiOperation {
  /** `receive`: the hub takes it from clients; `send`: the hub sends it. */
  readonly action: "send" | "receive";
  /** `$ref` to the channel. */
  readonly channel: { readonly $ref: string };
  /** One line about it. */
  readonly summary: string;
  /** `$ref`s to the channel's messages. */
  readonly messages: readonly { readonly $ref: string }[];
  /** The reply, for built-in requests. */
  readonly reply?: {
    readonly channel: { readonly $ref: string };
    readonly messages: readonly { readonly $ref: string }[];
  };
}

/** An AsyncAPI 3.0 document (the parts this module writes). */
export interface AsyncApiDocument {
  /** `"3.0.0"`. */
  readonly asyncapi: "3.0.0";
  /** Title, version, description, tags and `x-hubbub-*` extensions. */
  readonly info: Record<string, unknown>;
  /** The server, when `serverUrl` was given. */
  readonly servers?: Record<string, Record<string, unknown>>;
  /** `application/json`. */
  readonly defaultContentType: "application/json";
  /** One channel, `hub`. */
  readonly channels: Record<string, Record<string, unknown>>;
  /** One operation per message. */
  readonly operations: Record<string, AsyncApiOperation>;
  /** Messages and schemas. */
  readonly components: {
    readonly messages: Record<string, AsyncApiMessage>;
    readonly schemas: Record<string, JsonSchema>;
  };
}

const CHANNEL = "hub";
const CHANNEL_REF = { $ref: `#/channels/${CHANNEL}` };

const REQUEST_ID: JsonSchema = {
  description: "Request id: the reply carries it back.",
  oneOf: [{ type: "string", minLength: 1, maxLength: 128 }, { type: "number" }],
};

/** Built-in client messages: schema and reply. */
function builtinClient(type: string, maxRoom: number): { schema: JsonSchema; reply: string } {
  const base = { type: { const: type }, id: REQUEST_ID };
  switch (type) {
    case "ping":
      return {
        schema: object(base, ["type"], false, "Ask for a pong."),
        reply: ServerEvent.PONG,
      };
    case "subscribe":
    case "unsubscribe":
      return {
        schema: object(
          { ...base, room: { type: "string", minLength: 1, maxLength: maxRoom } },
          ["type", "room"],
          false,
          type === "subscribe" ? "Join a room (the server's room guard decides)." : "Leave a room.",
        ),
        reply: type === "subscribe" ? ServerEvent.SUBSCRIBED : ServerEvent.UNSUBSCRIBED,
      };
    default:
      return {
        schema: object(
          base,
          ["type"],
          true,
          "Authenticate the connection (the fields depend on the server's authenticate hook).",
        ),
        reply: ServerEvent.AUTHENTICATED,
      };
  }
}

/** Built-in server events: schema of `data`. */
const BUILTIN_SERVER: Record<string, { summary: string; data: JsonSchema }> = {
  [ServerEvent.ESTABLISHED]: {
    summary: "First frame on every connection.",
    data: object({ clientId: { type: "string" }, userId: { type: "string" } }, ["clientId"]),
  },
  [ServerEvent.CLOSED]: {
    summary: "Sent before a server-initiated close.",
    data: object({ code: { type: "integer" }, reason: { type: "string" } }, ["code", "reason"]),
  },
  [ServerEvent.PONG]: {
    summary: "Reply to ping.",
    data: object({ timestamp: { type: "integer" } }, ["timestamp"]),
  },
  [ServerEvent.SUBSCRIBED]: {
    summary: "The room was joined.",
    data: object({ room: { type: "string" } }, ["room"]),
  },
  [ServerEvent.UNSUBSCRIBED]: {
    summary: "The room was left.",
    data: object({ room: { type: "string" } }, ["room"]),
  },
  [ServerEvent.AUTHENTICATED]: {
    summary: "The connection has an identity.",
    data: object({ userId: { type: "string" }, status: { const: "success" } }, [
      "userId",
      "status",
    ]),
  },
  [ServerEvent.ACK]: {
    summary: "The result of a client request that carried an id.",
    data: object({ id: REQUEST_ID, result: {} }, ["id"]),
  },
  [ServerEvent.ERROR]: {
    summary: "A request or message was refused; the connection stays open.",
    data: object(
      {
        code: { type: "string", examples: Object.values(ErrorCode) },
        message: { type: "string" },
        id: REQUEST_ID,
      },
      ["code", "message"],
      true,
    ),
  },
};

function object(
  properties: Record<string, JsonSchema>,
  required: string[],
  additionalProperties = true,
  description?: string,
): JsonSchema {
  return {
    type: "object",
    ...(description !== undefined ? { description } : {}),
    properties,
    required,
    ...(additionalProperties ? {} : { additionalProperties: false }),
  };
}

function envelope(type: string, data: JsonSchema): JsonSchema {
  return object(
    {
      type: { const: type },
      data,
      timestamp: { type: "integer", description: "Server time, Unix ms." },
    },
    ["type", "data", "timestamp"],
  );
}

/** A component key (`^[a-zA-Z0-9.\-_]+$`), unique within `taken`. */
function key(raw: string, taken: Set<string>): string {
  const clean = raw.replace(/[^a-zA-Z0-9._-]/g, "_");
  let k = clean;
  for (let i = 2; taken.has(k); i++) k = `${clean}_${i}`;
  taken.add(k);
  return k;
}

/** Make `#/...` refs of a schema placed at `pointer` point inside it again. */
function rebase(schema: unknown, pointer: string): unknown {
  if (Array.isArray(schema)) return schema.map((s) => rebase(s, pointer));
  if (typeof schema !== "object" || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === "$schema") continue;
    out[k] = k === "$ref" && typeof v === "string" && v.startsWith("#")
      ? pointer + v.slice(1)
      : rebase(v, pointer);
  }
  return out;
}

function schemaOf(value: unknown): JsonSchema | undefined {
  if (value === true) return {};
  const fromStandard = jsonSchemaOf(value);
  if (fromStandard !== undefined) return fromStandard;
  if (typeof value === "object" && value !== null && !("~standard" in value)) {
    return value as JsonSchema;
  }
  return undefined;
}

/**
 * Build an AsyncAPI 3.0 document for a hub's endpoint.
 *
 * @param hub The hub (read through `hub.describe()`).
 * @param options Title, version, server URL, the app's server events.
 * @returns The document: plain data, ready for `JSON.stringify`.
 * @throws {TypeError} If `serverUrl` is not a `ws:`, `wss:`, `http:` or `https:` URL.
 * @example
 * ```ts
 * import { Hub } from "@hubbub/hubbub";
 * import { asyncApiDocument } from "@hubbub/hubbub/asyncapi";
 *
 * const hub = new Hub({ onMessage: () => {} });
 * const doc = asyncApiDocument(hub, {
 *   title: "Chat",
 *   version: "1.0.0",
 *   serverEvents: { message: { type: "object", properties: { text: { type: "string" } } } },
 * });
 * const body = JSON.stringify(doc, null, 2); // serve it at /asyncapi.json
 * console.log(Object.keys(doc.operations).length > 0, body.length > 0); // true true
 * await hub.close();
 * ```
 */
// deno-lint-ignore no-explicit-any
export function asyncApiDocument(hub: Hub<any>, options: AsyncApiOptions): AsyncApiDocument {
  const d = hub.describe();
  let address = options.path ?? "/ws";
  let servers: Record<string, Record<string, unknown>> | undefined;
  if (options.serverUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(options.serverUrl);
    } catch {
      throw new TypeError(`Cannot describe endpoint: invalid serverUrl "${options.serverUrl}"`);
    }
    const protocol = ({ "ws:": "ws", "http:": "ws", "wss:": "wss", "https:": "wss" } as Record<
      string,
      string
    >)[url.protocol];
    if (protocol === undefined) {
      throw new TypeError(`Cannot describe endpoint: serverUrl must be ws(s) or http(s)`);
    }
    address = url.pathname + url.search;
    servers = { default: { host: url.host, protocol } };
  }

  const messageKeys = new Set<string>();
  const opKeys = new Set<string>();
  const messages: Record<string, AsyncApiMessage> = {};
  const schemas: Record<string, JsonSchema> = {};
  const channelMessages: Record<string, { $ref: string }> = {};
  const operations: Record<string, AsyncApiOperation> = {};
  const byServerType = new Map<string, string>();

  const addMessage = (id: string, name: string, summary: string, payload: JsonSchema): string => {
    const k = key(id, messageKeys);
    messages[k] = { name, summary, contentType: "application/json", payload };
    channelMessages[k] = { $ref: `#/components/messages/${k}` };
    return k;
  };
  const ref = (k: string) => ({ $ref: `#/channels/${CHANNEL}/messages/${k}` });

  // Server → client events first, so client requests can name their replies.
  const serverEvents: [string, string, JsonSchema][] = Object.entries(BUILTIN_SERVER).map((
    [type, e],
  ) => [type, e.summary, e.data]);
  for (const [type, value] of Object.entries(options.serverEvents ?? {})) {
    if (Object.hasOwn(BUILTIN_SERVER, type)) continue;
    const schema = schemaOf(value);
    const sk = key(`server.${type}.data`, new Set(Object.keys(schemas)));
    if (schema !== undefined) {
      schemas[sk] = rebase(schema, `#/components/schemas/${sk}`) as JsonSchema;
    }
    serverEvents.push([
      type,
      "An event the app emits.",
      schema !== undefined ? { $ref: `#/components/schemas/${sk}` } : {},
    ]);
  }
  for (const [type, summary, data] of serverEvents) {
    const k = addMessage(`server.${type}`, type, summary, envelope(type, data));
    byServerType.set(type, k);
    operations[key(`send.${type}`, opKeys)] = {
      action: "send",
      channel: CHANNEL_REF,
      summary,
      messages: [ref(k)],
    };
  }

  const errorRef = ref(byServerType.get(ServerEvent.ERROR)!);
  for (const m of d.messages) {
    const op = clientOperation(m, d.limits.maxRoomNameLength);
    let payload = op.schema;
    if (m.jsonSchema !== undefined) {
      const sk = key(`client.${m.type === "*" ? "any" : m.type}`, new Set(Object.keys(schemas)));
      schemas[sk] = rebase(m.jsonSchema, `#/components/schemas/${sk}`) as JsonSchema;
      payload = { $ref: `#/components/schemas/${sk}` };
    }
    const k = addMessage(`client.${m.type === "*" ? "any" : m.type}`, m.type, op.summary, payload);
    const replies = [ref(byServerType.get(op.reply ?? ServerEvent.ACK)!), errorRef];
    operations[key(`receive.${m.type === "*" ? "any" : m.type}`, opKeys)] = {
      action: "receive",
      channel: CHANNEL_REF,
      summary: op.summary,
      messages: [ref(k)],
      reply: { channel: CHANNEL_REF, messages: replies },
    };
  }

  const e = d.endpoint;
  const info: Record<string, unknown> = {
    title: options.title,
    version: options.version,
  };
  const description = options.description ?? e.description;
  if (description !== undefined) info.description = description;
  if (e.tags && e.tags.length > 0) info.tags = e.tags.map((name) => ({ name }));
  if (e.middleware && e.middleware.length > 0) info["x-hubbub-middleware"] = [...e.middleware];
  info["x-hubbub-subprotocols"] = [...d.subprotocols];
  info["x-hubbub-limits"] = { ...d.limits };

  const channel: Record<string, unknown> = {
    address,
    title: options.title,
    ...(description !== undefined ? { description } : {}),
    messages: channelMessages,
    bindings: { ws: { method: "GET", bindingVersion: "0.1.0" } },
  };
  if (servers !== undefined) channel.servers = [{ $ref: "#/servers/default" }];

  return {
    asyncapi: "3.0.0",
    info,
    ...(servers !== undefined ? { servers } : {}),
    defaultContentType: "application/json",
    channels: { [CHANNEL]: channel },
    operations,
    components: { messages, schemas },
  };
}

function clientOperation(
  m: MessageDescription,
  maxRoom: number,
): { schema: JsonSchema; summary: string; reply?: string } {
  if (m.kind === "builtin") {
    const b = builtinClient(m.type, maxRoom);
    return { schema: b.schema, summary: String(b.schema.description), reply: b.reply };
  }
  const anyType = m.type === "*";
  const schema = object(
    {
      type: anyType ? { type: "string", minLength: 1 } : { const: m.type },
      id: REQUEST_ID,
    },
    ["type"],
  );
  const summary = anyType
    ? "Any other message type (the app's catch-all handler)."
    : `A ${m.type} message (the app's handler${m.validated ? ", validated" : ""}).`;
  return { schema, summary };
}
