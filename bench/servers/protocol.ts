// Shared pieces of the bench control protocol for the Bun and Deno target servers.
// See bench/README.md ("Control protocol"). Bench-only: never imported by the library.
import "./_gc.mjs"; // full GC on SIGUSR2, for the idle-memory phase

/** The one room every listening client is put into. */
export const ROOM = "bench";

/** True when the upgrade request is the harness's publisher (control) connection. */
export function isPublisher(url: string): boolean {
  return new URL(url).searchParams.get("role") === "publisher";
}

const decoder = new TextDecoder();

/**
 * Turns a client frame `{"type":"publish","data":X}` into the broadcast envelope
 * `{"type":"bench","data":X,"timestamp":<ms>}` (serialized once per publish).
 * Returns undefined for anything else.
 */
export function envelope(message: string | ArrayBuffer | Uint8Array): string | undefined {
  const text = typeof message === "string"
    ? message
    : decoder.decode(message instanceof ArrayBuffer ? new Uint8Array(message) : message);
  let msg: { type?: unknown; data?: unknown };
  try {
    msg = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (msg === null || typeof msg !== "object" || msg.type !== "publish") return undefined;
  return JSON.stringify({ type: "bench", data: msg.data, timestamp: Date.now() });
}
