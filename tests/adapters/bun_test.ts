import { isBun } from "../_harness.ts";
import { batchContract, transportContract } from "../contract/transport_contract.ts";
import { startBun } from "./_servers.ts";

transportContract("bun adapter", startBun, { if: isBun });
batchContract("bun adapter", startBun, { if: isBun });
