/**
 * Where a worker thread's code is: its one-file bundle (scripts/bundle.mjs, built by
 * `pnpm build`; starts in ~0.27 s instead of ~0.75 s) when fresh (util/pick-bundle.ts), else
 * the plain module tsc wrote.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import { corePackageRoot } from "../util/package-root.js";
import { coreBundleOr } from "../util/pick-bundle.js";

export function workerUrl(name: string, module: string): URL {
  return pathToFileURL(coreBundleOr(name, path.join(corePackageRoot(), "dist", module)));
}
