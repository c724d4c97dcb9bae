#!/usr/bin/env node
// Thin shim: `pnpm build` (run on install) compiles the CLI to dist/ and bundles it into one
// file in @oml-ts/core's dist/bundles/ (scripts/bundle.mjs), which starts ~0.6 s sooner.
// The bundle runs when it is at least as new as dist/cli.js (a later tsc build wins).
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const plain = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const bundle = path.join(path.dirname(createRequire(import.meta.url).resolve("@oml-ts/core/package.json")), "dist", "bundles", "oml-generate.js");
const fresh = existsSync(bundle) && (!existsSync(plain) || statSync(bundle).mtimeMs >= statSync(plain).mtimeMs);
const { main } = await import(pathToFileURL(fresh ? bundle : plain).href);
await main(process.argv);
