/**
 * `oml-generate`'s job: make fingerprints with the chosen strategy and write them
 * atomically. Model-driven strategies (english, perinucleus) need the model engine.
 */
import path from "node:path";
import { InputError, NotImplementedError } from "../errors.js";
import { loadWordList } from "../data/data-files.js";
import { readKeysFile, writeFingerprints } from "../fingerprints/io.js";
import type { Fingerprint } from "../fingerprints/schema.js";
import { silentLogger, type Logger } from "../log.js";
import { randomWordFingerprints } from "../strategies/random-word.js";
import { pathExists } from "../util/json-file.js";
import { createRng } from "../util/rng.js";
import { formatFlagPath, formatZodError } from "../util/zod-issues.js";
import { GenerateOptionsSchema, type GenerateOptions, type GenerateOptionsInput } from "./generate-options.js";

export interface GenerateEvents {
  log?: Logger;
  /** Progress over fingerprints. */
  onProgress?: (e: { phase: string; done: number; total: number }) => void;
}

export interface GenerateResult {
  outputFile: string;
  count: number;
  strategy: GenerateOptions["strategy"];
  seconds: number;
}

/** Validate raw options (throws InputError naming the option). */
export function parseGenerateOptions(input: GenerateOptionsInput): GenerateOptions {
  const parsed = GenerateOptionsSchema.safeParse(input);
  if (!parsed.success) {
    throw new InputError(formatZodError(parsed.error, formatFlagPath));
  }
  return parsed.data;
}

/** Make the fingerprints (no file I/O beyond reading inputs). */
export async function makeFingerprints(opts: GenerateOptions, ev: GenerateEvents = {}): Promise<Fingerprint[]> {
  const log = ev.log ?? silentLogger;
  let keys: string[] | undefined;
  if (opts.keysFile) {
    keys = await readKeysFile(path.resolve(opts.keysFile));
    if (keys.length > opts.numFingerprints) {
      log.info({ keys: keys.length, used: opts.numFingerprints }, `using the first ${opts.numFingerprints} of ${keys.length} keys`);
      keys = keys.slice(0, opts.numFingerprints);
    }
  }
  const rng = createRng(opts.seed);
  switch (opts.strategy) {
    case "random_word": {
      const words = await loadWordList(opts.wordListFile ? path.resolve(opts.wordListFile) : undefined);
      return randomWordFingerprints({
        words,
        numFingerprints: opts.numFingerprints,
        keyLength: opts.keyLength,
        responseLength: opts.responseLength,
        rng,
        keys,
        onProgress: (done, total) => {
          if (done === total || done % 1024 === 0) {
            ev.onProgress?.({ phase: "generate", done, total });
          }
        },
      });
    }
    case "english":
    case "perinucleus":
      throw new NotImplementedError(`strategy ${opts.strategy} needs a language model, which this version of oml-generate cannot run yet`, {
        hint: "use --strategy random_word (or --random-word-generation)",
      });
  }
}

/** Generate and write the fingerprints file. Refuses to overwrite unless `force`. */
export async function generateFingerprints(input: GenerateOptionsInput, ev: GenerateEvents = {}): Promise<GenerateResult> {
  const t0 = performance.now();
  const opts = parseGenerateOptions(input);
  const outputFile = path.resolve(opts.outputFile);
  if (!opts.force && (await pathExists(outputFile))) {
    // Fail before any work, not after minutes of generation.
    throw new InputError(`${outputFile}: already exists`, { code: "FILE_EXISTS", hint: "pass --force to overwrite it, or choose another --output-file" });
  }
  const fps = await makeFingerprints(opts, ev);
  await writeFingerprints(outputFile, fps, { force: opts.force });
  (ev.log ?? silentLogger).info({ outputFile, count: fps.length, strategy: opts.strategy }, `wrote ${fps.length} fingerprints`);
  return { outputFile, count: fps.length, strategy: opts.strategy, seconds: (performance.now() - t0) / 1000 };
}
