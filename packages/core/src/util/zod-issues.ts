/**
 * One-line rendering of zod issues: `[3].response: expected a non-empty string`.
 * Never the raw ZodError.message (it is JSON).
 */
import type { z } from "zod";

/** A JSON path as users read it: `[3].response`, `key`, `(root)`. */
export function formatJsonPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    out += typeof p === "number" ? `[${p}]` : out === "" ? String(p) : `.${String(p)}`;
  }
  return out === "" ? "(root)" : out;
}

/** An option name as the flag users typed: `keyLength` → `--key-length`. */
export function formatFlagPath(path: readonly PropertyKey[]): string {
  const head = String(path[0] ?? "");
  return `--${head.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * The first issue of a zod error as `path: message` (plus a count of the others).
 * `formatPath` defaults to JSON paths; pass `formatFlagPath` for CLI options.
 */
export function formatZodError(err: z.ZodError, formatPath: (p: readonly PropertyKey[]) => string = formatJsonPath): string {
  const [first, ...rest] = err.issues;
  if (!first) {
    return "invalid value";
  }
  const more = rest.length > 0 ? ` (and ${rest.length} more problem${rest.length > 1 ? "s" : ""})` : "";
  return `${formatPath(first.path)}: ${first.message}${more}`;
}
