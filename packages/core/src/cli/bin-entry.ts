/**
 * What the CLIs' bin shims run (packages/<command>/bin/oml-<command>.js): the command's
 * one-file bundle when it is fresh (util/pick-bundle.ts: no later tsc build of core or of the
 * command), else the command's dist/cli.js. Imports only Node built-ins: choosing costs
 * nothing before the chosen module loads.
 */
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { coreBundleOr } from "../util/pick-bundle.js";

/**
 * Run command `name` (e.g. "oml-check") with `argv`.
 * @param plainCli the command's dist/cli.js, which exports `main(argv)`
 */
export async function runBin(name: string, plainCli: URL, argv: string[] = process.argv): Promise<void> {
  const plain = fileURLToPath(plainCli);
  const chosen = coreBundleOr(name, plain, [path.join(path.dirname(path.dirname(plain)), "tsconfig.tsbuildinfo")]);
  const mod = (await import(pathToFileURL(chosen).href)) as { main(argv: string[]): Promise<void> };
  await mod.main(argv);
}
