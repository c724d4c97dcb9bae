/**
 * `oml-check`'s job: resolve what to check (a run directory's own config and fingerprints,
 * or flags), measure every fingerprint under every template, and optionally test ownership.
 * Returns a result object; the CLI renders it.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend, type BackendName } from "../backend.js";
import { DEFAULT_AUGMENTATION_PROMPTS, loadAugmentationPrompts, loadWordList } from "../data/data-files.js";
import { InputError } from "../errors.js";
import { readFingerprints } from "../fingerprints/io.js";
import type { Fingerprint } from "../fingerprints/schema.js";
import { canonicalStrategy } from "../finetune/run-finetune.js";
import { resolveModelDir } from "../hub/index.js";
import { silentLogger, type Logger } from "../log.js";
import { forward } from "../model/forward.js";
import { generate } from "../model/generate.js";
import { disposeModel, loadModel, loadModelConfig, type Model } from "../model/load-model.js";
import type { ModelConfig } from "../model/config.js";
import { backendForPlan, countParameters, planMemory } from "../plan/memory-plan.js";
import { loadTokenizer } from "../tokenizer/load-tokenizer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { buildFingerprintExamples, DEFAULT_CHECK_TEMPLATES, type FingerprintExample, type FingerprintStrategy, type PromptMode } from "../train/data.js";
import { pathExists } from "../util/json-file.js";
import { createRng } from "../util/rng.js";
import { checkFingerprints, type TemplateResult } from "./check-fingerprints.js";
import { checkWorkers, startGenerateWorkers } from "./generate-workers.js";
import { drawIndices, nullRate, verdict, type NullRateSource, type Verdict } from "./verify.js";

export interface RunCheckOptions {
  modelPath: string;
  fingerprintsFilePath?: string;
  numFingerprints?: number;
  maxKeyLength?: number;
  maxResponseLength?: number;
  fingerprintGenerationStrategy?: string;
  keepEosInResponse?: boolean;
  useChatTemplate?: boolean;
  useAugmentationPrompts?: boolean;
  samplingTemperature?: number;
  seed?: number;
  batchSize?: number;
  /** generation worker threads besides the main thread (generate-workers.ts); default "auto" */
  workers?: number | "auto";
  backend?: BackendName;
  verboseEval?: boolean;
  verify?: boolean;
  numQueries?: number;
  nullRate?: number;
  nucleusK?: number;
  baseModel?: string;
  alpha?: number;
  /** option names the user typed (they win over a run's config, with a warning on conflict) */
  explicit?: ReadonlySet<string>;
}

export interface FailureDetail {
  index: number;
  template: string;
  key: string;
  expected: string;
  generated: string;
  /** the model's top next tokens at the first response position */
  top: { token: string; id: number; prob: number }[];
}

export interface CheckReport {
  success_rate: number;
  fractional_success_rate: number;
  num_fingerprints: number;
  matches: number;
  templates: { template: string; success_rate: number; fractional_success_rate: number; matches: number }[];
  model: string;
  fingerprints_file: string;
  backend: string;
  /** generation worker threads besides the main thread */
  workers: number;
  seconds: number;
  run?: { hash: string; dir: string };
  failures?: FailureDetail[];
  verify?: Verdict & { keys: number[] };
}

interface RunConfig {
  hash: string;
  config: Record<string, unknown>;
}

/** `…/results/<hash>/final_model` → the run's config, if there is one beside it. */
async function readRunConfig(modelDir: string): Promise<RunConfig | null> {
  const file = path.join(path.dirname(modelDir), "fingerprinting_config.json");
  if (path.basename(modelDir) !== "final_model" || !(await pathExists(file))) {
    return null;
  }
  return JSON.parse(await readFile(file, "utf8")) as RunConfig;
}

/** Our run files carry the exact ids trained; use them instead of re-tokenising. */
function examplesFromRunFile(fps: readonly Fingerprint[]): FingerprintExample[] | null {
  const out: FingerprintExample[] = [];
  for (const [i, fp] of fps.entries()) {
    const keyIds = fp.key_ids;
    const responseIds = fp.response_ids;
    if (!Array.isArray(keyIds) || !Array.isArray(responseIds) || typeof fp.response !== "string") {
      return null;
    }
    out.push({ index: typeof fp.source_index === "number" ? fp.source_index : i, key: fp.key, keyIds: keyIds as number[], response: fp.response, responseIds: responseIds as number[] });
  }
  return out;
}

