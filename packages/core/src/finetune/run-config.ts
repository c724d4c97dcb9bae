/**
 * From validated options to what a run does: the mode (fingerprinting, or ordinary SFT with
 * `--sft-data`), the defaults that depend on it, the checks across options, and the config
 * that is hashed into the run's name (results-dir.ts). The config covers everything that
 * changes the trained weights or the summary: the model's and the data files' sha256, every
 * training option, the benign mix and the held-out measurement.
 */
import { InputError } from "../errors.js";
import type { FingerprintStrategy } from "../train/data.js";
import type { ScheduleName } from "../train/schedule.js";
import type { FinetuneOptions } from "./finetune-options.js";

export type FinetuneMode = "fingerprint" | "sft";

/** The reference's default fingerprints file. */
export const DEFAULT_FINGERPRINTS_FILE = "generated_data/output_fingerprints.json";
/** Benign share used to size the benign pool when only `--kl-regularizer` asks for benign rows. */
export const KL_ONLY_BENIGN_SHARE = 0.25;

export interface ResolvedRun {
  mode: FinetuneMode;
  /** λ after the mode's default */
  lambda: number;
  lrSchedule: ScheduleName;
  /** benign rows added to each micro-batch (0: no benign mix) */
  benignPerMicroBatch: number;
}

/** english_random_responses (what the reference's code accepts) → english_random_response; inverse_nucleus → perinucleus. */
export function canonicalStrategy(s: string): FingerprintStrategy {
  if (s === "english_random_responses") {
    return "english_random_response";
  }
  return (s === "inverse_nucleus" ? "perinucleus" : s) as FingerprintStrategy;
}

/**
 * Benign rows per micro-batch of `batchSize` task rows so that they make up a share β of it:
 * round(b·β / (1 − β)), at least 1 (β from KL_ONLY_BENIGN_SHARE when only α > 0).
 */
export function benignPerMicroBatch(batchSize: number, proportion: number, klRegularizer: number): number {
  const share = proportion > 0 ? proportion : klRegularizer > 0 ? KL_ONLY_BENIGN_SHARE : 0;
  return share === 0 ? 0 : Math.max(1, Math.round((batchSize * share) / (1 - share)));
}

/** The mode and mode-dependent defaults; throws an InputError for options that do not go together. */
export function resolveRun(o: FinetuneOptions): ResolvedRun {
  const mode: FinetuneMode = o.sftData ? "sft" : "fingerprint";
  if (mode === "sft") {
    if (o.fingerprintsFilePath) {
      throw new InputError("--sft-data and --fingerprints-file-path do not go together: --sft-data fine-tunes on ordinary data, with no fingerprints", {
        hint: "fingerprint first, then pass the result's final_model to --model-path with --sft-data",
      });
    }
    const bad = [
      [o.benignProportion > 0, "--benign-proportion"],
      [o.klRegularizer > 0, "--kl-regularizer"],
      [o.useAugmentationPrompts, "--use-augmentation-prompts"],
    ].filter(([on]) => on);
    if (bad.length > 0) {
      throw new InputError(`${bad.map(([, f]) => f).join(", ")} protect${bad.length === 1 ? "s" : ""} fingerprints while they are trained; not with --sft-data`, {
        hint: "drop them, or fingerprint instead of --sft-data",
      });
    }
  }
  const lambda = o.forgettingRegularizerStrength ?? (mode === "sft" ? 0 : 0.75);
  return {
    mode,
    lambda,
    lrSchedule: o.lrSchedule ?? (lambda > 0 ? "constant" : "linear"),
    benignPerMicroBatch: mode === "sft" ? 0 : benignPerMicroBatch(o.batchSize, o.benignProportion, o.klRegularizer),
  };
}

/**
 * Below this many parameter·tokens per micro-batch, `--workers auto` trains on the main thread
 * alone. Measured on an idle 2-core machine: the 20M Llama at batch 8 × 64 (10¹⁰) stepped in
 * 1051 ms with one worker against 1804 alone (PyTorch: 1108–1265); stories260K with 64
 * fingerprints full batch (3·10⁸) took as long or longer with one (15 epochs: 10.9–11.6 s
 * against 9.3–11.3 s): its per-step exchange and the per-epoch check outweigh the split.
 */
export const MIN_TRAIN_WORKER_WORK = 2e9;

/** A worker's replica beside the main thread's: `auto` only up to this many bytes of weights. */
const MAX_AUTO_REPLICA_BYTES = 2 ** 30;

