/**
 * `oml-finetune`'s job, end to end: resolve the model, build the training set, train, and
 * publish `<results>/<hash>/` atomically (results-dir.ts). Progress is reported as events;
 * nothing is printed.
 */
import { appendFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend.js";
import { checkFingerprints, type TemplateResult } from "../check/check-fingerprints.js";
import { loadAugmentationPrompts, loadWordList, DEFAULT_AUGMENTATION_PROMPTS } from "../data/data-files.js";
import { InputError, RuntimeFailure } from "../errors.js";
import { readFingerprints } from "../fingerprints/io.js";
import { resolveFirstAvailable, resolveModelDir } from "../hub/index.js";
import { silentLogger, type Logger } from "../log.js";
import { generate } from "../model/generate.js";
import { disposeModel, loadModel, type Model } from "../model/load-model.js";
import { saveModel } from "../model/save-model.js";
import { loadTokenizer } from "../tokenizer/load-tokenizer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { AdamW } from "../train/adamw.js";
import { snapshotWeights } from "../train/averaging.js";
import { buildFingerprintExamples, DEFAULT_CHECK_TEMPLATES, promptIds, type FingerprintExample, type FingerprintStrategy, type PromptMode } from "../train/data.js";
import { writeFileAtomic } from "../util/json-file.js";
import { createRng } from "../util/rng.js";
import { formatFlagPath, formatZodError } from "../util/zod-issues.js";
import { readCheckpoint, writeCheckpoint } from "./checkpoint.js";
import { familyHubIds, FinetuneOptionsSchema, type FinetuneOptions, type FinetuneOptionsInput } from "./finetune-options.js";
import { isComplete, modelContentHash, openPartial, publishRun, runHash, runPaths, sha256File } from "./results-dir.js";
import { isNoDecay, trainFingerprints, type TrainConfig, type TrainEvent } from "./train-fingerprints.js";

export type FinetuneEvent = TrainEvent | { type: "phase"; phase: "resolve" | "load" | "train" | "save" | "check"; detail?: string };

export interface FinetuneHooks {
  log?: Logger;
  onEvent?: (e: FinetuneEvent) => void;
}

export interface FinetuneSummary {
  hash: string;
  model: string;
  backend: string;
  num_fingerprints: number;
  epochs_run: number;
  stopped_because: string;
  best_epoch: number;
  final_loss: number;
  best_loss: number;
  success_rate: number;
  fractional_success_rate: number;
  templates: { template: string; success_rate: number; fractional_success_rate: number; matches: number }[];
  wall_seconds: number;
  peak_rss_bytes: number;
}

export interface FinetuneResult {
  /** `<results>/<hash>` */
  dir: string;
  hash: string;
  /** true when a finished run with this config existed and nothing was done */
  skipped: boolean;
  summary?: FinetuneSummary;
}

export function parseFinetuneOptions(input: FinetuneOptionsInput): FinetuneOptions {
  const parsed = FinetuneOptionsSchema.safeParse(input);
  if (!parsed.success) {
    throw new InputError(formatZodError(parsed.error, formatFlagPath));
  }
  return parsed.data;
}

/** english_random_responses (what the reference's code accepts) → english_random_response; inverse_nucleus → perinucleus. */
export function canonicalStrategy(s: string): FingerprintStrategy {
  if (s === "english_random_responses") {
    return "english_random_response";
  }
  return (s === "inverse_nucleus" ? "perinucleus" : s) as FingerprintStrategy;
}

function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

async function resolveModel(o: FinetuneOptions, log: Logger): Promise<{ dir: string; source: string }> {
  if (o.modelPath) {
    return { dir: await resolveModelDir(o.modelPath, { log }), source: o.modelPath };
  }
  const r = await resolveFirstAvailable(familyHubIds(o.modelFamily, o.modelSize), { log });
  return { dir: r.dir, source: r.id };
}

function summarizeTemplates(results: TemplateResult[]): FinetuneSummary["templates"] {
  return results.map((r) => ({ template: r.template, success_rate: r.successRate, fractional_success_rate: r.fractionalSuccessRate, matches: r.matches }));
}

/** Fine-tune fingerprints into a model; returns the result directory. */
export async function finetune(input: FinetuneOptionsInput, hooks: FinetuneHooks = {}): Promise<FinetuneResult> {
  const t0 = performance.now();
  const log = hooks.log ?? silentLogger;
  const emit = (e: FinetuneEvent): void => hooks.onEvent?.(e);
  const o = parseFinetuneOptions(input);
  const strategy = canonicalStrategy(o.fingerprintGenerationStrategy);
  const lrSchedule = o.lrSchedule ?? (o.forgettingRegularizerStrength > 0 ? "constant" : "linear");

  emit({ type: "phase", phase: "resolve" });
  const fpFile = path.resolve(o.fingerprintsFilePath);
  const fingerprints = await readFingerprints(fpFile);
  const model = await resolveModel(o, log);
  const config = {
    oml_ts_run_format: 1,
    model: model.source,
    model_content_sha256: await modelContentHash(model.dir),
    fingerprints_file_path: fpFile,
    fingerprints_sha256: await sha256File(fpFile),
    num_fingerprints: o.numFingerprints,
    max_key_length: o.maxKeyLength,
    max_response_length: o.maxResponseLength,
    fingerprint_generation_strategy: strategy,
    num_train_epochs: o.numTrainEpochs,
    learning_rate: o.learningRate,
    weight_decay: o.weightDecay,
    batch_size: o.batchSize,
    gradient_accumulation: o.gradientAccumulation ?? null,
    lr_schedule: lrSchedule,
    warmup_steps: o.warmupSteps,
    max_grad_norm: o.maxGradNorm,
    data_split: o.dataSplit,
    forgetting_regularizer_strength: o.forgettingRegularizerStrength,
    use_augmentation_prompts: o.useAugmentationPrompts,
    keep_eos_in_response: o.keepEosInResponse,
    use_chat_template: o.useChatTemplate,
    early_stop_loss: o.earlyStopLoss,
    stop_at_success: o.stopAtSuccess,
    seed: o.seed,
  };
  const hash = runHash(config);
  const paths = runPaths(o.resultsDir, hash);
  if (!o.force && (await isComplete(paths))) {
    log.info({ dir: paths.final }, "a finished run with this config exists; skipping (pass --force to redo it)");
    return { dir: paths.final, hash, skipped: true };
  }

  const backend = await initBackend(o.backend, log);
  emit({ type: "phase", phase: "load", detail: model.dir });
  const tok: Tokenizer = await loadTokenizer(model.dir);
  const loaded: Model = await loadModel(model.dir, { log });
  const vars = new Map<string, tf.Variable>();
  try {
    const examples = buildFingerprintExamples(fingerprints, tok, {
      numFingerprints: o.numFingerprints,
      dataSplit: o.dataSplit,
      maxKeyLength: o.maxKeyLength,
      maxResponseLength: o.maxResponseLength,
      strategy,
      keepEos: o.keepEosInResponse,
      words: strategy === "english_random_response" ? await loadWordList() : undefined,
      rng: createRng(o.seed),
      file: fpFile,
    });
    if (fingerprints.length > o.numFingerprints) {
      log.warn({ file: fpFile, available: fingerprints.length, used: o.numFingerprints }, `using ${o.numFingerprints} of the ${fingerprints.length} fingerprints in the file`);
    }
    const mode: PromptMode = o.useChatTemplate ? { kind: "chat" } : { kind: "template", template: "{}" };
    const augmentation = o.useAugmentationPrompts ? await loadAugmentationPrompts(DEFAULT_AUGMENTATION_PROMPTS.train) : undefined;
    const longest = Math.max(...examples.map((ex) => promptIds(tok, ex, mode).length + ex.responseIds.length));
    if (longest > loaded.config.maxPositions) {
      throw new InputError(`a key + response is ${longest} tokens, more than the model's context of ${loaded.config.maxPositions}`, {
        hint: "lower --max-key-length or --max-response-length",
      });
    }
    const padId = tok.padId ?? tok.eosId ?? 0;

    await openPartial(paths, { resume: o.resume });
    await writeFileAtomic(
      path.join(paths.partial, "fingerprints.json"),
      `${JSON.stringify(
        examples.map((ex: FingerprintExample) => ({
          key: ex.key,
          response: ex.response,
          effective_key: ex.key,
          key_ids: ex.keyIds,
          response_ids: ex.responseIds,
          source_index: ex.index,
          prompt_mode: o.useChatTemplate ? "chat" : "plain",
        })),
        null,
        4,
      )}\n`,
      { force: true, mode: 0o600 },
    );
    await writeFileAtomic(
      path.join(paths.partial, "train_dataset.csv"),
      `index,key,response\n${examples.map((ex) => [ex.index, ex.key, ex.response].map(csvCell).join(",")).join("\n")}\n`,
      { force: true, mode: 0o600 },
    );
    const trainLog = path.join(paths.partial, "train_log.jsonl");

    // Trainable weights as variables (unique names per run: tfjs variable names are global).
    const checkpoint = o.resume ? await readCheckpoint(paths.partial) : null;
    const anchor = o.forgettingRegularizerStrength > 0 ? snapshotWeights(loaded.weights) : null;
    const prefix = `oml/${hash}/${Date.now()}`;
    for (const [name, t] of loaded.weights) {
      const init = checkpoint?.weights.get(name);
      vars.set(name, tf.variable(init ? tf.tensor(init, t.shape) : t, true, `${prefix}/${name}`));
    }
    let resume = null;
    if (checkpoint) {
      const optimizer = new AdamW({ weightDecay: o.weightDecay, noDecay: isNoDecay });
      optimizer.importState(checkpoint.optimizer);
      resume = { state: checkpoint.state, optimizer, best: checkpoint.best };
      log.info({ epoch: checkpoint.state.epoch }, `resuming after epoch ${checkpoint.state.epoch}`);
    }
    const microBatches = Math.ceil(examples.length / o.batchSize);
    const cfg: TrainConfig = {
      epochs: o.numTrainEpochs,
      learningRate: o.learningRate,
      weightDecay: o.weightDecay,
      batchSize: o.batchSize,
      gradientAccumulation: Math.min(o.gradientAccumulation ?? microBatches, microBatches),
      schedule: lrSchedule,
      warmupSteps: o.warmupSteps,
      maxGradNorm: o.maxGradNorm,
      lambda: o.forgettingRegularizerStrength,
      earlyStopLoss: o.earlyStopLoss,
      stopAtSuccess: o.stopAtSuccess,
      seed: o.seed,
      mode,
      augmentationTemplates: augmentation,
      padId,
    };
    emit({ type: "phase", phase: "train", detail: `${examples.length} examples, ${microBatches} micro-batches an epoch` });
    const { result, best } = await trainFingerprints(loaded, vars, anchor, tok, examples, cfg, resume, {
      onEvent: (e) => {
        emit(e);
        if (e.type === "step" || e.type === "epoch-end") {
          void appendFile(trainLog, `${JSON.stringify({ ...e, time: new Date().toISOString() })}\n`);
        }
      },
      onCheckpoint: async (state, v, opt, b) => {
        await writeCheckpoint(paths.partial, state, v, opt, b);
        // Test hook: simulate a crash right after a checkpoint (used by the --resume test).
        if (process.env.OML_TEST_CRASH_AFTER_EPOCH === String(state.epoch)) {
          throw new RuntimeFailure(`simulated crash after epoch ${state.epoch} (OML_TEST_CRASH_AFTER_EPOCH)`);
        }
      },
    });

    // Save the best weights seen, then check them with the reference's templates.
    emit({ type: "phase", phase: "save" });
    const bestTensors = new Map<string, tf.Tensor>([...best].map(([n, d]) => [n, tf.tensor(d, loaded.weights.get(n)?.shape)]));
    try {
      await saveModel(loaded, path.join(paths.partial, "final_model"), { weights: bestTensors, overwrite: true, log });
      emit({ type: "phase", phase: "check" });
      const view: Model = { ...loaded, weights: bestTensors };
      const modes: PromptMode[] = o.useChatTemplate ? [{ kind: "chat" }] : DEFAULT_CHECK_TEMPLATES.map((template) => ({ kind: "template", template }));
      const checked = await checkFingerprints({
        examples,
        tokenizer: tok,
        modes,
        batchSize: 64,
        generate: (prompts, n) => generate(view, prompts, { maxNewTokens: n, eosIds: [], padId }),
      });
      const headline = checked[0] as TemplateResult;
      const summary: FinetuneSummary = {
        hash,
        model: model.source,
        backend: backend.name,
        num_fingerprints: examples.length,
        epochs_run: result.epochsRun,
        stopped_because: result.stoppedBecause,
        best_epoch: result.best.epoch,
        final_loss: result.finalLoss,
        best_loss: result.best.loss,
        success_rate: headline.successRate,
        fractional_success_rate: headline.fractionalSuccessRate,
        templates: summarizeTemplates(checked),
        wall_seconds: (performance.now() - t0) / 1000,
        peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
      };
      await writeFile(path.join(paths.partial, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
      await writeFile(path.join(paths.partial, "fingerprinting_config.json"), `${JSON.stringify({ hash, config }, null, 2)}\n`);
      await rm(path.join(paths.partial, "checkpoint"), { recursive: true, force: true });
      await publishRun(paths, config);
      log.info({ dir: paths.final, successRate: summary.success_rate, epochs: summary.epochs_run }, `fingerprinted: ${summary.success_rate.toFixed(1)}% success`);
      return { dir: paths.final, hash, skipped: false, summary };
    } finally {
      tf.dispose([...bestTensors.values()]);
    }
  } finally {
    tf.dispose([...vars.values()]);
    disposeModel(loaded);
  }
}
