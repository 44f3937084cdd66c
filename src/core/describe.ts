/**
 * Endpoint metadata and `hub.describe()`: what an endpoint is, which messages
 * it takes, and (where the schema library can produce it) their JSON Schema.
 *
 * @module
 */

import type { HubLimits } from "./limits.ts";

/** Endpoint metadata (the Go hubs' Describe/Tag/Use). */
export interface EndpointInfo {
  /** What the endpoint is for. */
  description?: string;
  /** Free-form tags, e.g. `["chat", "public"]`. */
  tags?: readonly string[];
  /** Names of the middleware in front of it (for documentation). */
  middleware?: readonly string[];
}

/** One client → server message type the hub accepts. */
export interface MessageDescription {
  /** The `type`. */
  readonly type: string;
  /** `"builtin"` (ping, subscribe...), `"handler"` (`hub.on`) or `"catch-all"` (`onMessage`). */
  readonly kind: "builtin" | "handler" | "catch-all";
  /** Whether a schema validates it. */
  readonly validated: boolean;
  /** JSON Schema of the message, when its schema implements Standard JSON Schema. */
  readonly jsonSchema?: Record<string, unknown>;
}

/** What `hub.describe()` returns. */
export interface HubDescription {
  /** Endpoint metadata from `HubOptions.endpoint`. */
  readonly endpoint: EndpointInfo;
  /** Client → server messages. */
  readonly messages: readonly MessageDescription[];
  /** Server → client event types hubbub itself sends. */
  readonly serverEvents: readonly string[];
  /** Subprotocols the hub can select. */
  readonly subprotocols: readonly string[];
  /** Resolved limits. */
  readonly limits: HubLimits;
}

/** A schema that may also implement Standard JSON Schema. */
interface MaybeJsonSchema {
  readonly "~standard": {
    readonly jsonSchema?: {
      readonly input: (options: { target: string }) => Record<string, unknown>;
    };
  };
}

/** The JSON Schema of a schema's input, or `undefined` when it cannot say. */
export function jsonSchemaOf(schema: unknown): Record<string, unknown> | undefined {
  const converter = (schema as MaybeJsonSchema | undefined)?.["~standard"]?.jsonSchema;
  if (converter === undefined) return undefined;
  try {
    return converter.input({ target: "draft-2020-12" });
  } catch {
    return undefined;
  }
}
