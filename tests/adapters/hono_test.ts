import { isBun, isDeno } from "../_harness.ts";
import { batchContract, transportContract } from "../contract/transport_contract.ts";
import { startHonoBun, startHonoDeno } from "./_servers.ts";

transportContract("hono on deno", startHonoDeno, { if: isDeno });
transportContract("hono on bun", startHonoBun, { if: isBun });
batchContract("hono on deno", startHonoDeno, { if: isDeno });
batchContract("hono on bun", startHonoBun, { if: isBun });
