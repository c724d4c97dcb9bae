/**
 * `oml-generate`'s job: make fingerprints with the chosen strategy and write them
 * atomically. Model-driven strategies (english, perinucleus) run a generation model through
 * an engine (engines/: our tfjs engine, or onnxruntime for ONNX model directories).
 */
import path from "node:path";
import { existsSync } from "node:fs";
import { initBackend } from "../backend.js";
import { loadModelConfig } from "../model/load-model.js";
import { backendForPlan, planMemory } from "../plan/memory-plan.js";
import { InputError } from "../errors.js";
import { loadWordList } from "../data/data-files.js";
import type { CausalLm } from "../engines/causal-lm.js";
import { loadCausalLm } from "../engines/load-causal-lm.js";
import { readFingerprints, readKeysFile, writeFingerprints } from "../fingerprints/io.js";
import type { Fingerprint } from "../fingerprints/schema.js";
import { silentLogger, type Logger } from "../log.js";
import { englishFingerprints, englishTexts, looksInstructTuned } from "../strategies/english.js";
import { checkPerinucleusLengths, perinucleusFingerprints } from "../strategies/perinucleus.js";
import { randomWordFingerprints } from "../strategies/random-word.js";
import { pathExists, readJsonFile } from "../util/json-file.js";
import { createRng, type Rng } from "../util/rng.js";
import { formatFlagPath, formatZodError } from "../util/zod-issues.js";
import { DEFAULT_RESPONSE_LENGTH, GenerateOptionsSchema, type GenerateOptions, type GenerateOptionsInput } from "./generate-options.js";

/** A progress event: `phase` is "generate" (random_word, english), "keys" or "responses" (perinucleus). */
export interface GenerateProgress {
  phase: string;
  done: number;
  total: number;
}

