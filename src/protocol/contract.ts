/**
 * Typed messages, declared once for server and client.
 *
 * A contract names every client → server message (with a Standard Schema for
 * its fields), every server → client event (with a schema for its `data`), and,
 * optionally, the result of the client messages that are requests. The server
 * validates with {@linkcode contractSchema} and emits with
 * {@linkcode typedEmitter}; the client (`@hubbub/hubbub/client`) takes the
 * contract's type and checks `send`, `request` and `on` against it.
 *
 * Wire shape (unchanged): a client message is flat, `{"type": K, ...fields}`,
 * plus `"id"` when it is a request; a server event is
 * `{"type": K, "data": D, "timestamp": ms}`. So app fields named `type` or `id`
 * cannot be used in client messages.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { contractSchema, defineContract, Hub, type ClientMessage } from "@hubbub/hubbub";
 *
 * const chat = defineContract({
 *   client: { "chat.send": z.object({ room: z.string(), text: z.string().max(500) }) },
 *   server: { "chat.message": z.object({ room: z.string(), from: z.string(), text: z.string() }) },
 *   requests: { "chat.send": z.object({ seq: z.number() }) },
 * });
 * const hub = new Hub<ClientMessage<typeof chat>>({ schema: contractSchema(chat) });
 * hub.on("chat.send", (_conn, m) => ({ seq: m.text.length }));
 * await hub.close();
 * ```
 *
 * @module
 */

import type {
  StandardSchemaIssue,
  StandardSchemaResult,
  StandardSchemaV1,
} from "./standard_schema.ts";
import type { Target } from "./target.ts";
import { BUILTIN_TYPES, ServerEvent } from "./envelope.ts";

/** A schema for the fields of one client message (everything but `type` and `id`). */
export type PayloadSchema = StandardSchemaV1<unknown, object>;

/** Client message types mapped to the schemas of their fields. */
export type PayloadSchemaMap = { readonly [type: string]: PayloadSchema };

/** Message types mapped to schemas. */
export type SchemaMap = { readonly [type: string]: StandardSchemaV1 };

/**
 * An app's message contract, made by {@linkcode defineContract}.
 *
 * @typeParam Client Client → server message types and the schemas of their fields.
 * @typeParam Server Server → client event types and the schemas of their `data`.
 * @typeParam Requests Result schemas of the client messages that are requests.
 */
export interface Contract<
  Client extends PayloadSchemaMap = PayloadSchemaMap,
  Server extends SchemaMap = SchemaMap,
  Requests extends SchemaMap = SchemaMap,
> {
  /** Client → server messages: type → schema of the fields. */
  readonly client: Client;
  /** Server → client events: type → schema of `data`. */
  readonly server: Server;
  /** Requests: client message type → schema of the `ack` result. */
  readonly requests: Requests;
}

/** Any contract (the loosest one: every type is a string, every payload unknown). */
export type AnyContract = Contract<PayloadSchemaMap, SchemaMap, SchemaMap>;

/** What {@linkcode defineContract} takes. */
export interface ContractDefinition<
  Client extends PayloadSchemaMap,
  Server extends SchemaMap,
  Requests extends SchemaMap,
> {
  /** Client → server messages: type → schema of the fields (an object schema). */
  client: Client;
  /** Server → client events: type → schema of `data`. */
  server: Server;
  /**
   * Which client messages are requests, and the schema of their `ack` result.
   * Keys must be client message types.
   * @default {{}}
   */
  requests?: Requests;
}

/** The input type of a schema (what a sender writes). */
export type SchemaInput<S> = S extends StandardSchemaV1<infer I, unknown> ? I : never;

/** The output type of a schema (what a validator returns). */
export type SchemaOutput<S> = S extends StandardSchemaV1<unknown, infer O> ? O : never;

/** The client → server message types of a contract. */
export type ClientMessageType<C extends AnyContract> = keyof C["client"] & string;

