/**
 * The Standard Schema v1 interface (https://standardschema.dev), which zod,
 * valibot, arktype and others implement. It is written out here, as the spec
 * invites, so neither the server nor the client has a dependency; a type test
 * checks that the official `@standard-schema/spec` types are assignable to it.
 * Part of the wire protocol's ground floor: the contract, the core and the client
 * all take these types from here.
 *
 * @module
 */

/** A schema that validates `unknown` input into `Output`. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly "~standard": StandardSchemaProps<Input, Output>;
}

/** The `~standard` property of a {@linkcode StandardSchemaV1}. */
export interface StandardSchemaProps<Input = unknown, Output = Input> {
  /** The version of the spec (1). */
  readonly version: 1;
  /** The library that made the schema. */
  readonly vendor: string;
  /** Validate a value: a result, or a promise of one. */
  readonly validate: (
    value: unknown,
  ) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
  /** Inferred types (for type inference only). */
  readonly types?: { readonly input: Input; readonly output: Output } | undefined;
}

/** The result of validation: a value, or issues. */
export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardSchemaIssue> };

/** One validation problem. */
export interface StandardSchemaIssue {
  /** What is wrong. */
  readonly message: string;
  /** Where: keys, or segments with a `key`. */
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** The output type of a schema. */
export type InferOutput<S extends StandardSchemaV1> = NonNullable<
  S["~standard"]["types"]
>["output"];
