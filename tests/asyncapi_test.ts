import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import Ajv from "ajv";
import { z } from "zod";
import { Hub } from "../mod.ts";
import { asyncApiDocument } from "../src/asyncapi.ts";
import { test } from "./_harness.ts";

// The official AsyncAPI 3.0.0 JSON Schema (from @asyncapi/specs), with local $refs.
const SPEC = JSON.parse(
  readFileSync(
    new URL("../node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json", import.meta.url),
    "utf8",
  ),
);
// deno-lint-ignore no-explicit-any
const ajv = new (Ajv as any)({ strict: false, allErrors: true, validateFormats: false });
const validateSpec = ajv.compile(SPEC);

function assertValid(doc: unknown): void {
  const ok = validateSpec(doc);
  assert.ok(ok, JSON.stringify(validateSpec.errors?.slice(0, 5), null, 2));
}

/** A hand-written Standard Schema that also implements Standard JSON Schema. */
const sayJson = {
  type: "object",
  properties: {
    type: { const: "say" },
    text: { type: "string", maxLength: 200 },
    to: { $ref: "#/$defs/user" },
  },
  required: ["type", "text"],
  $defs: { user: { type: "string" } },
  $schema: "https://json-schema.org/draft/2020-12/schema",
};
const saySchema = {
  "~standard": {
    version: 1 as const,
    vendor: "test",
    validate: (v: unknown) => ({ value: v as { type: "say"; text: string } }),
    jsonSchema: { input: () => sayJson, output: () => sayJson },
  },
};

function chatHub(): Hub<{ type: "say"; text: string } | { type: "raw" }> {
  const hub = new Hub<{ type: "say"; text: string } | { type: "raw" }>({
    endpoint: { description: "Chat rooms", tags: ["chat", "public"], middleware: ["auth"] },
    onMessage: () => {},
  });
  hub.on("say", () => {}, { schema: saySchema });
  hub.on("raw", () => {});
  return hub;
}

