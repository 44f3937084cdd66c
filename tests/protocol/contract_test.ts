import assert from "node:assert/strict";
import { z } from "zod";
import { Hub, type StandardSchemaV1 } from "../../mod.ts";
import {
  type ClientMessage,
  type ClientPayload,
  contractSchema,
  defineContract,
  type RequestResult,
  type ServerData,
  type ServerMessage,
  typedEmitter,
} from "../../src/protocol/contract.ts";
import { connectMemory } from "../../src/testing/mod.ts";
import { test } from "../_harness.ts";

const chat = defineContract({
  client: {
    "chat.send": z.object({ room: z.string(), text: z.string().max(10) }),
    "chat.typing": z.object({ room: z.string(), on: z.boolean().default(true) }),
  },
  server: {
    "chat.message": z.object({ room: z.string(), text: z.string() }),
    "count": z.number(),
  },
  requests: { "chat.send": z.object({ seq: z.number() }) },
});

// ---- compile-time checks (deno check of tests/ fails if any of these stops holding)

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true
  : false;
function expectType<T extends true>(_ok?: T): void {}

// Never called: only type-checked.
export function _compileOnly(): void {
  expectType<
    Equal<
      ClientMessage<typeof chat>["type"],
      "chat.send" | "chat.typing"
    >
  >();
  expectType<
    Equal<Extract<ClientMessage<typeof chat>, { type: "chat.typing" }>["on"], boolean>
  >(); // output: the default applied
  expectType<Equal<ClientPayload<typeof chat, "chat.typing">["on"], boolean | undefined>>(); // input
  expectType<Equal<RequestResult<typeof chat, "chat.send">, { seq: number }>>();
  expectType<Equal<RequestResult<typeof chat, "chat.typing">, unknown>>();
  expectType<Equal<ServerData<typeof chat, "count">, number>>();
  expectType<Equal<ServerMessage<typeof chat>["type"], "chat.message" | "count">>();

  const typedHub = new Hub<ClientMessage<typeof chat>>({ schema: contractSchema(chat) });
  typedHub.on("chat.send", (_conn, m) => {
    const text: string = m.text;
    // @ts-expect-error: chat.send has no `on` field
    m.on;
    return { seq: text.length } satisfies RequestResult<typeof chat, "chat.send">;
  });
  // @ts-expect-error: not a client message type of the contract
  typedHub.on("chat.nope", () => {});
  const typed = typedEmitter(typedHub, chat);
  typed.emit("count", 3);
  // @ts-expect-error: count's data is a number
  typed.emit("count", "3");
  // @ts-expect-error: not a server event type
  typed.emit("chat.nope", {});
  // @ts-expect-error: a field is missing
  typed.sendTo("c1", "chat.message", { room: "a" });
  defineContract({
    client: { a: z.object({}) },
    server: {},
    // @ts-expect-error: requests must name client types
    requests: { b: z.number() },
  });
  defineContract({
    // @ts-expect-error: client payload schemas must produce objects
    client: { a: z.string() },
    server: {},
  });
}

// ---- run-time behaviour

test("defineContract() returns a frozen contract and rejects bad definitions", () => {
  assert.ok(Object.isFrozen(chat) && Object.isFrozen(chat.client));
  assert.deepEqual(Object.keys(chat.requests), ["chat.send"]);
  assert.deepEqual(defineContract({ client: {}, server: {} }).requests, {});
  const s = z.object({});
  const bad = (d: unknown) => () => defineContract(d as Parameters<typeof defineContract>[0]);
  assert.throws(bad(null), TypeError);
  assert.throws(bad({ client: { a: {} }, server: {} }), /not a Standard Schema/);
  assert.throws(bad({ client: { subscribe: s }, server: {} }), /built-in client type/);
  assert.throws(bad({ client: {}, server: { ack: s } }), /built-in server type/);
  assert.throws(bad({ client: { a: s }, server: {}, requests: { b: s } }), /not a client type/);
  assert.throws(bad({ client: { "": s }, server: {} }), TypeError);
});

