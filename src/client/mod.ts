/**
 * The hubbub client: typed messages, request/response, rooms, and automatic
 * reconnection, for browsers, Deno, Bun and Node ≥ 22 (or any runtime, given a
 * `WebSocket` constructor).
 *
 * - `send(type, payload)` and `request(type, payload)` are checked against
 *   the app's contract (`defineContract` in `@hubbub/hubbub`); `request`
 *   resolves with the server handler's result.
 * - `subscribe(room)` resolves on the server's ack; rooms are re-joined after
 *   every reconnect, and messages sent while offline are flushed after that.
 * - History rooms (the server chooses them) recover: a re-join asks for what the
 *   client missed since its last delivered offset, a `recovery` lifecycle event
 *   says per room whether it got it (`recovered: false`: reload the room), room
 *   messages reach the app in offset order and never twice, and
 *   `history(room, { limit })` reads the recent past.
 * - Presence rooms (the server chooses them too): `presence(room)` and
 *   `presenceStats(room)` read the members and counts of every replica,
 *   `on("presence.join")` / `on("presence.leave")` are typed, and `members(room)`
 *   keeps a live member list (users, tabs merged) across reconnects.
 * - Reconnects use exponential backoff with full jitter and stop on terminal
 *   close codes (1000, 1008, 4001, 4003). An upgrade the server refuses is an
 *   {@linkcode UpgradeError} (with the HTTP status where the runtime reports it).
 * - Batched framing (`hubbub.batch.v1`) is offered by default (`batch: false`
 *   opts out); batched frames are split before the app sees them.
 * - Timeouts are a {@linkcode TimeoutError} (a `DOMException` named `"TimeoutError"`).
 * - It imports no schema library: the contract is used for its type only.
 *
 * @example
 * ```ts ignore
 * import { connect, RequestError } from "@hubbub/hubbub/client";
 * import type { contract } from "./contract.ts"; // defineContract({...}), shared with the server
 *
 * const client = await connect<typeof contract>("/ws");
 * client.on("chat.message", (m) => console.log(`${m.from}: ${m.text}`));
 * client.onLifecycle("reconnecting", ({ attempt, delayMs }) => console.log(attempt, delayMs));
 * await client.subscribe("lobby");
 * try {
 *   const { seq } = await client.request("chat.send", { room: "lobby", text: "hi" });
 *   console.log("stored as", seq);
 * } catch (e) {
 *   if (e instanceof RequestError) console.log(e.code, e.message);
 * }
 * await client.close();
 * ```
 *
 * @module
 */

export { HubClient } from "./hub_client.ts";
export type { ListenerData, ListenerEvent } from "./hub_client.ts";
export { connect } from "./connect.ts";
export type {
  AuthenticateFields,
  ClientTimers,
  ClientWebSocket,
  ClientWebSocketConstructor,
  ConnectOptions,
  EventsOptions,
  HistoryOptions,
  HubClientOptions,
  HubClientState,
  RequestOptions,
} from "./hub_client_options.ts";
export type {
  ClientCloseEvent,
  ClientErrorEvent,
  ClientErrorSource,
  CloseInfo,
  HubClientLifecycle,
  OpenEvent,
  ReconnectingEvent,
  RecoveryEvent,
} from "./lifecycle_events.ts";
export type {
  MemberList,
  MemberListChange,
  PresenceClient,
  PresenceEnvelope,
  PresenceEventMap,
  PresenceEventType,
  PresenceJoin,
  PresenceLeave,
  PresenceMember,
  PresenceStats,
} from "./presence.ts";
export type {
  HistoryMessage,
  HistoryResult,
  StreamFields,
  StreamPosition,
} from "./stream_position.ts";
export * from "./errors.ts";
export * from "./backoff.ts";
export type {
  AnyContract,
  ClientMessageType,
  ClientPayload,
  Contract,
  PayloadSchema,
  PayloadSchemaMap,
  RequestResult,
  SchemaInput,
  SchemaMap,
  ServerData,
  ServerMessage,
  ServerMessageType,
} from "../protocol/contract.ts";
export type {
  StandardSchemaIssue,
  StandardSchemaProps,
  StandardSchemaResult,
  StandardSchemaV1,
} from "../protocol/standard_schema.ts";
