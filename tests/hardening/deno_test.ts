import { isDeno } from "../_harness.ts";
import { startDeno } from "../adapters/_servers.ts";
import { hardeningSuite } from "./hardening_suite.ts";

hardeningSuite("hardening (deno adapter)", startDeno, { if: isDeno });
