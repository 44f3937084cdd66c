// The presence store contract against MemoryPresenceStore, on a manual clock.
import { MemoryPresenceStore } from "../../mod.ts";
import { presenceStoreContract } from "../contract/presence_store_contract.ts";

presenceStoreContract("MemoryPresenceStore", () => {
  let now = 1_700_000_000_000;
  const store = new MemoryPresenceStore({ now: () => now });
  return Promise.resolve({
    store,
    ttlMs: 1000,
    advance: (ms: number) => {
      now += ms;
      return Promise.resolve();
    },
    lose: () => Promise.resolve(store.clear()),
    close: () => Promise.resolve(),
  });
});
