/**
 * Reading and writing fingerprint files. Errors name the file and the JSON path:
 * `fp.json: [3].response: expected a non-empty string` (exit code 2).
 */
import type { z } from "zod";
import { InputError } from "../errors.js";
import { readJsonFile, writeFileAtomic } from "../util/json-file.js";
import { formatZodError } from "../util/zod-issues.js";
import { FingerprintFileSchema, KeysFileSchema, type Fingerprint } from "./schema.js";

async function readValidated<T>(file: string, schema: z.ZodType<T>, hint: string): Promise<T> {
  const json = await readJsonFile(file);
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new InputError(`${file}: ${formatZodError(parsed.error)}`, { code: "INVALID_FILE", hint });
  }
  return parsed.data;
}

/** Read a fingerprints file (the reference's format; extra fields are kept). */
export function readFingerprints(file: string): Promise<Fingerprint[]> {
  return readValidated(file, FingerprintFileSchema, "regenerate it with `oml-generate`, or fix that entry");
}

/** Read a custom keys file: a JSON array of strings. */
export function readKeysFile(file: string): Promise<string[]> {
  return readValidated(file, KeysFileSchema, 'a keys file is a JSON array of strings, e.g. ["first key", "second key"]');
}

export interface WriteFingerprintsOptions {
  /** Overwrite an existing file (the reference asks y/n on stdin; we refuse instead). */
  force?: boolean;
  /** File mode; fingerprints are secrets, so 0o600 by default. */
  mode?: number;
}

/**
 * Write fingerprints atomically, 4-space indented like the reference's `json.dump(..., indent=4)`.
 * Unknown fields of each entry are written back unchanged.
 */
export async function writeFingerprints(file: string, fingerprints: readonly Fingerprint[], opts: WriteFingerprintsOptions = {}): Promise<void> {
  const text = `${JSON.stringify(fingerprints, null, 4)}\n`;
  await writeFileAtomic(file, text, { force: opts.force, mode: opts.mode ?? 0o600 });
}
