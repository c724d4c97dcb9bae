/**
 * Reading JSON with errors that name the file, line and column; writing files atomically.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { FileExistsError, InputError } from "../errors.js";

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split("\n");
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

/** Parse JSON text; a syntax error becomes an InputError naming `file:line:column`. */
export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const m = /at position (\d+)/.exec(msg);
    const offset = m ? Number(m[1]) : text.length;
    const { line, column } = lineColumn(text, offset);
    const what = msg.replace(/\s*in JSON at position \d+.*$/s, "").replace(/\s*\(line \d+ column \d+\)$/, "");
    throw new InputError(`${file}:${line}:${column}: not valid JSON: ${what}`, { code: "INVALID_FILE", hint: "fix the JSON syntax at that position" });
  }
}

/** Read and parse a JSON file; a missing file is an InputError. */
export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new InputError(`${file}: no such file`, { code: "INVALID_FILE", hint: "check the path" });
    }
    if (code === "EISDIR") {
      throw new InputError(`${file}: is a directory, expected a JSON file`, { code: "INVALID_FILE" });
    }
    throw new InputError(`${file}: cannot read: ${(err as Error).message}`, { code: "INVALID_FILE", cause: err });
  }
  return parseJson(text.replace(/^\uFEFF/, ""), file);
}

export async function pathExists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export interface AtomicWriteOptions {
  /** Overwrite an existing file (default: refuse with FileExistsError). */
  force?: boolean;
  /** File mode, e.g. 0o600 for secrets. */
  mode?: number;
}

/**
 * Write `data` to `file` atomically: a temp file in the same directory, fsync, then rename,
 * so a reader never sees half a file and a crash never leaves one where the result belongs.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  if (!opts.force && (await pathExists(file))) {
    throw new FileExistsError(file);
  }
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  const fh = await open(tmp, "w", opts.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