/** The server → client event types of a contract. */
export type ServerMessageType<C extends AnyContract> = keyof C["server"] & string;

/** The fields a client writes for message type `K` (the schema's input). */
export type ClientPayload<C extends AnyContract, K extends ClientMessageType<C>> = SchemaInput<
  C["client"][K]
>;

/**
 * The `data` of server event `K` as it arrives (the schema's input: what the
 * server emitted; the client does not re-validate).
 */
export type ServerData<C extends AnyContract, K extends ServerMessageType<C>> = SchemaInput<
  C["server"][K]
>;

/**
 * A validated client message as a server handler sees it: the union over the
 * contract's client types of `{type: K} & fields` (each schema's output).
 */
export type ClientMessage<C extends AnyContract> = {
  [K in ClientMessageType<C>]:
    & { type: K }
    & { [P in keyof SchemaOutput<C["client"][K]>]: SchemaOutput<C["client"][K]>[P] };
}[ClientMessageType<C>];

/**
 * A server event as a client receives it: the union over the contract's
 * server types of `{type: K, data, timestamp}`.
 *
 * (Named `ServerMessage`, not `ServerEvent`: `ServerEvent` is the table of
 * hubbub's own event names.)
 */
export type ServerMessage<C extends AnyContract> = {
  [K in ServerMessageType<C>]: { type: K; data: ServerData<C, K>; timestamp: number };
}[ServerMessageType<C>];

/**
 * The `ack` result of request `K`: the input type of `requests[K]` (what the
 * handler returns), or `unknown` when the contract gives no result schema.
 */
export type RequestResult<C extends AnyContract, K extends ClientMessageType<C>> = K extends
  keyof C["requests"] ? SchemaInput<C["requests"][K]> : unknown;

const SERVER_BUILTINS: ReadonlySet<string> = new Set(Object.values(ServerEvent));

function isSchema(value: unknown): value is StandardSchemaV1 {
  if (typeof value !== "object" && typeof value !== "function") return false;
  if (value === null) return false;
  const std = (value as { "~standard"?: { validate?: unknown } })["~standard"];
  return typeof std === "object" && std !== null && typeof std.validate === "function";
}

function checkMap(
  map: unknown,
  what: string,
  reserved: ReadonlySet<string>,
): asserts map is SchemaMap {
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw new TypeError(`Cannot define contract: ${what} must be an object of schemas`);
  }
  for (const [type, schema] of Object.entries(map)) {
    if (type === "") throw new TypeError(`Cannot define contract: empty ${what} type`);
    if (reserved.has(type)) {
      throw new TypeError(`Cannot define contract: "${type}" is a built-in ${what} type`);
    }
    if (!isSchema(schema)) {
      throw new TypeError(
        `Cannot define contract: ${what}["${type}"] is not a Standard Schema`,
      );
    }
  }
}

/**
 * Declare an app's messages once. The result is plain data (the schemas you
 * passed); its type carries every message type and payload for
 * {@linkcode ClientMessage}, {@linkcode ServerMessage} and the client.
 *
 * @typeParam Client Client → server message schemas (inferred).
 * @typeParam Server Server → client event schemas (inferred).
 * @typeParam Requests Request result schemas (inferred).
 * @param definition The `client`, `server` and optional `requests` schema maps.
 * @returns The contract, frozen.
 * @throws {TypeError} If a value is not a Standard Schema, a type is empty or a
 *   built-in (`ping`, `subscribe`, ... for clients; `ack`, `error`, ... for the
 *   server), or a `requests` key is not a client type.
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineContract } from "@hubbub/hubbub";
 * export const contract = defineContract({
 *   client: { "chat.send": z.object({ room: z.string(), text: z.string() }) },
 *   server: { "chat.message": z.object({ from: z.string(), text: z.string() }) },
 *   requests: { "chat.send": z.object({ seq: z.number() }) },
 * });
 * ```
 */
