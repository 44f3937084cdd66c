// A TCP proxy for liveness tests: forwards to a port until `stall()`, after which the
// connections open then stay open but forward nothing more (as a proxy or load balancer that
// lost a flow's state); connections made later forward again.
import net from "node:net";

/** A TCP proxy to a port; `stall()` keeps the connections open now but forwards nothing more. */
export interface StallingProxy {
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Accepted connections closed since (by either side). */
  readonly closed: number;
  /** Stop forwarding on every connection open now, in both directions (new ones forward). */
  stall(): void;
  close(): Promise<void>;
}

/**
 * Start a proxy to a port on 127.0.0.1.
 * @param port Where to forward.
 * @returns The proxy, listening on a free port.
 */
export async function stallingProxy(port: number): Promise<StallingProxy> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let closed = 0;
  const pairs: { stalled: boolean }[] = [];
  const server = net.createServer((client) => {
    accepted++;
    const state = { stalled: false };
    pairs.push(state);
    const upstream = net.connect({ host: "127.0.0.1", port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
    }
    client.on("data", (d) => void (state.stalled || upstream.write(d)));
    upstream.on("data", (d) => void (state.stalled || client.write(d)));
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      closed++;
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const proxyPort = (server.address() as net.AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${proxyPort}`,
    port: proxyPort,
    get accepted() {
      return accepted;
    },
    get closed() {
      return closed;
    },
    stall: () => {
      for (const p of pairs) p.stalled = true;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
