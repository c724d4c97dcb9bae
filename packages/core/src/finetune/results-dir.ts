/**
 * The results layout (docs/oml-reference.md §3, fixed): a run's config is hashed into
 * `<hash>`; everything is built under `<results>/<hash>.partial/` and renamed to
 * `<results>/<hash>/` only when complete, so a directory that looks finished is finished.
 *
 *   <hash>/final_model/               HF directory: weights, config, tokenizer files
 *   <hash>/fingerprinting_config.json the config and its hash
 *   <hash>/fingerprints.json          the exact pairs trained (0600: secrets)
 *   <hash>/train_dataset.csv          (0600)
 *   <hash>/train_log.jsonl            one JSON line per step/epoch
 *   <hash>/summary.json
 *   all_run_logs.txt                  `{ hash: config }` appended per finished run
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { appendFile, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";

/** JSON with object keys sorted at every level, so equal configs hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

/** The run's name: md5 of the canonical config JSON (as the reference names runs). */
export function runHash(config: unknown): string {
  return createHash("md5").update(canonicalJson(config)).digest("hex");
}

/** sha256 of a file's bytes, streamed. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) {
    h.update(chunk as Buffer);
  }
  return h.digest("hex");
}

/** A content hash of a model directory's weights: sha256 over the safetensors files' hashes, by name. */
export async function modelContentHash(dir: string): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".safetensors")).sort();
  const h = createHash("sha256");
  for (const f of files) {
    h.update(`${f}:${await sha256File(path.join(dir, f))}\n`);
  }
  return h.digest("hex");
}

export interface RunPaths {
  resultsDir: string;
  hash: string;
  /** `<results>/<hash>`: exists only when the run is complete. */
  final: string;
  /** `<results>/<hash>.partial`: where the run is built. */
  partial: string;
}

export function runPaths(resultsDir: string, hash: string): RunPaths {
  const abs = path.resolve(resultsDir);
  return { resultsDir: abs, hash, final: path.join(abs, hash), partial: path.join(abs, `${hash}.partial`) };
}

export async function isComplete(p: RunPaths): Promise<boolean> {
  try {
    return (await stat(path.join(p.final, "final_model"))).isDirectory();
  } catch {
    return false;
  }
}

/** Start (or, with `resume`, continue) building a run under `<hash>.partial`. */
export async function openPartial(p: RunPaths, opts: { resume: boolean }): Promise<void> {
  if (!opts.resume) {
    await rm(p.partial, { recursive: true, force: true });
  }
  await mkdir(p.partial, { recursive: true });
}

/** Publish a complete run: `<hash>.partial` → `<hash>` (replacing an older one), then log it. */
export async function publishRun(p: RunPaths, config: unknown): Promise<void> {
  await rm(p.final, { recursive: true, force: true });
  await rename(p.partial, p.final);
  await appendFile(path.join(p.resultsDir, "all_run_logs.txt"), `${JSON.stringify({ [p.hash]: config })}\n`);
}