export interface GenerateEvents {
  log?: Logger;
  /** Progress over fingerprints. */
  onProgress?: (e: GenerateProgress) => void;
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

/**
 * The keys of `--keys-file`: a JSON array of strings, or a fingerprints file (its `key`s, e.g.
 * to draw new perinucleus responses for the keys of an existing file).
 */
export async function readKeysOrFingerprintKeys(file: string): Promise<string[]> {
  const json = await readJsonFile(file);
  const isFingerprints = Array.isArray(json) && json.some((e) => typeof e === "object" && e !== null);
  return isFingerprints ? (await readFingerprints(file)).map((fp) => fp.key) : readKeysFile(file);
}

/** The words first tokens are drawn from. */
function wordList(opts: GenerateOptions): Promise<string[]> {
  return loadWordList(opts.wordListFile ? path.resolve(opts.wordListFile) : undefined);
}

/** Open a model with the chosen engine (the tfjs backend is started first). */
async function openModel(idOrPath: string, opts: GenerateOptions, log: Logger): Promise<CausalLm> {
  if (opts.engine === "tfjs") {
    // Plan before loading: too big for wasm's 4 GiB heap → clear error (wasm) or cpu (auto).
    let allowWasm = true;
    let backend = opts.backend;
    if (existsSync(path.join(path.resolve(idOrPath), "config.json"))) {
      const { config } = await loadModelConfig(path.resolve(idOrPath));
      ({ backend, allowWasm } = backendForPlan(opts.backend, planMemory(config, { mode: "infer", batchSize: opts.batchSize, seqLen: Math.min(config.maxPositions, 128) })));
    }
    await initBackend(backend, log, { allowWasm });
  }
  return loadCausalLm(idOrPath, { engine: opts.engine, log });
}

/** english keys/responses sampled from the generation model. */
async function english(opts: GenerateOptions, keys: string[] | undefined, rng: Rng, responseLength: number, ev: GenerateEvents, log: Logger): Promise<Fingerprint[]> {
  const words = await wordList(opts);
  const lm = await openModel(opts.modelUsedForKeyGeneration, opts, log);
  try {
    return await englishFingerprints({
      lm,
      words,
      rng,
      keys,
      numFingerprints: opts.numFingerprints,
      keyLength: opts.keyLength,
      responseLength,
      batchSize: opts.batchSize,
      temperature: opts.temperature,
      firstTokenStrategy: opts.firstTokenStrategy,
      instruct: opts.instruct ?? (opts.useChatTemplate || looksInstructTuned(opts.modelUsedForKeyGeneration)),
      onProgress: (done, total) => ev.onProgress?.({ phase: "generate", done, total }),
    });
  } finally {
    await lm.dispose();
  }
}

/** perinucleus responses for keys from a file, or for english keys sampled first. */
async function perinucleus(opts: GenerateOptions, keys: string[] | undefined, rng: Rng, responseLength: number, ev: GenerateEvents, log: Logger): Promise<Fingerprint[]> {
  const responseModel = opts.perinucleusModel ?? opts.modelUsedForKeyGeneration;
  const lm = await openModel(responseModel, opts, log);
  try {
    checkPerinucleusLengths(lm, opts.keyLength, responseLength);
    if (!keys) {
      const same = responseModel === opts.modelUsedForKeyGeneration;
      const gen = same ? lm : await openModel(opts.modelUsedForKeyGeneration, opts, log);
      try {
        const total = opts.numFingerprints;
        const params = {
          lm: gen,
          words: await wordList(opts),
          rng,
          newTokens: opts.keyLength,
          batchSize: opts.batchSize,
          temperature: opts.temperature,
          firstTokenStrategy: opts.firstTokenStrategy,
          instruct: opts.instruct ?? (opts.useChatTemplate || looksInstructTuned(opts.modelUsedForKeyGeneration)),
        };
        keys = [];
        for (let s = 0; s < total; s += opts.batchSize) {
          keys.push(...(await englishTexts(params, Math.min(opts.batchSize, total - s), "--key-length")));
          ev.onProgress?.({ phase: "keys", done: keys.length, total });
        }
      } finally {
        if (!same) {
          await gen.dispose();
        }
      }
    }
    return await perinucleusFingerprints({
      lm,
      keys,
      rng,
      keyLength: opts.keyLength,
      responseLength,
      numResponses: opts.numResponsesPerFingerprint,
      t: opts.nucleusT,
      k: opts.nucleusK,
      batchSize: opts.batchSize,
      onProgress: (done, total) => ev.onProgress?.({ phase: "responses", done, total }),
    });
  } finally {
    await lm.dispose();
  }
}

/** Make the fingerprints (no file I/O beyond reading inputs). */
export async function makeFingerprints(opts: GenerateOptions, ev: GenerateEvents = {}): Promise<Fingerprint[]> {
  const log = ev.log ?? silentLogger;
  const responseLength = opts.responseLength ?? DEFAULT_RESPONSE_LENGTH[opts.strategy];
  if (opts.numResponsesPerFingerprint > 1 && opts.strategy !== "perinucleus") {
    throw new InputError(`--num-responses-per-fingerprint ${opts.numResponsesPerFingerprint}: only --strategy perinucleus draws several responses per key`, {
      hint: "drop the flag, or use --strategy perinucleus",
    });
  }
  let keys: string[] | undefined;
  if (opts.keysFile) {
    keys = await readKeysOrFingerprintKeys(path.resolve(opts.keysFile));
    if (keys.length > opts.numFingerprints) {
      log.info({ keys: keys.length, used: opts.numFingerprints }, `using the first ${opts.numFingerprints} of ${keys.length} keys`);
      keys = keys.slice(0, opts.numFingerprints);
    }
  }
  const rng = createRng(opts.seed);
  switch (opts.strategy) {
    case "random_word": {
      const words = await wordList(opts);
      return randomWordFingerprints({
        words,
        numFingerprints: opts.numFingerprints,
        keyLength: opts.keyLength,
        responseLength,
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
      return english(opts, keys, rng, responseLength, ev, log);
    case "perinucleus":
      return perinucleus(opts, keys, rng, responseLength, ev, log);
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
  const duplicates = fps.length - new Set(fps.map((fp) => fp.key)).size;
  if (duplicates > 0) {
    // e.g. a small model sampled from BOS (--first-token-strategy "") repeats its favourite opening
    (ev.log ?? silentLogger).warn({ duplicates }, `${duplicates} of ${fps.length} keys are duplicates of another key: fine-tuning cannot tell them apart`);
  }
  await writeFingerprints(outputFile, fps, { force: opts.force });
  (ev.log ?? silentLogger).info({ outputFile, count: fps.length, strategy: opts.strategy }, `wrote ${fps.length} fingerprints`);
  return { outputFile, count: fps.length, strategy: opts.strategy, seconds: (performance.now() - t0) / 1000 };
}