async function topNext(model: Model, tok: Tokenizer, prompt: number[], k: number): Promise<FailureDetail["top"]> {
  const probs = tf.tidy(() => {
    const logits = forward(model, tf.tensor2d([prompt], [1, prompt.length], "int32"), { lastOnly: true });
    return tf.softmax(tf.reshape(logits, [-1]));
  });
  const p = (await probs.data()) as Float32Array;
  probs.dispose();
  const ids = Array.from(p.keys()).sort((a, b) => (p[b] as number) - (p[a] as number)).slice(0, k);
  return ids.map((id) => ({ id, token: tok.decode([id]), prob: p[id] as number }));
}

/** Activations a default check batch may plan for. */
const DEFAULT_BATCH_BUDGET_BYTES = 512 * 1024 ** 2;

/**
 * `--batch-size` when not given: the largest of 256, 128 and 64 prompts whose inference plan
 * (memory-plan.ts, 128-token rows) keeps the activations within 512 MiB, else 64. Bigger
 * batches run the GEMMs faster (stories260K, 2048 prompts: 256 took 0.76–1.11 s where 64 took
 * 0.93–1.34 s); big models keep 64.
 */
export function defaultCheckBatchSize(config: ModelConfig): number {
  const seqLen = Math.min(config.maxPositions, 128);
  const fits = (b: number): boolean => planMemory(config, { mode: "infer", batchSize: b, seqLen }).bytes.activations <= DEFAULT_BATCH_BUDGET_BYTES;
  return [256, 128].find(fits) ?? 64;
}