/**
 * Worker threads a run trains with: `--workers` as asked, or for "auto" (the default) the
 * spare cores when the work per micro-batch (parameters × rows × tokens) is at least
 * MIN_TRAIN_WORKER_WORK and the weights take ≤ 1 GiB (each worker holds a replica), else 0;
 * 0 with a benign mix (its losses run on the main thread only) and on the tensorflow backend
 * (which uses every core itself). `ignored` says why an explicit request was dropped (auto
 * drops silently).
 * Not part of the run's config or hash: like --backend, the worker count changes float32
 * rounding only (each micro-batch is split over the threads, its gradients summed in a fixed
 * order), not what is trained; summary.json records it.
 */
export function resolveWorkers(
  requested: number | "auto",
  ctx: { backend: string; benign: boolean; spareCores: number; parameters: number; tokensPerMicroBatch: number },
): { workers: number; ignored?: string } {
  if (requested === "auto") {
    const worthIt = ctx.parameters * ctx.tokensPerMicroBatch >= MIN_TRAIN_WORKER_WORK && 4 * ctx.parameters <= MAX_AUTO_REPLICA_BYTES;
    const usable = !ctx.benign && (ctx.backend === "wasm" || ctx.backend === "cpu");
    return { workers: worthIt && usable ? ctx.spareCores : 0 };
  }
  if (requested > 0 && ctx.benign) {
    return { workers: 0, ignored: "--workers is not used with --benign-proportion or --kl-regularizer yet: the main thread computes alone" };
  }
  if (requested > 0 && ctx.backend !== "wasm" && ctx.backend !== "cpu") {
    return { workers: 0, ignored: `--workers is not used with the ${ctx.backend} backend, which uses every core itself` };
  }
  return { workers: requested };
}

export interface RunInputs {
  /** the model as the user named it */
  model: string;
  modelSha256: string;
  /** absolute path and sha256 of the fingerprints file or the SFT data */
  dataPath: string;
  dataSha256: string;
  /** absolute path and sha256 of --eval-text */
  evalText?: { path: string; sha256: string };
}

/** The config hashed into the run's name and written to its config file. */
export function runConfig(o: FinetuneOptions, r: ResolvedRun, inputs: RunInputs): Record<string, unknown> {
  const training = {
    num_train_epochs: o.numTrainEpochs,
    learning_rate: o.learningRate,
    weight_decay: o.weightDecay,
    batch_size: o.batchSize,
    gradient_accumulation: o.gradientAccumulation ?? null,
    lr_schedule: r.lrSchedule,
    warmup_steps: o.warmupSteps,
    max_grad_norm: o.maxGradNorm,
    forgetting_regularizer_strength: r.lambda,
    averaging_interval: o.averagingInterval,
    use_chat_template: o.useChatTemplate,
    early_stop_loss: o.earlyStopLoss,
    seed: o.seed,
    eval_samples: o.evalSamples,
    eval_tokens: o.evalTokens,
    eval_text_path: inputs.evalText?.path ?? null,
    eval_text_sha256: inputs.evalText?.sha256 ?? null,
  };
  if (r.mode === "sft") {
    return {
      oml_ts_run_format: 1,
      mode: "sft",
      model: inputs.model,
      model_content_sha256: inputs.modelSha256,
      sft_data_path: inputs.dataPath,
      sft_data_sha256: inputs.dataSha256,
      sft_max_length: o.sftMaxLength,
      ...training,
    };
  }
  return {
    oml_ts_run_format: 1,
    mode: "fingerprint",
    model: inputs.model,
    model_content_sha256: inputs.modelSha256,
    fingerprints_file_path: inputs.dataPath,
    fingerprints_sha256: inputs.dataSha256,
    num_fingerprints: o.numFingerprints,
    max_key_length: o.maxKeyLength,
    max_response_length: o.maxResponseLength,
    fingerprint_generation_strategy: canonicalStrategy(o.fingerprintGenerationStrategy),
    data_split: o.dataSplit,
    use_augmentation_prompts: o.useAugmentationPrompts,
    keep_eos_in_response: o.keepEosInResponse,
    stop_at_success: o.stopAtSuccess,
    train_past_success: o.trainPastSuccess,
    benign_proportion: o.benignProportion,
    kl_regularizer: o.klRegularizer,
    kl_top_k: o.klTopK,
    ...training,
  };
}
