/**
 * Where a worker thread's code is: its one-file bundle (scripts/bundle-workers.mjs, built by
 * `pnpm build`; starts in ~0.27 s instead of ~0.75 s) when present, else the plain module
 * tsc wrote. From src/ (tests) and dist/ alike: both are two levels below the package root.
 */
import { existsSync } from "node:fs";

export function workerUrl(name: string, module: string): URL {
  const bundle = new URL(`../../dist/${name}.bundle.js`, import.meta.url);
  return existsSync(bundle) ? bundle : new URL(`../../dist/${module}`, import.meta.url);
}