test("contractSchema() validates a message by its type and returns {type, ...validated fields}", async () => {
  const v = contractSchema(chat)["~standard"];
  assert.equal(v.vendor, "hubbub");
  assert.deepEqual(await v.validate({ type: "chat.typing", room: "a", id: 7 }), {
    value: { type: "chat.typing", room: "a", on: true },
  });
  const unknown = await v.validate({ type: "chat.nope" });
  assert.match(unknown.issues?.[0].message ?? "", /Unknown message type "chat.nope"/);
  assert.deepEqual(unknown.issues?.[0].path, ["type"]);
  const long = await v.validate({ type: "chat.send", room: "a", text: "far too long" });
  assert.deepEqual(long.issues?.map((i) => i.path), [["text"]]);
  assert.ok((await v.validate([])).issues);
  assert.ok((await v.validate({ type: 1 })).issues);
});

test("contractSchema() supports async schemas and refuses schemas that produce non-objects", async () => {
  const asyncSchema: StandardSchemaV1<unknown, { n: number }> = {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: (v) => Promise.resolve({ value: v as { n: number } }),
    },
  };
  const weird = { "~standard": { version: 1, vendor: "t", validate: () => ({ value: 5 }) } };
  const c = defineContract({
    client: { later: asyncSchema, weird: weird as unknown as StandardSchemaV1<unknown, object> },
    server: {},
  });
  const v = contractSchema(c)["~standard"];
  const r = v.validate({ type: "later", n: 1 });
  assert.ok(r instanceof Promise);
  assert.deepEqual(await r, { value: { type: "later", n: 1 } });
  assert.match((await v.validate({ type: "weird" })).issues?.[0].message ?? "", /must produce/);
});

test("A hub with contractSchema() acks typed requests and refuses invalid or unknown messages", async () => {
  const hub = new Hub<ClientMessage<typeof chat>>({ schema: contractSchema(chat) });
  hub.on("chat.send", (_conn, m) => ({ seq: m.text.length }));
  const c = await connectMemory(hub as unknown as Hub); // connectMemory takes an untyped Hub
  await c.next();
  c.send({ type: "chat.send", room: "a", text: "hey", id: "r1" });
  assert.deepEqual((await c.next()).data, { result: { seq: 3 }, id: "r1" });
  c.send({ type: "chat.send", room: "a", text: "much too long", id: 2 });
  const invalid = await c.next();
  assert.equal(invalid.type, "error");
  assert.equal((invalid.data as { code: string }).code, "INVALID_INPUT");
  assert.equal((invalid.data as { id: number }).id, 2);
  await hub.close();
});

test("typedEmitter() sends through the hub and, with validate, refuses bad data before sending", () => {
  const sent: unknown[][] = [];
  const fakeHub = {
    emit: (...args: unknown[]) => sent.push(["emit", ...args]),
    sendTo: (...args: unknown[]) => (sent.push(["sendTo", ...args]), true),
  };
  const loose = typedEmitter(fakeHub, chat);
  assert.equal(loose.emit("count", 1, { rooms: "a" }), 1);
  assert.equal(loose.sendTo("c1", "chat.message", { room: "a", text: "x" }), true);
  // Without validate, nothing is checked at run time.
  (loose.emit as (t: string, d: unknown) => number)("count", "not a number");
  const strict = typedEmitter(fakeHub, chat, { validate: true });
  assert.throws(
    () => (strict.emit as (t: string, d: unknown) => number)("count", "x"),
    /Cannot emit "count"/,
  );
  assert.throws(
    () =>
      (strict.sendTo as (c: string, t: string, d: unknown) => boolean)("c1", "chat.message", {}),
    /room/,
  );
  assert.throws(
    () => (strict.emit as (t: string, d: unknown) => number)("nope", 1),
    /not a server type/,
  );
  strict.emit("count", 2);
  assert.deepEqual(sent, [
    ["emit", "count", 1, { rooms: "a" }],
    ["sendTo", "c1", "chat.message", { room: "a", text: "x" }],
    ["emit", "count", "not a number", undefined],
    ["emit", "count", 2, undefined],
  ]);
  const asyncOnly = defineContract({
    client: {},
    server: {
      a: {
        "~standard": { version: 1, vendor: "t", validate: (v) => Promise.resolve({ value: v }) },
      },
    },
  });
  assert.throws(
    () => typedEmitter(fakeHub, asyncOnly, { validate: true }).emit("a", 1),
    /asynchronous/,
  );
});