test("asyncApiDocument() is a valid AsyncAPI 3.0.0 document of the hub's channel, messages and operations", async () => {
  const hub = chatHub();
  const doc = asyncApiDocument(hub, {
    title: "Chat",
    version: "1.2.3",
    serverUrl: "wss://chat.example.com/ws",
  });
  assertValid(JSON.parse(JSON.stringify(doc)));
  // The validator does catch mistakes.
  const broken = JSON.parse(JSON.stringify(doc));
  broken.operations["receive.ping"].action = "publish";
  assert.equal(validateSpec(broken), false);
  assert.equal(validateSpec({ asyncapi: "3.0.0", channels: {} }), false, "info is required");
  assert.equal(doc.asyncapi, "3.0.0");
  assert.equal(doc.info.title, "Chat");
  assert.equal(doc.info.version, "1.2.3");
  assert.equal(doc.info.description, "Chat rooms");
  assert.deepEqual(doc.info.tags, [{ name: "chat" }, { name: "public" }]);
  assert.deepEqual(doc.info["x-hubbub-middleware"], ["auth"]);
  assert.deepEqual(doc.info["x-hubbub-subprotocols"], ["hubbub.batch.v1"]);
  assert.equal(
    (doc.info["x-hubbub-limits"] as { maxMessageBytes: number }).maxMessageBytes,
    524288,
  );
  assert.deepEqual(doc.servers, { default: { host: "chat.example.com", protocol: "wss" } });
  assert.deepEqual(Object.keys(doc.channels), ["hub"]);
  const channel = doc.channels.hub;
  assert.equal(channel.address, "/ws");
  assert.deepEqual(channel.servers, [{ $ref: "#/servers/default" }]);

  // Client → server: the hub receives them.
  const receive = Object.entries(doc.operations).filter(([, o]) => o.action === "receive");
  assert.deepEqual(receive.map(([k]) => k).sort(), [
    "receive.any",
    "receive.authenticate",
    "receive.ping",
    "receive.raw",
    "receive.say",
    "receive.subscribe",
    "receive.unsubscribe",
  ]);
  const ping = doc.operations["receive.ping"];
  assert.deepEqual(ping.channel, { $ref: "#/channels/hub" });
  assert.deepEqual(ping.messages, [{ $ref: "#/channels/hub/messages/client.ping" }]);
  assert.deepEqual(ping.reply?.messages, [
    { $ref: "#/channels/hub/messages/server.pong" },
    { $ref: "#/channels/hub/messages/server.error" },
  ]);
  // Server → client: the hub sends them, wrapped in the envelope.
  const send = Object.entries(doc.operations).filter(([, o]) => o.action === "send");
  assert.deepEqual(send.map(([k]) => k).sort(), [
    "send.ack",
    "send.authenticated",
    "send.connection.closed",
    "send.connection.established",
    "send.error",
    "send.pong",
    "send.subscribed",
    "send.unsubscribed",
  ]);
  const established = doc.components.messages["server.connection.established"];
  assert.equal(established.name, "connection.established");
  assert.deepEqual((established.payload as { required: string[] }).required, [
    "type",
    "data",
    "timestamp",
  ]);

  // Every channel message is a component message, and every operation's message is in the channel.
  const channelMessages = channel.messages as Record<string, { $ref: string }>;
  for (const [k, r] of Object.entries(channelMessages)) {
    assert.equal(r.$ref, `#/components/messages/${k}`);
    assert.ok(doc.components.messages[k], k);
  }
  for (const o of Object.values(doc.operations)) {
    for (const m of [...o.messages, ...(o.reply?.messages ?? [])]) {
      assert.ok(channelMessages[m.$ref.replace("#/channels/hub/messages/", "")], m.$ref);
    }
  }

  // The JSON Schema from the Standard Schema, as a component; its refs still resolve.
  const say = doc.components.messages["client.say"];
  assert.deepEqual(say.payload, { $ref: "#/components/schemas/client.say" });
  const saySchemaOut = doc.components.schemas["client.say"] as typeof sayJson;
  assert.equal(saySchemaOut.$schema, undefined);
  assert.deepEqual(saySchemaOut.properties.text, { type: "string", maxLength: 200 });
  assert.deepEqual(saySchemaOut.properties.to, {
    $ref: "#/components/schemas/client.say/$defs/user",
  });
  // Without a JSON Schema: just the type.
  const raw = doc.components.messages["client.raw"].payload as {
    properties: { type: unknown };
  };
  assert.deepEqual(raw.properties.type, { const: "raw" });
  const subscribe = doc.components.messages["client.subscribe"].payload as {
    properties: { room: { maxLength: number } };
    required: string[];
  };
  assert.equal(subscribe.properties.room.maxLength, hub.limits.maxRoomNameLength);
  assert.deepEqual(subscribe.required, ["type", "room"]);
  await hub.close();
});

test("asyncApiDocument() adds the app's server events from schemas, and works without a server URL", async () => {
  const hub = chatHub();
  const doc = asyncApiDocument(hub, {
    title: "Chat",
    version: "1.0.0",
    description: "Override",
    serverEvents: {
      said: z.object({ by: z.string(), text: z.string() }),
      "presence/changed": { type: "object", properties: { users: { type: "array" } } },
      anything: true,
    },
  });
  assertValid(JSON.parse(JSON.stringify(doc)));
  assert.equal(doc.servers, undefined);
  assert.equal(doc.channels.hub.address, "/ws");
  assert.equal(doc.info.description, "Override");
  assert.ok(doc.operations["send.said"]);
  assert.equal(doc.operations["send.said"].action, "send");
  const said = doc.components.messages["server.said"].payload as {
    properties: { type: unknown; data: unknown };
  };
  assert.deepEqual(said.properties.type, { const: "said" });
  assert.deepEqual(said.properties.data, { $ref: "#/components/schemas/server.said.data" });
  const data = doc.components.schemas["server.said.data"] as {
    properties: Record<string, unknown>;
  };
  assert.deepEqual(Object.keys(data.properties).sort(), ["by", "text"]);
  assert.ok(doc.components.messages["server.presence_changed"], "keys are sanitised");
  assert.equal(doc.components.messages["server.presence_changed"].name, "presence/changed");
  assert.deepEqual(doc.components.schemas["server.anything.data"], {});
  assert.throws(
    () => asyncApiDocument(hub, { title: "x", version: "1", serverUrl: "ftp://x/" }),
    TypeError,
  );
  await hub.close();
});
