#!/usr/bin/env node
// Thin shim: the CLI is compiled to dist/ by `pnpm build` (run on install).
import { main } from "../dist/cli.js";
await main(process.argv);
