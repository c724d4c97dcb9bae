/**
 * One-file bundles (scripts/bundle.mjs, core's dist/bundles/) start in a fraction of the time
 * of tsc's module graph, but a later tsc build makes them stale. A bundle is used only when it
 * is at least as new as the module it replaces and every build it was made from
 * (tsconfig.tsbuildinfo, rewritten by each tsc build that emits).
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { corePackageRoot } from "./package-root.js";

const mtime = (file: string): number => (existsSync(file) ? statSync(file).mtimeMs : 0);

/** `bundle` if it exists and no file of `plain` and `builds` is newer, else `plain`. */
export function pickBundle(bundle: string, plain: string, builds: readonly string[]): string {
  return existsSync(bundle) && mtime(bundle) >= Math.max(mtime(plain), ...builds.map(mtime)) ? bundle : plain;
}

/** Core's bundle `name` (dist/bundles/<name>.js) in place of `plain` when fresh; `builds` besides core's own. */
export function coreBundleOr(name: string, plain: string, builds: readonly string[] = []): string {
  const core = corePackageRoot();
  return pickBundle(path.join(core, "dist", "bundles", `${name}.js`), plain, [path.join(core, "tsconfig.tsbuildinfo"), ...builds]);
}
