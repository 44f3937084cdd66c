// A real WebSocket client for adapter tests (the `ws` package runs on Deno, Bun and Node),
// with header control, pausing (real TCP backpressure) and awaitable messages.
import WebSocket from "ws";

/** A decoded server message. */
export interface Msg {
  type: string;
  data: unknown;
  timestamp: number;
}

/** Options for {@linkcode TestClient.connect}. */
export interface ClientOptions {
  headers?: Record<string, string>;
  /** Answer protocol pings (default true). */
  autoPong?: boolean;
}

/** A test client over a real socket. */
export class TestClient {
  readonly messages: Msg[] = [];
  readonly binary: Uint8Array[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  closeInfo: { code: number; reason: string } | undefined;
  #cursor = 0;
  #waiters: (() => void)[] = [];
  readonly ws: WebSocket;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.on("close", (code: number, reason: Uint8Array) => {
        this.closeInfo = { code, reason: new TextDecoder().decode(reason) };
        resolve(this.closeInfo);
        this.#wake();
      });
    });
    ws.on("message", (data: Uint8Array, isBinary: boolean) => {
      if (isBinary) this.binary.push(new Uint8Array(data));
      else this.messages.push(JSON.parse(new TextDecoder().decode(data)));
      this.#wake();
    });
    ws.on("error", () => {});
  }

  /** Open a connection; rejects with `{ status }` when the upgrade is refused. */
  static connect(url: string, options: ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        headers: options.headers,
        autoPong: options.autoPong ?? true,
      });
      const client = new TestClient(ws);
      ws.once("open", () => resolve(client));
      ws.once(
        "unexpected-response",
        (
          _req: unknown,
          res: { statusCode: number; resume(): void; on(e: string, f: () => void): void },
        ) => {
          res.on("end", () => {
            ws.terminate();
            reject(
              Object.assign(new Error(`upgrade refused: ${res.statusCode}`), {
                status: res.statusCode,
              }),
            );
          });
          res.resume();
        },
      );
      ws.once("error", (e: Error) => reject(e));
    });
  }

  /** Connect and return the HTTP status: 101 when upgraded (and closes again), else the refusal's status. */
  static async status(url: string, options: ClientOptions = {}): Promise<number> {
    try {
      const c = await TestClient.connect(url, options);
      await c.shut();
      return 101;
    } catch (e) {
      const status = (e as { status?: number }).status;
      if (status === undefined) throw e;
      return status;
    }
  }

  /** Wait for the next unread message, optionally of one type (skipping others). */
  async next(type?: string, ms = 10_000): Promise<Msg> {
    const end = Date.now() + ms;
    while (true) {
      while (this.#cursor < this.messages.length) {
        const m = this.messages[this.#cursor++];
        if (type === undefined || m.type === type) return m;
      }
      if (this.closeInfo) {
        throw new Error(`closed (${this.closeInfo.code}) before ${type ?? "a message"}`);
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${type ?? "a message"}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, end - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The client id from connection.established. */
  async clientId(): Promise<string> {
    const hello = this.messages.find((m) => m.type === "connection.established") ??
      await this.next("connection.established");
    return (hello.data as { clientId: string }).clientId;
  }

  send(message: unknown): void {
    this.ws.send(
      typeof message === "string" || message instanceof Uint8Array
        ? message
        : JSON.stringify(message),
    );
  }

  /** Send, then wait for the next message of `replyType`. */
  async request(message: unknown, replyType?: string): Promise<Msg> {
    this.send(message);
    return await this.next(replyType);
  }

  /** Stop reading from the TCP socket, so the server's writes back up for real. */
  pause(): void {
    // deno-lint-ignore no-explicit-any
    (this.ws as any)._socket.pause();
  }

  resume(): void {
    // deno-lint-ignore no-explicit-any
    (this.ws as any)._socket.resume();
  }

  /** Close (if open) and wait until the socket is closed. */
  async shut(code = 1000): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code);
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    const timeout = setTimeout(() => this.ws.terminate(), 2000);
    await this.closed;
    clearTimeout(timeout);
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

/**
 * A WebSocket client over a raw TCP socket that completes the handshake and
 * then reads nothing, so the server's writes back up for real (on Bun, the
 * `ws` package is Bun's own and cannot pause its socket).
 */
export async function openStalledSocket(
  url: string,
): Promise<{ closed: Promise<void>; destroy(): Promise<void> }> {
  const net = await import("node:net");
  const u = new URL(url);
  const socket = net.connect({ host: u.hostname, port: Number(u.port) });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  socket.write(
    `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await new Promise<void>((resolve, reject) => {
    let head = "";
    const onData = (chunk: Uint8Array) => {
      head += new TextDecoder().decode(chunk);
      if (!head.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      socket.pause();
      if (head.startsWith("HTTP/1.1 101")) resolve();
      else reject(new Error(`upgrade refused: ${head.split("\r\n")[0]}`));
    };
    socket.on("data", onData);
  });
  return {
    closed,
    destroy: async () => {
      socket.destroy();
      await closed;
    },
  };
}
