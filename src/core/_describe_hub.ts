// hub.describe(): the endpoint's messages (built-ins, handlers with their JSON Schema where the
// schema library provides one), events, subprotocols and limits, from what the hub has.
import {
  type EndpointInfo,
  type HubDescription,
  jsonSchemaOf,
  type MessageDescription,
} from "./describe.ts";
import type { HubLimits } from "./limits.ts";
import { BATCH_PROTOCOL, BUILTIN_TYPES, ServerEvent } from "../protocol/envelope.ts";

/** What {@linkcode describeHub} reads from a hub. */
export interface DescribedHub {
  /** Handlers by type (`hub.on()`), each with its own schema if any. */
  handlers: ReadonlyMap<string, { schema: unknown }>;
  /** The hub's `schema`. */
  schema: unknown;
  /** Whether `onMessage` is set. */
  catchAll: boolean;
  /** The hub's `endpoint` option. */
  endpoint: EndpointInfo | undefined;
  /** Whether batched framing is accepted. */
  batchFraming: boolean;
  /** The hub's limits. */
  limits: HubLimits;
}

/**
 * Build `hub.describe()`'s answer.
 * @param hub What the hub has.
 * @returns The description.
 */
export function describeHub(hub: DescribedHub): HubDescription {
  const messages: MessageDescription[] = [...BUILTIN_TYPES].map((type) => ({
    type,
    kind: "builtin" as const,
    validated: true,
  }));
  for (const [type, h] of hub.handlers) {
    const schema = h.schema ?? hub.schema;
    const jsonSchema = jsonSchemaOf(schema);
    messages.push({
      type,
      kind: "handler",
      validated: schema !== undefined,
      ...(jsonSchema ? { jsonSchema } : {}),
    });
  }
  if (hub.catchAll) {
    const jsonSchema = jsonSchemaOf(hub.schema);
    messages.push({
      type: "*",
      kind: "catch-all",
      validated: hub.schema !== undefined,
      ...(jsonSchema ? { jsonSchema } : {}),
    });
  }
  const e = hub.endpoint ?? {};
  return {
    endpoint: {
      ...(e.description !== undefined ? { description: e.description } : {}),
      tags: [...e.tags ?? []],
      middleware: [...e.middleware ?? []],
    },
    messages,
    serverEvents: Object.values(ServerEvent),
    subprotocols: hub.batchFraming ? [BATCH_PROTOCOL] : [],
    limits: hub.limits,
  };
}
