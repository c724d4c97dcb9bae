/**
 * What the CLIs' bin shims run (packages/<command>/bin/oml-<command>.js): the command's
 * one-file bundle (scripts/bundle.mjs, in core's dist/bundles/) when it is newer than every
 * build it was made from, else the command's dist/cli.js. `pnpm build` bundles after tsc; a
 * later tsc build of core or of the command rewrites its tsconfig.tsbuildinfo and makes the
 * bundle stale, so rebuilt code always runs. Imports only Node built-ins: choosing costs
 * nothing before the chosen module loads.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { corePackageRoot } from "../util/package-root.js";

const mtime = (file: string): number => (existsSync(file) ? statSync(file).mtimeMs : 0);

/** The bundle if it exists and is at least as new as each of `builds`, else `plain`. */
export function chooseBinModule(bundle: string, plain: string, builds: readonly string[]): string {
  return existsSync(bundle) && mtime(bundle) >= Math.max(mtime(plain), ...builds.map(mtime)) ? bundle : plain;
}

/**
 * Run command `name` (e.g. "oml-check") with `argv`.
 * @param plainCli the command's dist/cli.js, which exports `main(argv)`
 */
export async function runBin(name: string, plainCli: URL, argv: string[] = process.argv): Promise<void> {
  const core = corePackageRoot();
  const plain = fileURLToPath(plainCli);
  const commandPackage = path.dirname(path.dirname(plain));
  const chosen = chooseBinModule(path.join(core, "dist", "bundles", `${name}.js`), plain, [path.join(core, "tsconfig.tsbuildinfo"), path.join(commandPackage, "tsconfig.tsbuildinfo")]);
  const mod = (await import(pathToFileURL(chosen).href)) as { main(argv: string[]): Promise<void> };
  await mod.main(argv);
}
