/**
 * The training loop of `oml-finetune`, for fingerprints and for ordinary SFT alike
 * (docs/oml-reference.md §3, with its traps fixed): AdamW on the masked response loss,
 * full-batch by default (gradients accumulated over every micro-batch of an epoch), weight
 * averaging toward w0 after each epoch or each optimizer step, an optional check after each
 * epoch (fingerprints: the greedy success rate), stop at the target success rate or below the
 * early-stop loss, and keep the best weights seen (highest success, then lowest loss; the
 * last weights when there is no check). Reports progress as events; never prints.
 *
 * With a benign mix, every micro-batch of task rows gets `perMicroBatch` benign rows (ordinary
 * prompts answered by the base model, quality/benign-rows.ts), run as a second forward, and
 * the loss becomes
 *   (1 − β)·CE(task rows) + β·CE(benign answers) + α·KL_k(base ‖ current on benign answers)
 * with β = `proportion`, α = `klWeight` (quality/kl-loss.ts). β = 0 with α > 0 uses the
 * benign rows for the KL term only. The epoch loss that early stopping and best-keeping read
 * is the task loss alone.
 */
import * as tf from "@tensorflow/tfjs-core";
import { forward } from "../model/forward.js";
import type { Model } from "../model/load-model.js";
import type { BenignRow } from "../quality/benign-rows.js";
import { collateKlTargets, klToReference, type KlTarget } from "../quality/kl-loss.js";
import { AdamW } from "../train/adamw.js";
import { averageInto, snapshotWeights } from "../train/averaging.js";
import { collate, type Batch, type EncodedRow } from "../train/data.js";
import { clipCoefficient, globalNorm, GradAccumulator } from "../train/grad-utils.js";
import { maskedCrossEntropy } from "../train/loss.js";
import { lrAt, validateSchedule, type ScheduleName } from "../train/schedule.js";
import { createRng, type Rng } from "../util/rng.js";

export const AVERAGING_INTERVALS = ["epoch", "step"] as const;
export type AveragingInterval = (typeof AVERAGING_INTERVALS)[number];

/** What is trained: `size` rows an epoch, and optionally a check of the weights after each epoch. */
export interface TrainTask {
  /** Rows per epoch. */
  size: number;
  /** Row i as it is trained this epoch; `rng` is the epoch's seeded generator (augmentation draws). */
  row(i: number, rng: Rng): EncodedRow;
  /** Percent success of the weights after an epoch; absent: no check (SFT). */
  check?: (weights: Map<string, tf.Tensor>) => Promise<number>;
}

/** Benign rows mixed into every micro-batch (see the file comment). */
export interface BenignMix {
  rows: readonly BenignRow[];
  /** Benign rows added to each micro-batch. */
  perMicroBatch: number;
  /** β, the benign rows' share of the loss (0 ≤ β < 1). */
  proportion: number;
  /** α, the weight of the KL term; rows need their `target` when > 0. */
  klWeight: number;
}

export interface TrainConfig {
  epochs: number;
  learningRate: number;
  weightDecay: number;
  batchSize: number;
  /** micro-batches per optimizer step */
  gradientAccumulation: number;
  schedule: ScheduleName;
  warmupSteps: number;
  maxGradNorm: number;
  /** forgetting regularizer λ */
  lambda: number;
  /** when λ applies: after each epoch (the reference) or after each optimizer step */
  averagingInterval: AveragingInterval;
  earlyStopLoss: number;
  /** percent (Infinity: never stop on success) */
  stopAtSuccess: number;
  seed: number;
  padId: number;
  benign?: BenignMix;
}

export type TrainEvent =
  | { type: "epoch-start"; epoch: number; epochs: number; microBatches: number }
  | {
      type: "micro-batch";
      epoch: number;
      done: number;
      total: number;
      tokens: number;
      seconds: number;
      /** this micro-batch's task loss, and the running mean over the epoch so far */
      loss: number;
      meanLoss: number;
    }
  | { type: "step"; epoch: number; step: number; lr: number; loss: number; gradNorm?: number }
  | {
      type: "epoch-end";
      epoch: number;
      /** mean task loss over the epoch's micro-batches */
      loss: number;
      /** null without a check */
      successRate: number | null;
      seconds: number;
      best: boolean;
      /** with a benign mix: mean CE on the benign answers, and mean KL when α > 0 */
      benignLoss?: number;
      kl?: number;
    };

export interface TrainState {
  /** epochs completed */
  epoch: number;
  step: number;
  best: { epoch: number; successRate: number | null; loss: number } | null;
}

export interface TrainResult {
  epochsRun: number;
  finalLoss: number;
  best: { epoch: number; successRate: number | null; loss: number };
  stoppedBecause: "success" | "loss" | "epochs";
}