export function defineContract<
  Client extends PayloadSchemaMap,
  Server extends SchemaMap,
  Requests extends SchemaMap = Record<never, never>,
>(
  definition: ContractDefinition<
    Client,
    Server,
    Requests & { readonly [K in Exclude<keyof Requests, keyof Client>]: never }
  >,
): Contract<Client, Server, Requests> {
  if (typeof definition !== "object" || definition === null) {
    throw new TypeError("Cannot define contract: expected { client, server, requests? }");
  }
  const { client, server, requests = {} } = definition;
  checkMap(client, "client", BUILTIN_TYPES);
  checkMap(server, "server", SERVER_BUILTINS);
  checkMap(requests, "requests", BUILTIN_TYPES);
  for (const type of Object.keys(requests)) {
    if (!Object.hasOwn(client, type)) {
      throw new TypeError(`Cannot define contract: request "${type}" is not a client type`);
    }
  }
  return Object.freeze({
    client: Object.freeze({ ...client }),
    server: Object.freeze({ ...server }),
    requests: Object.freeze({ ...requests }),
  }) as unknown as Contract<Client, Server, Requests>;
}

function issue(message: string, key?: string): StandardSchemaResult<never> {
  return { issues: [key === undefined ? { message } : { message, path: [key] }] };
}

/**
 * A Standard Schema that validates a client message against a contract: it
 * picks the schema by the message's `type` (an unknown type is an issue),
 * validates the other fields (without `type` and `id`), and returns
 * `{type, ...validated fields}`. Pass it as the hub's `schema`; the hub reads a
 * request's `id` before validation, so acks still reach the client.
 *
 * @typeParam C The contract.
 * @param contract The contract from {@linkcode defineContract}.
 * @returns A schema whose output is {@linkcode ClientMessage}.
 * @throws {TypeError} If `contract` has no `client` map.
 * @example
 * ```ts
 * import { z } from "zod";
 * import { contractSchema, defineContract, Hub, type ClientMessage } from "@hubbub/hubbub";
 * const c = defineContract({
 *   client: { "add": z.object({ a: z.number(), b: z.number() }) },
 *   server: {},
 * });
 * const hub = new Hub<ClientMessage<typeof c>>({ schema: contractSchema(c) });
 * hub.on("add", (_conn, m) => m.a + m.b);
 * await hub.close();
 * ```
 */
export function contractSchema<C extends AnyContract>(
  contract: C,
): StandardSchemaV1<unknown, ClientMessage<C>> {
  const client = contract?.client as PayloadSchemaMap | undefined;
  if (typeof client !== "object" || client === null) {
    throw new TypeError("Cannot make schema: the contract has no client map");
  }
  const validate = (value: unknown) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return issue("Message must be a JSON object");
    }
    const { type, id: _id, ...fields } = value as Record<string, unknown>;
    if (typeof type !== "string") return issue("type must be a string", "type");
    if (!Object.hasOwn(client, type)) {
      return issue(`Unknown message type "${type.slice(0, 64)}"`, "type");
    }
    const finish = (r: StandardSchemaResult<object>): StandardSchemaResult<ClientMessage<C>> => {
      if (r.issues !== undefined) return { issues: r.issues };
      const out = r.value;
      if (typeof out !== "object" || out === null || Array.isArray(out)) {
        return issue(`The schema for "${type}" must produce an object`);
      }
      return { value: { ...out, type } as unknown as ClientMessage<C> };
    };
    const result = client[type]["~standard"].validate(fields);
    return result instanceof Promise ? result.then(finish) : finish(result);
  };
  return { "~standard": { version: 1, vendor: "hubbub", validate } };
}

/** The parts of a hub a {@linkcode TypedEmitter} uses. */
export interface EmitterHub {
  /** `Hub.emit`. */
  emit(type: string, data: unknown, target?: Target): number;
  /** `Hub.sendTo`. */
  sendTo(clientId: string, type: string, data: unknown): boolean;
}

