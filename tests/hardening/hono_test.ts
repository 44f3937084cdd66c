// The hardening suite on Hono, on Deno and on Bun (a light run: the full one runs on each
// runtime's own adapter), for what Hono changes: its socket events, and Bun backpressure.
import { isBun, isDeno } from "../_harness.ts";
import { startHonoBun, startHonoDeno } from "../adapters/_servers.ts";
import { hardeningSuite } from "./hardening_suite.ts";

hardeningSuite("hardening (hono on deno)", startHonoDeno, { if: isDeno, light: true });
hardeningSuite("hardening (hono on bun)", startHonoBun, { if: isBun, light: true });