export interface TrainHooks {
  onEvent?: (e: TrainEvent) => void;
  /** after each epoch (weights averaged, best updated): write a checkpoint */
  onCheckpoint?: (state: TrainState, vars: Map<string, tf.Variable>, optimizer: AdamW, best: Map<string, Float32Array> | null) => Promise<void>;
}

/** Weight decay is not applied to norms and biases (as transformers' Trainer does). */
export function isNoDecay(name: string): boolean {
  return /norm/i.test(name) || name.endsWith(".bias");
}

/** A seeded permutation of 0…n−1 (Fisher–Yates). */
function shuffled(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}

const tensors = (b: Batch): { ids: tf.Tensor2D; labels: tf.Tensor2D; mask: tf.Tensor2D } => ({
  ids: tf.tensor2d(b.inputIds, [b.B, b.T], "int32"),
  labels: tf.tensor2d(b.labels, [b.B, b.T], "int32"),
  mask: tf.tensor2d(b.attentionMask, [b.B, b.T], "int32"),
});

/** Loss values of one micro-batch, read while the loss is built (one sync point each). */
interface Parts {
  task: number;
  benign: number;
  kl: number;
}

/**
 * Train `vars` (the model's float weights as variables, by HF name) on the task.
 * `anchor` is w0 for averaging (null: none). `state`/`optimizer`/`best` may come from a
 * checkpoint (resume).
 */
