/**
 * The Standard Schema v1 interface (https://standardschema.dev), which zod,
 * valibot, arktype and others implement. Defined in the protocol layer (the
 * client and the contract use it too); the core re-exports it.
 *
 * @module
 */

export type {
  InferOutput,
  StandardSchemaIssue,
  StandardSchemaProps,
  StandardSchemaResult,
  StandardSchemaV1,
} from "../protocol/standard_schema.ts";
