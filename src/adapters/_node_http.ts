// Node's http.IncomingMessage as a WHATWG Request (for hub.upgrade), and a WHATWG Response
// written back on a raw upgrade socket or through an http.ServerResponse.
import type { NodeNetSocketLike } from "./_node_socket.ts";

/** The parts of Node's `http.IncomingMessage` this adapter uses. */
export interface NodeRequestLike {
  /** The request target (`/ws?user=ada`). */
  readonly url?: string;
  /** The request method. */
  readonly method?: string;
  /** Header names and values, alternating, as received. */
  readonly rawHeaders: string[];
  /** Headers by lower-case name. */
  readonly headers: { readonly host?: string };
  /** The connection's socket (a `tls.TLSSocket`, with `encrypted: true`, on `node:https`). */
  readonly socket: unknown;
}

/** The parts of Node's `http.ServerResponse` this adapter uses. */
export interface NodeResponseLike {
  /** Send the status line and headers. */
  writeHead(status: number, headers: Record<string, string>): unknown;
  /** Send the body and finish. */
  end(body: string): unknown;
  /** Drop the connection. */
  destroy(): unknown;
}

// A host name, IPv4, or bracketed IPv6, with an optional port: nothing that could move the
// authority of the URL built from it (no "/", "@", "?" or "#").
const HOST = /^(?:[A-Za-z0-9._~%!$&'()*+,;=-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The request the hub decides on: `http:` (or `https:` on TLS) + the `Host` header + the
 * request target, with every header as received.
 * @returns `undefined` for a request no URL can be built from (bad target or Host).
 */
export function nodeRequest(
  req: NodeRequestLike,
  socket: unknown,
): Request | undefined {
  const target = req.url ?? "/";
  // Origin-form only: an absolute or "//"-prefixed target would replace the Host the hub
  // compares an Origin with.
  if (!target.startsWith("/") || target.startsWith("//")) return undefined;
  const host = req.headers.host ?? "localhost";
  if (!HOST.test(host)) return undefined;
  const scheme = isEncrypted(socket) || isEncrypted(req.socket) ? "https" : "http";
  try {
    const headers = new Headers();
    const raw = req.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
    return new Request(`${scheme}://${host}${target}`, { method: req.method ?? "GET", headers });
  } catch {
    return undefined;
  }
}

function isEncrypted(socket: unknown): boolean {
  return (socket as { encrypted?: unknown } | null)?.encrypted === true;
}

// Reason phrases for the statuses the hub answers with.
const REASONS: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  426: "Upgrade Required",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

function utf8Length(s: string): number {
  return new TextEncoder().encode(s).byteLength;
}

/**
 * Answer an upgrade with `response` as plain HTTP/1.1 on its raw socket, then destroy the
 * socket once the answer is written.
 */
export async function writeRawResponse(
  socket: NodeNetSocketLike,
  response: Response,
): Promise<void> {
  const body = await response.text();
  if (socket.destroyed) return;
  let head = `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? "Error"}\r\n`;
  response.headers.forEach((value, name) => {
    if (name !== "connection" && name !== "content-length") head += `${name}: ${value}\r\n`;
  });
  head += `connection: close\r\ncontent-length: ${utf8Length(body)}\r\n\r\n`;
  socket.once("finish", () => socket.destroy());
  socket.end(head + body);
}

/** Answer a plain request with `response` through Node's `ServerResponse`. */
export async function writeNodeResponse(res: NodeResponseLike, response: Response): Promise<void> {
  const body = await response.text();
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => headers[name] = value);
  headers["content-length"] = String(utf8Length(body));
  res.writeHead(response.status, headers);
  res.end(body);
}
