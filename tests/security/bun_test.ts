import { isBun } from "../_harness.ts";
import { startBun, startHonoBun } from "../adapters/_servers.ts";
import { securitySuite } from "./security_suite.ts";

securitySuite("security (bun adapter)", startBun, { if: isBun });
securitySuite("security (hono on bun)", startHonoBun, { if: isBun });
