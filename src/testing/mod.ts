/**
 * Test helpers: an in-memory transport pair with controllable backpressure,
 * and a manual clock, so hub logic can be tested without sockets or waiting.
 *
 * @module
 */

export * from "./memory.ts";
export * from "./manual_clock.ts";
