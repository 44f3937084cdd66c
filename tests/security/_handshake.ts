// Raw HTTP upgrade requests over node:net (Deno and Bun): a handshake with any headers, read
// back as status + headers; and the attack of issue 11: an upgrade request, then a TCP reset.
import type { Socket } from "node:net";

/** The server's answer to an upgrade request. */
export interface Handshake {
  status: number;
  headers: Record<string, string>;
}

function request(url: URL, headers: Record<string, string>): string {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  return `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
    `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
    `Sec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

async function connect(url: URL): Promise<Socket> {
  const net = await import("node:net");
  const socket = net.connect({ host: url.hostname, port: Number(url.port) });
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  return socket;
}

/**
 * Send an upgrade request with these headers and read the response head; then close.
 * @param wsUrl A ws:// URL.
 * @param headers Extra request headers, sent exactly as given.
 */
export async function handshake(
  wsUrl: string,
  headers: Record<string, string> = {},
): Promise<Handshake> {
  const url = new URL(wsUrl);
  const socket = await connect(url);
  try {
    const head = await new Promise<string>((resolve, reject) => {
      let text = "";
      socket.on("data", (chunk: Uint8Array) => {
        text += new TextDecoder().decode(chunk);
        const end = text.indexOf("\r\n\r\n");
        if (end >= 0) resolve(text.slice(0, end));
      });
      socket.once("close", () => reject(new Error(`closed before a response: ${text}`)));
      socket.write(request(url, headers));
    });
    const [statusLine, ...lines] = head.split("\r\n");
    const out: Record<string, string> = {};
    for (const line of lines) {
      const i = line.indexOf(":");
      out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    return { status: Number(statusLine.split(" ")[1]), headers: out };
  } finally {
    await new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
      socket.destroy();
    });
  }
}

/**
 * Send an upgrade request and reset the TCP connection at once (RST, no FIN).
 * @param wsUrl A ws:// URL.
 */
export async function upgradeThenReset(wsUrl: string): Promise<void> {
  const url = new URL(wsUrl);
  const socket = await connect(url);
  await new Promise<void>((resolve) => {
    socket.once("close", () => resolve());
    socket.write(request(url, {}), () => socket.resetAndDestroy());
  });
}
