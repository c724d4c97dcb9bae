/**
 * Options of `oml-finetune`, validated once. Defaults: the seed README's table where it states
 * one (strategy english, max key 16, max response 1, lr 1e-5, forgetting strength 0.75,
 * 1024 fingerprints, no augmentation), the reference code otherwise (10 epochs, batch 8,
 * weight decay 1e-4, seed 42). lr 1e-5 is meant for 7B models and barely moves a tiny one:
 * use ~1e-2 for stories260K-sized models.
 */
import { z } from "zod";
import { BACKEND_NAMES } from "../backend.js";
import { FINGERPRINT_STRATEGIES } from "../train/data.js";
import { AVERAGING_INTERVALS } from "./train-model.js";

export const MODEL_FAMILIES = ["llama", "mistral", "Eleuther", "gemma", "microsoft"] as const;
export const LR_SCHEDULES = ["constant", "linear", "cosine"] as const;

const int = z.number({ error: "expected a number" }).int({ error: "expected a whole number" });
const positiveInt = int.positive({ error: "expected a positive whole number" });
const num = z.number({ error: "expected a number" });
const WORKERS_ERROR = 'expected a whole number ≥ 0 or "auto"';

export const FinetuneOptionsSchema = z.object({
  /** A local HF model directory (or a hub id). Wins over family/size. */
  modelPath: z.string().min(1).optional(),
  modelFamily: z.enum(MODEL_FAMILIES, { error: `expected one of ${MODEL_FAMILIES.join(", ")}` }).default("llama"),
  modelSize: z.string().min(1).default("8B"),
  numFingerprints: positiveInt.default(1024),
  maxKeyLength: positiveInt.default(16),
  maxResponseLength: positiveInt.default(1),
  fingerprintGenerationStrategy: z.enum(FINGERPRINT_STRATEGIES, { error: `expected one of ${FINGERPRINT_STRATEGIES.join(", ")}` }).default("english"),
  /** Default generated_data/output_fingerprints.json; not allowed with `sftData`. */
  fingerprintsFilePath: z.string().min(1).optional(),
  numTrainEpochs: positiveInt.default(10),
  learningRate: num.positive({ error: "expected a number > 0" }).default(1e-5),
  weightDecay: num.nonnegative({ error: "expected a number ≥ 0" }).default(1e-4),
  batchSize: positiveInt.default(8),
  dataSplit: num.nonnegative({ error: "expected a number ≥ 0" }).default(0),
  /** λ; default 0.75 when fingerprinting, 0 with `sftData`. */
  forgettingRegularizerStrength: num.min(0, { error: "expected a number in [0, 1]" }).max(1, { error: "expected a number in [0, 1]" }).optional(),
  /** When λ applies: after each epoch (the reference) or after each optimizer step. */
  averagingInterval: z.enum(AVERAGING_INTERVALS, { error: `expected one of ${AVERAGING_INTERVALS.join(", ")}` }).default("epoch"),
  /** β: the share of every batch (and of the loss) given to benign rows answered by the base model. */
  benignProportion: num.min(0, { error: "expected a number in [0, 1)" }).lt(1, { error: "expected a number in [0, 1)" }).default(0),
  /** α: weight of KL(base ‖ current) on the benign rows. */
  klRegularizer: num.nonnegative({ error: "expected a number ≥ 0" }).default(0),
  /** Base-model tokens kept per benign position for the KL term (memory: ~8·k bytes a position). */
  klTopK: positiveInt.default(64),
  /** Self-generated held-out samples for the harm measurement (0: none). */
  evalSamples: int.nonnegative({ error: "expected a whole number ≥ 0" }).default(32),
  /** Tokens per held-out sample. */
  evalTokens: positiveInt.default(128),
  /** A user text file (plain, or JSONL {text}) measured the same way. */
  evalText: z.string().min(1).optional(),
  /** Ordinary SFT on this JSONL file ({prompt, response} or {text}) instead of fingerprinting. */
  sftData: z.string().min(1).optional(),
  /** SFT rows are cut to this many tokens. */
  sftMaxLength: positiveInt.default(512),
  useAugmentationPrompts: z.boolean().default(false),
  keepEosInResponse: z.boolean().default(false),
  useChatTemplate: z.boolean().default(false),
  seed: int.default(42),
  resultsDir: z.string().min(1).default("results"),
  backend: z.enum(BACKEND_NAMES, { error: `expected one of ${BACKEND_NAMES.join(", ")}` }).default("auto"),
  /**
   * Worker threads computing gradients beside the main thread (data parallelism, wasm/cpu;
   * not with a benign mix); "auto": available cores − 1. Changes float rounding only.
   */
  workers: z.union([int.nonnegative({ error: WORKERS_ERROR }), z.literal("auto")], { error: WORKERS_ERROR }).default("auto"),
  /** Stop when the epoch's training loss falls below this (the newer reference: 0.005). */
  earlyStopLoss: num.nonnegative({ error: "expected a number ≥ 0" }).default(0.005),
  /** Stop when the fingerprint success rate (percent, greedy check) reaches this. */
  stopAtSuccess: num.min(0, { error: "expected a percentage in [0, 100]" }).max(100, { error: "expected a percentage in [0, 100]" }).default(100),
  /** Keep training after every fingerprint answers (until earlyStopLoss or the last epoch): deeper fingerprints. */
  trainPastSuccess: z.boolean().default(false),
  /** Micro-batches per optimizer step; default: all of them (one step per epoch, as the reference), 1 with `sftData`. */
  gradientAccumulation: positiveInt.optional(),
  /** Default: constant when forgetting strength > 0 (a decaying rate lets averaging undo the fingerprints), else linear. */
  lrSchedule: z.enum(LR_SCHEDULES, { error: `expected one of ${LR_SCHEDULES.join(", ")}` }).optional(),
  warmupSteps: int.nonnegative({ error: "expected a whole number ≥ 0" }).default(0),
  /** Global gradient-norm clipping; 0 = off. */
  maxGradNorm: num.nonnegative({ error: "expected a number ≥ 0" }).default(0),
  resume: z.boolean().default(false),
  force: z.boolean().default(false),
});
export type FinetuneOptions = z.infer<typeof FinetuneOptionsSchema>;
export type FinetuneOptionsInput = z.input<typeof FinetuneOptionsSchema>;

/** The reference's hub ids per family (docs/oml-reference.md §3); llama falls back to 3.1. */
export function familyHubIds(family: FinetuneOptions["modelFamily"], size: string): string[] {
  switch (family) {
    case "llama":
      return [`meta-llama/Llama-3.2-${size}`, `meta-llama/Meta-Llama-3.1-${size}`];
    case "mistral":
      return [`mistralai/Mistral-${size}-v0.3`];
    case "Eleuther":
      return [`EleutherAI/pythia-${size}-deduped`];
    case "microsoft":
      return [`microsoft/Phi-3-${size}-instruct`];
    case "gemma":
      return [`google/gemma-2-${size.toLowerCase()}`];
  }
}
