/**
 * Batched framing (`hubbub.batch.v1`): when a client offers the subprotocol
 * and the server selects it, one text frame may carry several envelopes
 * separated by `"\n"` (JSON text never contains a raw newline).
 *
 * @module
 */

export { BATCH_PROTOCOL } from "./envelope.ts";

/**
 * The envelopes in one text frame of a connection that negotiated
 * `hubbub.batch.v1`: the `"\n"`-separated parts, empty ones skipped. A frame
 * without a newline is one envelope (returned as is). Split only the frames of
 * a batched connection: without the subprotocol a frame is always one message.
 *
 * @param frame The text frame.
 * @returns The JSON texts, in order.
 * @example
 * ```ts
 * import { splitBatch } from "./batch.ts";
 * splitBatch('{"type":"a"}\n{"type":"b"}'); // ['{"type":"a"}', '{"type":"b"}']
 * ```
 */
export function splitBatch(frame: string): string[] {
  if (!frame.includes("\n")) return [frame];
  return frame.split("\n").filter((part) => part !== "");
}
