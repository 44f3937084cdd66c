#!/usr/bin/env node
// Bundle the hubbub client (src/client/mod.ts) into one browser ES module.
//
//   node scripts/build_client_bundle.mjs <outfile> [--no-minify]
//
// or, from code (Node, Bun or Deno):
//
//   import { buildClientBundle } from "./scripts/build_client_bundle.mjs";
//   await buildClientBundle("public/hubbub-client.js");
//
// The page then does: import { connect } from "/hubbub-client.js";
import { spawn } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Bundle the client for browsers with `bun build` (the npm `bun` devDependency).
 * @param {string} outfile Where to write the bundle (directories are created).
 * @param {{ minify?: boolean }} [options] Minify (default true).
 * @returns {Promise<{ outfile: string, bytes: number }>} The absolute path and size.
 */
export async function buildClientBundle(outfile, options = {}) {
  const out = resolve(outfile);
  mkdirSync(dirname(out), { recursive: true });
  const bun = resolve(root, "node_modules/.bin/bun");
  const args = [
    "build",
    resolve(root, "src/client/mod.ts"),
    "--target=browser",
    "--format=esm",
    `--outfile=${out}`,
  ];
  if (options.minify !== false) args.push("--minify");
  await new Promise((resolveRun, reject) => {
    const child = spawn(bun, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (d) => text += d);
    child.stderr.on("data", (d) => text += d);
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolveRun();
      else reject(new Error(`bun build exited ${code}:\n${text}`));
    });
  });
  return { outfile: out, bytes: statSync(out).size };
}

const invoked = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invoked) {
  const [outfile, flag] = process.argv.slice(2);
  if (!outfile) {
    console.error("usage: node scripts/build_client_bundle.mjs <outfile> [--no-minify]");
    process.exit(2);
  }
  const { outfile: out, bytes } = await buildClientBundle(outfile, {
    minify: flag !== "--no-minify",
  });
  console.log(`wrote ${out} (${bytes} bytes)`);
}
