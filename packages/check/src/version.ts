import { createRequire } from "node:module";

/** Set to this package's version by scripts/bundle.mjs in the one-file bundle, where ../package.json is not beside the code. */
declare const OML_PACKAGE_VERSION: string | undefined;

export const version: string = typeof OML_PACKAGE_VERSION === "string" ? OML_PACKAGE_VERSION : (createRequire(import.meta.url)("../package.json") as { version: string }).version;
