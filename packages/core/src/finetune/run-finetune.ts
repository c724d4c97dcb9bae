/**
 * `oml-finetune`'s job, end to end: resolve the model, build the training task (fingerprints,
 * or ordinary SFT rows with `--sft-data`), draw held-out text from the base model, build the
 * benign mix, train, measure, and publish `<results>/<hash>/` atomically (results-dir.ts).
 * Progress is reported as events; nothing is printed.
 */
import { appendFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend.js";
import { backendForPlan, formatBytes } from "../plan/memory-plan.js";
import type { TemplateResult } from "../check/check-fingerprints.js";
import { DEFAULT_AUGMENTATION_PROMPTS, loadAugmentationPrompts, loadWordList } from "../data/data-files.js";
import { InputError, RuntimeFailure } from "../errors.js";
import { readFingerprints } from "../fingerprints/io.js";
import { silentLogger, type Logger } from "../log.js";
import { disposeModel, loadModel, loadModelConfig, type Model } from "../model/load-model.js";
import { saveModel } from "../model/save-model.js";
import { spareCores } from "../parallel/data-parallel.js";
import { buildBenignRows } from "../quality/benign-rows.js";
import { readEvalText, sampleHeldoutText } from "../quality/heldout-text.js";
import { readSftData } from "../quality/sft-data.js";
import { loadTokenizer } from "../tokenizer/load-tokenizer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { AdamW } from "../train/adamw.js";
import { anchorFromFiles, anchorWeights } from "../train/anchor.js";
import { DEFAULT_CHECK_TEMPLATES, type PromptMode } from "../train/data.js";
import { writeFileAtomic } from "../util/json-file.js";
import { bestWeightsOnDisk } from "./best-weights.js";
import { readCheckpoint, writeCheckpoint } from "./checkpoint.js";
import type { FinetuneOptionsInput } from "./finetune-options.js";
import { finetuneMemoryPlan, parseFinetuneOptions, planAugmentationTemplates, resolveFinetuneModel } from "./finetune-plan.js";
import { augmentationSummary, checkWith, measureHeldout, summarizeTemplates, summaryLine, type FinetuneSummary } from "./finetune-summary.js";
import { prepareFingerprintTask, prepareSftTask, type PreparedTask } from "./prepare-task.js";
import { isComplete, modelContentHash, openPartial, publishRun, runHash, runPaths, sha256File } from "./results-dir.js";
import { DEFAULT_FINGERPRINTS_FILE, resolveRun, resolveWorkers, runConfig } from "./run-config.js";
import { isNoDecay, trainModel, type BenignMix, type TrainConfig, type TrainEvent } from "./train-model.js";

export { canonicalStrategy } from "./run-config.js";
export type { FinetuneSummary } from "./finetune-summary.js";
export { summaryLine } from "./finetune-summary.js";

export type FinetuneEvent = TrainEvent | { type: "phase"; phase: "resolve" | "load" | "prepare" | "train" | "save" | "check" | "measure"; detail?: string };

export interface FinetuneHooks {
  log?: Logger;
  onEvent?: (e: FinetuneEvent) => void;
}

export interface FinetuneResult {
  /** `<results>/<hash>` */
  dir: string;
  hash: string;
  /** true when a finished run with this config existed and nothing was done */
  skipped: boolean;
  summary?: FinetuneSummary;
}

/** Fine-tune fingerprints (or, with `sftData`, ordinary data) into a model; returns the result directory. */
export async function finetune(input: FinetuneOptionsInput, hooks: FinetuneHooks = {}): Promise<FinetuneResult> {
  const t0 = performance.now();
  const log = hooks.log ?? silentLogger;
  const emit = (e: FinetuneEvent): void => hooks.onEvent?.(e);
  const o = parseFinetuneOptions(input);
  const run = resolveRun(o);

  emit({ type: "phase", phase: "resolve" });
  const dataFile = path.resolve(run.mode === "sft" ? (o.sftData as string) : (o.fingerprintsFilePath ?? DEFAULT_FINGERPRINTS_FILE));
  const evalTextFile = o.evalText ? path.resolve(o.evalText) : undefined;
  // Read the data first: a bad file fails before anything is loaded or written.
  const data = run.mode === "sft" ? { records: await readSftData(dataFile) } : { fingerprints: await readFingerprints(dataFile) };
  const model = await resolveFinetuneModel(o, { log });
  const sha = async (f: string): Promise<string> => {
    try {
      return await sha256File(f);
    } catch (err) {
      throw new InputError(`${f}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { code: "INVALID_FILE", hint: "check the path", cause: err });
    }
  };
  const config = runConfig(o, run, {
    model: model.source,
    modelSha256: await modelContentHash(model.dir),
    dataPath: dataFile,
    dataSha256: await sha(dataFile),
    evalText: evalTextFile ? { path: evalTextFile, sha256: await sha(evalTextFile) } : undefined,
  });
  const hash = runHash(config);
  const paths = runPaths(o.resultsDir, hash);
  if (!o.force && (await isComplete(paths))) {
    log.info({ dir: paths.final }, "a finished run with this config exists; skipping (pass --force to redo it)");
    return { dir: paths.final, hash, skipped: true };
  }

  // Plan memory before any weight loads (as `--dry-run` prints it): a model that cannot fit
  // wasm's 4 GiB heap is a clear error with --backend wasm, and moves to cpu with --backend auto.
  const { config: modelConfig } = await loadModelConfig(model.dir);
  const { rows, memory: plan } = finetuneMemoryPlan(o, run, modelConfig, { sftRecords: data.records, augmentationTemplates: await planAugmentationTemplates(o) });
  const choice = backendForPlan(o.backend, plan);
  const backend = await initBackend(choice.backend, log, { allowWasm: choice.allowWasm });
  log.info(
    { parameters: plan.parameters, rows: `${rows.batchSize} × ${rows.seqLen}`, tfjsHeap: formatBytes(plan.bytes.tfjsHeap), total: formatBytes(plan.bytes.total) },
    "memory plan",
  );
  emit({ type: "phase", phase: "load", detail: model.dir });
  const tok: Tokenizer = await loadTokenizer(model.dir);
  // The weight files as loaded: averaging reads w0 from them again, and so does the held-out
  // measurement for the base model (so neither is kept in memory); a file that changes in the
  // meantime is an error.
  const baseFiles = await anchorFromFiles(model.dir);
  const loaded: Model = await loadModel(model.dir, { log });
  const vars = new Map<string, tf.Variable>();
  try {
    const padId = tok.padId ?? tok.eosId ?? 0;
    const mode: PromptMode = o.useChatTemplate ? { kind: "chat" } : { kind: "template", template: "{}" };
    const prepared: PreparedTask = data.records
      ? prepareSftTask({ o, file: dataFile, tok, model: loaded, mode, log, records: data.records })
      : await prepareFingerprintTask({ o, file: dataFile, tok, model: loaded, mode, padId, log, fingerprints: data.fingerprints ?? [] });

    // Measured before training: held-out text from the base model, and the benign mix.
    emit({ type: "phase", phase: "prepare", detail: `${o.evalSamples} held-out samples${run.benignPerMicroBatch > 0 ? ", benign rows" : ""}` });
    const selfText = await sampleHeldoutText(loaded, tok, { samples: o.evalSamples, tokens: o.evalTokens, seed: o.seed, padId });
    const evalText = evalTextFile ? await readEvalText(evalTextFile, tok, { maxLength: Math.min(loaded.config.maxPositions, 512) }) : null;
    const microBatches = Math.ceil(prepared.task.size / o.batchSize);
    let benign: BenignMix | undefined;
    if (run.benignPerMicroBatch > 0) {
      const rows = await buildBenignRows(loaded, tok, {
        count: microBatches * run.benignPerMicroBatch,
        mode,
        seed: o.seed + 1,
        words: await loadWordList(),
        padId,
        klTopK: o.klRegularizer > 0 ? o.klTopK : undefined,
      });
      benign = { rows, perMicroBatch: run.benignPerMicroBatch, proportion: o.benignProportion, klWeight: o.klRegularizer };
    }
    // Each worker holds a replica of the model and its activations (memory ×(workers + 1)).
    const { workers, ignored } = resolveWorkers(o.workers, {
      backend: backend.name,
      benign: benign !== undefined,
      spareCores: spareCores(),
      parameters: plan.parameters,
      tokensPerMicroBatch: rows.batchSize * rows.seqLen,
    });
    if (ignored) {
      log.warn(ignored);
    }

    await openPartial(paths, { resume: o.resume });
    for (const [name, text] of prepared.files) {
      await writeFileAtomic(path.join(paths.partial, name), text, { force: true, mode: 0o600 });
    }
    const trainLog = path.join(paths.partial, "train_log.jsonl");

    // Trainable weights as variables (unique names per run: tfjs variable names are global).
    // A variable shares its initial tensor's memory; the loaded tensor is freed, so the model's
    // weights are the variables from here on (the base model's outputs that are needed later
    // were computed above, and the held-out measurement loads the base weights again).
    const checkpoint = o.resume ? await readCheckpoint(paths.partial) : null;
    const anchor = run.lambda > 0 ? baseFiles : null;
    const prefix = `oml/${hash}/${Date.now()}`;
    for (const [name, t] of loaded.weights) {
      const init = checkpoint?.weights.get(name);
      const start = init ? tf.tensor(init, t.shape, "float32") : t;
      const v = tf.variable(start, true, `${prefix}/${name}`);
      vars.set(name, v);
      loaded.weights.set(name, v);
      tf.dispose(init ? [start, t] : t);
      checkpoint?.weights.delete(name);
    }
    let resume = null;
    if (checkpoint) {
      const optimizer = new AdamW({ weightDecay: o.weightDecay, noDecay: isNoDecay });
      optimizer.adoptState(checkpoint.optimizer);
      resume = { state: checkpoint.state, optimizer };
      log.info({ epoch: checkpoint.state.epoch }, `resuming after epoch ${checkpoint.state.epoch}`);
    }
    const cfg: TrainConfig = {
      epochs: o.numTrainEpochs,
      learningRate: o.learningRate,
      weightDecay: o.weightDecay,
      batchSize: o.batchSize,
      gradientAccumulation: Math.min(o.gradientAccumulation ?? (run.mode === "sft" ? 1 : microBatches), microBatches),
      schedule: run.lrSchedule,
      warmupSteps: o.warmupSteps,
      maxGradNorm: o.maxGradNorm,
      lambda: run.lambda,
      averagingInterval: o.averagingInterval,
      earlyStopLoss: o.earlyStopLoss,
      stopAtSuccess: o.trainPastSuccess ? Infinity : o.stopAtSuccess,
      seed: o.seed,
      padId,
      benign,
      workers,
    };
    emit({ type: "phase", phase: "train", detail: `${prepared.task.size} examples, ${microBatches} micro-batches an epoch${workers > 0 ? `, main thread + ${workers} worker${workers > 1 ? "s" : ""}` : ""}` });
    let lastBenign: { loss: number | null; kl: number | null } = { loss: null, kl: null };
    const { result } = await trainModel(loaded, vars, anchor, prepared.task, cfg, resume, {
      onEvent: (e) => {
        emit(e);
        if (e.type === "epoch-end") {
          lastBenign = { loss: e.benignLoss ?? null, kl: e.kl ?? null };
        }
        if (e.type === "step" || e.type === "epoch-end") {
          void appendFile(trainLog, `${JSON.stringify({ ...e, time: new Date().toISOString() })}\n`);
        }
      },
      best: bestWeightsOnDisk(paths.partial),
      onCheckpoint: async (state, v, opt) => {
        await writeCheckpoint(paths.partial, state, v, opt);
        // Test hook: simulate a crash right after a checkpoint (used by the --resume test).
        if (process.env.OML_TEST_CRASH_AFTER_EPOCH === String(state.epoch)) {
          throw new RuntimeFailure(`simulated crash after epoch ${state.epoch} (OML_TEST_CRASH_AFTER_EPOCH)`);
        }
      },
    });

    // Save the best weights seen (trainModel left them in the variables), then check them and
    // measure them against the base model, whose weights are loaded again for that.
    emit({ type: "phase", phase: "save" });
    const bestTensors = new Map<string, tf.Tensor>(vars);
    let base: Model | null = null;
    try {
      await saveModel(loaded, path.join(paths.partial, "final_model"), { weights: bestTensors, overwrite: true, log });
      let checked: TemplateResult[] = [];
      let augmentation: FinetuneSummary["augmentation_check"];
      if (prepared.examples) {
        emit({ type: "phase", phase: "check" });
        const modes: PromptMode[] = o.useChatTemplate ? [{ kind: "chat" }] : DEFAULT_CHECK_TEMPLATES.map((template) => ({ kind: "template", template }));
        checked = await checkWith(loaded, bestTensors, tok, prepared.examples, modes, padId);
        if (o.useAugmentationPrompts && !o.useChatTemplate) {
          const file = DEFAULT_AUGMENTATION_PROMPTS.test;
          const held = (await loadAugmentationPrompts(file)).map((template): PromptMode => ({ kind: "template", template }));
          augmentation = augmentationSummary(file, await checkWith(loaded, bestTensors, tok, prepared.examples, held, padId));
        }
      }
      emit({ type: "phase", phase: "measure" });
      if (selfText.length > 0 || evalText) {
        base = { ...loaded, weights: await anchorWeights(baseFiles, loaded.weights) }; // streamed into the heap: no copy outside it
      }
      const heldout = await measureHeldout(
        base ?? loaded,
        bestTensors,
        padId,
        { sequences: selfText, samples: o.evalSamples, maxTokens: o.evalTokens },
        evalText && evalTextFile ? { sequences: evalText, file: evalTextFile } : null,
      );
      const headline = checked[0];
      const summary: FinetuneSummary = {
        hash,
        mode: run.mode,
        model: model.source,
        backend: backend.name,
        workers,
        num_fingerprints: prepared.examples?.length ?? 0,
        num_examples: prepared.task.size,
        epochs_run: result.epochsRun,
        stopped_because: result.stoppedBecause,
        best_epoch: result.best.epoch,
        final_loss: result.finalLoss,
        best_loss: result.best.loss,
        success_rate: headline?.successRate ?? null,
        fractional_success_rate: headline?.fractionalSuccessRate ?? null,
        templates: summarizeTemplates(checked),
        ...(augmentation ? { augmentation_check: augmentation } : {}),
        heldout,
        ...(benign
          ? {
              benign: {
                proportion: o.benignProportion,
                kl_regularizer: o.klRegularizer,
                kl_top_k: o.klTopK,
                rows: benign.rows.length,
                per_micro_batch: benign.perMicroBatch,
                final_benign_loss: lastBenign.loss,
                final_kl: lastBenign.kl,
              },
            }
          : {}),
        ...(prepared.sft ? { sft: prepared.sft } : {}),
        averaging_interval: o.averagingInterval,
        forgetting_regularizer_strength: run.lambda,
        wall_seconds: (performance.now() - t0) / 1000,
        peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
      };
      await writeFile(path.join(paths.partial, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
      await writeFile(path.join(paths.partial, run.mode === "sft" ? "finetuning_config.json" : "fingerprinting_config.json"), `${JSON.stringify({ hash, config }, null, 2)}\n`);
      await rm(path.join(paths.partial, "checkpoint"), { recursive: true, force: true });
      await publishRun(paths, config);
      log.debug(
        { dir: paths.final, successRate: summary.success_rate, epochs: summary.epochs_run, heldout: summary.heldout, augmentation: summary.augmentation_check?.success_rate },
        summaryLine(summary),
      );
      return { dir: paths.final, hash, skipped: false, summary };
    } finally {
      if (base) {
        disposeModel(base);
      }
    }
  } finally {
    tf.dispose([...vars.values()]);
    disposeModel(loaded);
  }
}
