// The bench app on hubbub: listeners join room "bench"; the publisher's
// {"type":"publish","data":X} becomes one emit to the room. Shared by the hubbub targets.
import { Hub } from "../../mod.ts";
import { isPublisher, ROOM } from "./protocol.ts";

/** A hub wired for the bench control protocol. */
export function benchHub(): Hub {
  const hub: Hub = new Hub({
    maxConnections: 50_000,
    // The harness's publisher sends thousands of frames/s (and 3 MB/s in the slow-client case);
    // no other target limits inbound traffic, so the default per-connection limit is off here.
    rateLimit: false,
    onConnect: (conn) => {
      if (!isPublisher(conn.request.url)) conn.join(ROOM);
    },
    onMessage: (_conn, msg) => {
      if (msg.type === "publish") hub.emit("bench", msg.data, { rooms: ROOM });
    },
  });
  return hub;
}
