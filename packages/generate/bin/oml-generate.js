#!/usr/bin/env node
// Thin shim: `pnpm build` (run on install) compiles the command to dist/ and bundles it into one
// file that starts ~0.6 s sooner; runBin picks the bundle unless a later build made it stale.
import { runBin } from "@oml-ts/core/bin-entry";
await runBin("oml-generate", new URL("../dist/cli.js", import.meta.url));