/** Options for {@linkcode typedEmitter}. */
export interface TypedEmitterOptions {
  /**
   * Validate `data` against the contract's server schema before sending (a
   * development aid: it costs a validation per emit). The data is sent as
   * given, not as the schema transformed it.
   * @default {false}
   */
  validate?: boolean;
}

/** A hub's `emit` and `sendTo`, checked against a contract's server events. */
export interface TypedEmitter<C extends AnyContract> {
  /**
   * Send event `type` to a target (see `Hub.emit`).
   *
   * @param type A server event type of the contract.
   * @param data Its data.
   * @param target Who receives it; everyone when omitted.
   * @returns How many connections accepted it.
   * @throws {TypeError} With `validate`: if `data` fails the schema, the type is
   *   not in the contract, or the schema is asynchronous.
   */
  emit<K extends ServerMessageType<C>>(type: K, data: ServerData<C, K>, target?: Target): number;
  /**
   * Send event `type` to one client (see `Hub.sendTo`).
   *
   * @param clientId The client id.
   * @param type A server event type of the contract.
   * @param data Its data.
   * @returns `false` when there is no such connection or it did not accept the frame.
   * @throws {TypeError} With `validate`, as for `emit`.
   */
  sendTo<K extends ServerMessageType<C>>(
    clientId: string,
    type: K,
    data: ServerData<C, K>,
  ): boolean;
}

function describe(issues: ReadonlyArray<StandardSchemaIssue>): string {
  return issues.slice(0, 5).map((i) => {
    const path = i.path?.map((p) => String(typeof p === "object" ? p.key : p)).join(".");
    return path ? `${path}: ${i.message}` : i.message;
  }).join("; ");
}

/**
 * Wrap a hub's `emit` and `sendTo` so event types and data are checked at
 * compile time against the contract's server schemas (and, with
 * `validate: true`, at run time too).
 *
 * @typeParam C The contract.
 * @param hub The hub (anything with `emit` and `sendTo`).
 * @param contract The contract from {@linkcode defineContract}.
 * @param options See {@linkcode TypedEmitterOptions}.
 * @returns The typed emitter.
 * @throws {TypeError} If `contract` has no `server` map.
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineContract, Hub, typedEmitter } from "@hubbub/hubbub";
 * const c = defineContract({
 *   client: {},
 *   server: { "notice": z.object({ text: z.string() }) },
 * });
 * const hub = new Hub();
 * const out = typedEmitter(hub, c, { validate: true });
 * out.emit("notice", { text: "maintenance at noon" }, { rooms: "lobby" });
 * await hub.close();
 * ```
 */
export function typedEmitter<C extends AnyContract>(
  hub: EmitterHub,
  contract: C,
  options: TypedEmitterOptions = {},
): TypedEmitter<C> {
  const server = contract?.server as SchemaMap | undefined;
  if (typeof server !== "object" || server === null) {
    throw new TypeError("Cannot make emitter: the contract has no server map");
  }
  const check = (type: string, data: unknown): void => {
    if (!Object.hasOwn(server, type)) {
      throw new TypeError(`Cannot emit "${type}": not a server type of the contract`);
    }
    const result = server[type]["~standard"].validate(data);
    if (result instanceof Promise) {
      result.catch(() => {});
      throw new TypeError(
        `Cannot emit "${type}": its schema is asynchronous (use validate: false)`,
      );
    }
    if (result.issues !== undefined) {
      throw new TypeError(`Cannot emit "${type}": ${describe(result.issues)}`);
    }
  };
  const validate = options.validate === true;
  return {
    emit(type, data, target) {
      if (validate) check(type, data);
      return hub.emit(type, data, target);
    },
    sendTo(clientId, type, data) {
      if (validate) check(type, data);
      return hub.sendTo(clientId, type, data);
    },
  };
}
