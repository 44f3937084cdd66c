// A small `ws` client for the security cases: offers subprotocols, splits batched frames
// ("\n"-joined messages) and waits on messages by predicate.
import WebSocket from "ws";
import type { Msg } from "../_ws_client.ts";

/** One connection. */
export class SecClient {
  readonly messages: Msg[] = [];
  closeInfo: { code: number; reason: string } | undefined;
  readonly ws: WebSocket;
  readonly #closed: Promise<void>;
  #wake: (() => void) | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.#closed = new Promise((resolve) =>
      ws.on("close", (code: number, reason: Uint8Array) => {
        this.closeInfo = { code, reason: new TextDecoder().decode(reason) };
        this.#wake?.();
        resolve();
      })
    );
    ws.on("message", (data: Uint8Array) => {
      for (const line of new TextDecoder().decode(data).split("\n")) {
        this.messages.push(JSON.parse(line));
      }
      this.#wake?.();
    });
    ws.on("error", () => {});
  }

  /** Open; rejects with `{ status }` when the upgrade is refused. */
  static connect(url: string, protocols?: string[]): Promise<SecClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols);
      const client = new SecClient(ws);
      ws.once("open", () => resolve(client));
      ws.once("unexpected-response", (_req: unknown, res: { statusCode: number }) => {
        ws.terminate();
        reject(Object.assign(new Error(`refused: ${res.statusCode}`), { status: res.statusCode }));
      });
      ws.once("error", (e: Error) => reject(e));
    });
  }

  send(message: unknown): void {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** The first message (from the start) that `match` accepts; waits up to `ms`. */
  async next(match: (m: Msg) => boolean, ms = 10_000): Promise<Msg> {
    const end = Date.now() + ms;
    let seen = 0;
    while (true) {
      for (; seen < this.messages.length; seen++) {
        if (match(this.messages[seen])) return this.messages[seen];
      }
      if (this.closeInfo) throw new Error(`closed (${this.closeInfo.code}) first`);
      const left = end - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a message");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Close and wait until closed. */
  async shut(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    const timer = setTimeout(() => this.ws.terminate(), 2000);
    await this.#closed;
    clearTimeout(timer);
  }
}