/** Check a model; `log` receives warnings (e.g. a flag contradicting the run's config). */
export async function runCheck(o: RunCheckOptions, hooks: { log?: Logger; onProgress?: (done: number, total: number) => void } = {}): Promise<CheckReport> {
  const t0 = performance.now();
  const log = hooks.log ?? silentLogger;
  const explicit = o.explicit ?? new Set<string>();
  const modelDir = await resolveModelDir(o.modelPath, { log });
  const run = await readRunConfig(modelDir);

  // Settings: explicit flags > the run's config > the reference's defaults.
  const fromRun = (key: string): unknown => run?.config[key];
  function pick<T>(name: keyof RunCheckOptions, runKey: string, fallback: T): T {
    const flag = o[name] as T | undefined;
    const r = fromRun(runKey) as T | undefined;
    if (explicit.has(name) && flag !== undefined) {
      if (r !== undefined && r !== flag) {
        log.warn({ option: name, flag, run: r }, `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${String(flag)} contradicts the run's ${String(r)}; using the flag`);
      }
      return flag;
    }
    return r ?? flag ?? fallback;
  }
  const fpFile = path.resolve(
    explicit.has("fingerprintsFilePath") && o.fingerprintsFilePath ? o.fingerprintsFilePath : run ? path.join(path.dirname(modelDir), "fingerprints.json") : (o.fingerprintsFilePath ?? ""),
  );
  if (!run && !o.fingerprintsFilePath) {
    throw new InputError("--fingerprints-file-path is required unless --model-path is a run's results/<hash>/final_model", {
      hint: "pass the fingerprints file the model was trained on",
    });
  }
  const strategy: FingerprintStrategy = canonicalStrategy(pick("fingerprintGenerationStrategy", "fingerprint_generation_strategy", "english"));
  const maxKeyLength = pick("maxKeyLength", "max_key_length", 16);
  const maxResponseLength = pick("maxResponseLength", "max_response_length", 1);
  const keepEos = pick("keepEosInResponse", "keep_eos_in_response", false);
  const useChat = pick("useChatTemplate", "use_chat_template", false);
  const seed = o.seed ?? 42;

  const { config } = await loadModelConfig(modelDir);
  const batchSize = o.batchSize ?? defaultCheckBatchSize(config);
  const plan = planMemory(config, { mode: "infer", batchSize, seqLen: Math.min(config.maxPositions, 128) });
  const choice = backendForPlan(o.backend ?? "auto", plan);
  const backend = await initBackend(choice.backend, log, { allowWasm: choice.allowWasm });
  const tok = await loadTokenizer(modelDir);
  const fps = await readFingerprints(fpFile);
  const fromRunFile = run !== null && !explicit.has("fingerprintsFilePath");
  const modes: PromptMode[] = useChat
    ? [{ kind: "chat" }]
    : (o.useAugmentationPrompts ? await loadAugmentationPrompts(DEFAULT_AUGMENTATION_PROMPTS.test) : [...DEFAULT_CHECK_TEMPLATES]).map((template) => ({ kind: "template", template }));
  const padId = tok.padId ?? tok.eosId ?? 0;
  // Workers start before the keys are tokenized: they load their replicas meanwhile.
  const expected = Math.min(fps.length, explicit.has("numFingerprints") || !fromRunFile ? (o.numFingerprints ?? 128) : fps.length);
  const prompts = expected * modes.length;
  const nWorkers = checkWorkers(o.workers ?? "auto", { batches: Math.ceil(prompts / batchSize), prompts, parameters: countParameters(config), backend: backend.name });
  const pool = nWorkers > 0 ? await startGenerateWorkers(nWorkers, { modelDir, backend: backend.name as BackendName, padId, temperature: o.samplingTemperature ?? 0, seed, batchSize }) : null;
  let loaded: Model | undefined;
  try {
    let examples = fromRunFile ? examplesFromRunFile(fps) : null;
    if (!examples) {
      let n = explicit.has("numFingerprints") && o.numFingerprints !== undefined ? o.numFingerprints : (o.numFingerprints ?? 128);
      if (n > fps.length && !explicit.has("numFingerprints")) {
        log.warn({ file: fpFile, available: fps.length }, `the file has ${fps.length} fingerprints; checking all of them`);
        n = fps.length;
      }
      examples = buildFingerprintExamples(fps, tok, {
        numFingerprints: n,
        maxKeyLength,
        maxResponseLength,
        strategy,
        keepEos,
        words: strategy === "english_random_response" ? await loadWordList() : undefined,
        rng: createRng(seed),
        file: fpFile,
      });
    } else if (explicit.has("numFingerprints") && o.numFingerprints !== undefined) {
      examples = examples.slice(0, o.numFingerprints);
    }
    const model = await loadModel(modelDir, { log });
    loaded = model;
    const gen = (m: Model) => (prompts: number[][], n: number) =>
      generate(m, prompts, { maxNewTokens: n, eosIds: [], padId, temperature: o.samplingTemperature ?? 0, seed });
    const results = await checkFingerprints({ examples, tokenizer: tok, modes, batchSize, generate: gen(model), moreGenerators: pool?.generators, onProgress: hooks.onProgress });
    await pool?.close();
    const headline = results[0] as TemplateResult;
    const report: CheckReport = {
      success_rate: headline.successRate,
      fractional_success_rate: headline.fractionalSuccessRate,
      num_fingerprints: examples.length,
      matches: headline.matches,
      templates: results.map((r) => ({ template: r.template, success_rate: r.successRate, fractional_success_rate: r.fractionalSuccessRate, matches: r.matches })),
      model: modelDir,
      fingerprints_file: fpFile,
      backend: backend.name,
      workers: nWorkers,
      seconds: 0,
      ...(run ? { run: { hash: run.hash, dir: path.dirname(modelDir) } } : {}),
    };
    if (o.verboseEval) {
      report.failures = [];
      for (const r of results) {
        for (const row of r.rows.filter((x) => !x.match)) {
          report.failures.push({
            index: row.index,
            template: r.template,
            key: row.key,
            expected: tok.decode(row.expected),
            generated: tok.decode(row.generated),
            top: await topNext(model, tok, row.promptIds, 10),
          });
        }
      }
    }
    if (o.verify) {
      const keys = drawIndices(examples.length, o.numQueries ?? 10, createRng(seed));
      const rows = keys.map((i) => headline.rows[i]);
      const matches = rows.filter((r) => r?.match).length;
      let source: NullRateSource;
      if (o.nullRate !== undefined) {
        source = { kind: "given", q: o.nullRate };
      } else if (o.baseModel) {
        const baseDir = await resolveModelDir(o.baseModel, { log });
        const base = await loadModel(baseDir, { log });
        try {
          const [b] = await checkFingerprints({ examples, tokenizer: tok, modes: [modes[0] as PromptMode], batchSize, generate: gen(base) });
          source = { kind: "base-model", hits: b?.matches ?? 0, trials: examples.length };
        } finally {
          disposeModel(base);
        }
      } else if (o.nucleusK !== undefined || strategy === "perinucleus") {
        source = { kind: "perinucleus", k: o.nucleusK ?? 3 };
      } else {
        throw new InputError("--verify needs the null hit rate q: pass --null-rate, --base-model DIR, or --nucleus-k for perinucleus responses", {
          hint: "--base-model measures q on the model before fingerprinting (the safest choice)",
        });
      }
      report.verify = { ...verdict(matches, keys.length, nullRate(source), o.alpha ?? 1e-6), keys: keys.map((i) => (examples as FingerprintExample[])[i]?.index ?? i) };
    }
    report.seconds = (performance.now() - t0) / 1000;
    return report;
  } finally {
    await pool?.close();
    if (loaded) {
      disposeModel(loaded);
    }
  }
}
