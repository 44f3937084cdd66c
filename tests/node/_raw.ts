// A raw TCP client for what the ws package hides: the exact response to an upgrade
// request (status line, headers, body) and whether the server then ends the socket.
import net from "node:net";

/** The server's answer to a hand-written upgrade request. */
export interface RawAnswer {
  /** The status line and headers, lower-cased names: `{ status, headers, body }`. */
  status: number;
  headers: Record<string, string>;
  /** Bytes after the header block that arrived before the server closed (refusals). */
  body: string;
  /** Resolves when the server closed the socket. */
  closed: Promise<void>;
  /** The socket, still open after a 101. */
  socket: net.Socket;
}

/**
 * Send an upgrade request for `url` with `headers` (a valid key and version unless given)
 * and read the answer's head.
 */
export async function rawUpgrade(
  url: string,
  headers: Record<string, string> = {},
  waitForClose = false,
): Promise<RawAnswer> {
  const u = new URL(url);
  const socket = net.connect({ host: u.hostname, port: Number(u.port) });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const all: Record<string, string> = {
    host: u.host,
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": btoa("0123456789abcdef"),
    "sec-websocket-version": "13",
    ...headers,
  };
  socket.write(
    `GET ${u.pathname}${u.search} HTTP/1.1\r\n` +
      Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n",
  );
  let text = "";
  await new Promise<void>((resolve) => {
    const onData = (chunk: Uint8Array) => {
      text += new TextDecoder().decode(chunk);
      if (!waitForClose && text.includes("\r\n\r\n")) {
        socket.off("data", onData);
        resolve();
      }
    };
    socket.on("data", onData);
    socket.once("close", () => resolve());
  });
  const [head, ...rest] = text.split("\r\n\r\n");
  const [statusLine, ...lines] = head.split("\r\n");
  const parsed: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(":");
    if (i > 0) parsed[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return {
    status: Number(statusLine.split(" ")[1]),
    headers: parsed,
    body: rest.join("\r\n\r\n"),
    closed,
    socket,
  };
}
