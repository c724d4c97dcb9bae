/**
 * The @oml-ts/core package directory, for the files it ships beside its code: vendor/ (tfjs
 * gradients), dist/ (worker modules and one-file bundles), the repository's generated_data/,
 * and the place its own dependencies resolve from. Found by walking up from this module to the
 * package.json named @oml-ts/core, so it is the same from src/ (tests), dist/ (tsc's output)
 * and dist/bundles/ (scripts/bundle.mjs: core bundled with a CLI or a worker), at any depth.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const NAME = "@oml-ts/core";
let root: string | undefined;

export function corePackageRoot(): string {
  if (root !== undefined) {
    return root;
  }
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = path.dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: unknown }).name === NAME) {
        root = dir;
        return dir;
      }
    } catch {
      // no package.json here (or not JSON): keep walking up
    }
    if (path.dirname(dir) === dir) {
      throw new Error(`${NAME}: no package.json named ${NAME} above ${start}`);
    }
  }
}
