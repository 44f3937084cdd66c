import { isDeno } from "../_harness.ts";
import { startDeno, startHonoDeno } from "../adapters/_servers.ts";
import { securitySuite } from "./security_suite.ts";

securitySuite("security (deno adapter)", startDeno, { if: isDeno });
securitySuite("security (hono on deno)", startHonoDeno, { if: isDeno });
