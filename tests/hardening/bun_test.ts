import { isBun } from "../_harness.ts";
import { startBun } from "../adapters/_servers.ts";
import { hardeningSuite } from "./hardening_suite.ts";

hardeningSuite("hardening (bun adapter)", startBun, { if: isBun });