export async function trainModel(
  model: Model,
  vars: Map<string, tf.Variable>,
  anchor: Map<string, Float32Array> | null,
  task: TrainTask,
  cfg: TrainConfig,
  resume: { state: TrainState; optimizer: AdamW; best: Map<string, Float32Array> | null } | null,
  hooks: TrainHooks = {},
): Promise<{ result: TrainResult; best: Map<string, Float32Array> }> {
  const microBatches = Math.ceil(task.size / cfg.batchSize);
  const stepsPerEpoch = Math.ceil(microBatches / cfg.gradientAccumulation);
  const schedule = { schedule: cfg.schedule, baseLr: cfg.learningRate, totalSteps: cfg.epochs * stepsPerEpoch, warmupSteps: cfg.warmupSteps };
  validateSchedule(schedule);
  const optimizer = resume?.optimizer ?? new AdamW({ weightDecay: cfg.weightDecay, noDecay: isNoDecay });
  const state: TrainState = resume?.state ?? { epoch: 0, step: 0, best: null };
  let best = resume?.best ?? null;
  const weights = new Map<string, tf.Tensor>(vars);
  const averaging = anchor !== null && cfg.lambda > 0;
  const mix = cfg.benign && cfg.benign.rows.length > 0 && cfg.benign.perMicroBatch > 0 ? cfg.benign : undefined;
  let epochLoss = Number.NaN;
  let stoppedBecause: TrainResult["stoppedBecause"] = "epochs";

  while (state.epoch < cfg.epochs) {
    const epoch = state.epoch + 1;
    const t0 = performance.now();
    hooks.onEvent?.({ type: "epoch-start", epoch, epochs: cfg.epochs, microBatches });
    // A fresh, seeded order (and augmentation draw) per epoch: resumable without rng state.
    const rng = createRng(cfg.seed * 1000 + epoch);
    const order = shuffled(task.size, rng);
    const benignOrder = mix ? shuffled(mix.rows.length, createRng(cfg.seed * 1000 + epoch + 0x9e3779b)) : [];
    let benignNext = 0;
    const acc = new GradAccumulator();
    let lossSum = 0;
    let benignSum = 0;
    let klSum = 0;
    let tokensSeen = 0;
    let stepLoss = 0;
    let inStep = 0;
    for (let mb = 0; mb < microBatches; mb++) {
      const idx = order.slice(mb * cfg.batchSize, (mb + 1) * cfg.batchSize);
      const batch = collate(
        idx.map((i) => task.row(i, rng)),
        { padId: cfg.padId, side: "right" },
      );
      let benignBatch: Batch | undefined;
      let target: KlTarget | undefined;
      if (mix) {
        const rows = Array.from({ length: mix.perMicroBatch }, () => mix.rows[benignOrder[benignNext++ % benignOrder.length] as number] as BenignRow);
        benignBatch = collate(rows, { padId: cfg.padId, side: "right" });
        if (mix.klWeight > 0) {
          target = collateKlTargets(rows.map((r) => ({ positions: r.positions, target: r.target as KlTarget })), benignBatch.T);
        }
      }
      const remaining = microBatches - Math.floor(mb / cfg.gradientAccumulation) * cfg.gradientAccumulation;
      const inThisStep = Math.min(cfg.gradientAccumulation, remaining);
      const parts: Parts = { task: Number.NaN, benign: 0, kl: 0 };
      const { value, grads } = tf.tidy(() => {
        const main = tensors(batch);
        return tf.variableGrads(() => {
          const taskLoss = maskedCrossEntropy(forward(model, main.ids, { attentionMask: main.mask, weights }), main.labels);
          if (!mix || !benignBatch) {
            return taskLoss;
          }
          parts.task = taskLoss.dataSync()[0] as number;
          const b = tensors(benignBatch);
          const logits = forward(model, b.ids, { attentionMask: b.mask, weights });
          let total = tf.mul(taskLoss, 1 - mix.proportion);
          if (mix.proportion > 0) {
            const ce = maskedCrossEntropy(logits, b.labels);
            parts.benign = ce.dataSync()[0] as number;
            total = tf.add(total, tf.mul(ce, mix.proportion));
          }
          if (target) {
            const kl = klToReference(logits, target);
            parts.kl = kl.dataSync()[0] as number;
            total = tf.add(total, tf.mul(kl, mix.klWeight));
          }
          return total as tf.Scalar;
        }, [...vars.values()]);
      });
      const named = new Map<string, tf.Tensor>();
      for (const [name, v] of vars) {
        const g = grads[v.name];
        if (g) {
          named.set(name, g);
        }
      }
      acc.add(named, 1 / inThisStep);
      tf.dispose(Object.values(grads));
      const total = (await value.data())[0] as number;
      value.dispose();
      const loss = mix ? parts.task : total;
      lossSum += loss;
      benignSum += parts.benign;
      klSum += parts.kl;
      stepLoss += total / inThisStep;
      inStep++;
      tokensSeen += batch.B * batch.T + (benignBatch ? benignBatch.B * benignBatch.T : 0);
      hooks.onEvent?.({ type: "micro-batch", epoch, done: mb + 1, total: microBatches, tokens: tokensSeen, seconds: (performance.now() - t0) / 1000, loss, meanLoss: lossSum / (mb + 1) });
      if (inStep === inThisStep) {
        const lr = lrAt(state.step, schedule);
        // The accumulator keeps factor · sums; AdamW applies the factor and the clipping
        // coefficient as gradScale, so no scaled copy of the gradients is made.
        const { grads: sums, factor } = acc.scaled;
        let gradNorm: number | undefined;
        let coef = 1;
        if (cfg.maxGradNorm > 0) {
          gradNorm = globalNorm(sums) * Math.abs(factor);
          coef = clipCoefficient(gradNorm, cfg.maxGradNorm);
        }
        optimizer.step(vars, sums, lr, { gradScale: factor * coef });
        acc.reset();
        if (averaging && cfg.averagingInterval === "step") {
          averageInto(vars, anchor, cfg.lambda);
        }
        state.step++;
        hooks.onEvent?.({ type: "step", epoch, step: state.step, lr, loss: stepLoss, gradNorm });
        stepLoss = 0;
        inStep = 0;
      }
    }
    acc.dispose();
    epochLoss = lossSum / microBatches;
    if (averaging && cfg.averagingInterval === "epoch") {
      averageInto(vars, anchor, cfg.lambda);
    }
    const successRate = task.check ? await task.check(weights) : null;
    let isBest = true;
    if (successRate !== null) {
      const prev = state.best;
      isBest = !prev || successRate > (prev.successRate ?? -1) || (successRate === prev.successRate && epochLoss < prev.loss);
      if (isBest) {
        best = snapshotWeights(weights, best ?? undefined); // reuses the arrays of the previous best
      }
    }
    if (isBest) {
      state.best = { epoch, successRate, loss: epochLoss };
    }
    state.epoch = epoch;
    hooks.onEvent?.({
      type: "epoch-end",
      epoch,
      loss: epochLoss,
      successRate,
      seconds: (performance.now() - t0) / 1000,
      best: isBest,
      ...(mix ? { benignLoss: benignSum / microBatches, ...(mix.klWeight > 0 ? { kl: klSum / microBatches } : {}) } : {}),
    });
    await hooks.onCheckpoint?.(state, vars, optimizer, best);
    if (successRate !== null && successRate >= cfg.stopAtSuccess) {
      stoppedBecause = "success";
      break;
    }
    if (epochLoss < cfg.earlyStopLoss) {
      stoppedBecause = "loss";
      break;
    }
  }
  optimizer.dispose();
  if (!task.check || !best || !state.best) {
    best = snapshotWeights(weights); // without a check, the last weights
  }
  return {
    result: { epochsRun: state.epoch, finalLoss: epochLoss, best: state.best ?? { epoch: state.epoch, successRate: null, loss: epochLoss }, stoppedBecause },
    best,
  };
}
