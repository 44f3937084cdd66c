import { isDeno } from "../_harness.ts";
import { batchContract, transportContract } from "../contract/transport_contract.ts";
import { startDeno } from "./_servers.ts";

transportContract("deno adapter", startDeno, { if: isDeno });
batchContract("deno adapter", startDeno, { if: isDeno });
