// The history store contract against MemoryHistoryStore: alone, and publishing to a MemoryBus.
import { MemoryBus, MemoryHistoryStore } from "../../mod.ts";
import { historyStoreContract, type Listener } from "../contract/history_store_contract.ts";

historyStoreContract(
  "MemoryHistoryStore",
  () => Promise.resolve({ store: new MemoryHistoryStore(), close: () => Promise.resolve() }),
  { publishes: false },
);

historyStoreContract("MemoryHistoryStore on a MemoryBus", () => {
  const bus = new MemoryBus();
  return Promise.resolve({
    store: new MemoryHistoryStore({ bus }),
    async listen(channel: string): Promise<Listener> {
      const bp = bus.connect();
      const messages: string[] = [];
      await bp.start((ch, payload) => {
        if (ch === channel) messages.push(payload);
      }, () => {});
      await bp.subscribe(channel);
      return { messages, close: () => bp.close() };
    },
    close: () => Promise.resolve(),
  });
}, { publishes: true });
