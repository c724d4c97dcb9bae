/**
 * The training loop of `oml-finetune`, for fingerprints and for ordinary SFT alike
 * (docs/oml-reference.md §3, with its traps fixed): AdamW on the masked response loss,
 * full-batch by default (gradients accumulated over every micro-batch of an epoch), weight
 * averaging toward w0 after each epoch or each optimizer step, an optional check after each
 * epoch (fingerprints: the greedy success rate), stop at the target success rate or below the
 * early-stop loss, and keep the best weights seen (highest success, then lowest loss; the
 * last weights when there is no check): an epoch's weights are saved (best-weights.ts) only
 * when it is the best so far and not the last, and restored into the variables at the end
 * when a later epoch was worse. Reports progress as events; never prints.
 *
 * With a benign mix, every micro-batch of task rows gets `perMicroBatch` benign rows (ordinary
 * prompts answered by the base model, quality/benign-rows.ts), run as a second forward, and
 * the loss becomes
 *   (1 − β)·CE(task rows) + β·CE(benign answers) + α·KL_k(base ‖ current on benign answers)
 * with β = `proportion`, α = `klWeight` (quality/kl-loss.ts). β = 0 with α > 0 uses the
 * benign rows for the KL term only. The epoch loss that early stopping and best-keeping read
 * is the task loss alone.
 *
 * With `workers` > 0 (and no benign mix), every micro-batch's rows are split over the main
 * thread and that many worker threads (micro-batch-gradients.ts); the optimizer stays on the
 * main thread, which publishes the weights to the workers after each change of them.
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";
import type { Model } from "../model/load-model.js";
import { createDataParallel, disposeDataParallel, type DataParallel } from "../parallel/data-parallel.js";
import type { BenignRow } from "../quality/benign-rows.js";
import { collateKlTargets, type KlTarget } from "../quality/kl-loss.js";
import { AdamW } from "../train/adamw.js";
import { averageToward, type Anchor } from "../train/anchor.js";
import { collate, type EncodedRow } from "../train/data.js";
import { clipCoefficient, globalNorm, GradAccumulator } from "../train/grad-utils.js";
import { lrAt, validateSchedule, type ScheduleName } from "../train/schedule.js";
import { createRng, type Rng } from "../util/rng.js";
import { bestWeightsInMemory, type BestWeights } from "./best-weights.js";
import { localGradients, parallelGradients, type BenignPart } from "./micro-batch-gradients.js";

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
  /**
   * Worker threads that compute gradients beside the main thread, each on a share of every
   * micro-batch's rows (parallel/data-parallel.ts); 0 or absent: the main thread alone.
   * Only without a benign mix (with one, the main thread computes alone), and only on the
   * wasm and cpu backends. Changes float32 rounding only.
   */
  workers?: number;
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
  /** why the run stopped before its last epoch (a run resumed from this state stops too) */
  stopped?: "success" | "loss";
  /** the last completed epoch's mean task loss (a run resumed after its last epoch reports it) */
  loss?: number;
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
  onCheckpoint?: (state: TrainState, vars: Map<string, tf.Variable>, optimizer: AdamW) => Promise<void>;
  /** where the best epoch's weights are kept while later epochs train (default: in memory) */
  best?: BestWeights;
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

/**
 * Train `vars` (the model's float weights as variables, by HF name) on the task; on return
 * they hold the best weights seen. `anchor` is w0 for averaging (null: none), in memory or in
 * the model's files (train/anchor.ts). `state` and `optimizer` may come from a checkpoint
 * (resume; the best epoch's weights then come from `hooks.best`).
 */
export async function trainModel(
  model: Model,
  vars: Map<string, tf.Variable>,
  anchor: Anchor | null,
  task: TrainTask,
  cfg: TrainConfig,
  resume: { state: TrainState; optimizer: AdamW } | null,
  hooks: TrainHooks = {},
): Promise<{ result: TrainResult }> {
  const microBatches = Math.ceil(task.size / cfg.batchSize);
  const stepsPerEpoch = Math.ceil(microBatches / cfg.gradientAccumulation);
  const schedule = { schedule: cfg.schedule, baseLr: cfg.learningRate, totalSteps: cfg.epochs * stepsPerEpoch, warmupSteps: cfg.warmupSteps };
  validateSchedule(schedule);
  const workers = cfg.workers ?? 0;
  if (!Number.isInteger(workers) || workers < 0) {
    throw new InputError(`trainModel: workers = ${workers} must be a whole number ≥ 0`);
  }
  const optimizer = resume?.optimizer ?? new AdamW({ weightDecay: cfg.weightDecay, noDecay: isNoDecay });
  const state: TrainState = resume?.state ?? { epoch: 0, step: 0, best: null };
  const best = hooks.best ?? bestWeightsInMemory();
  const weights = new Map<string, tf.Tensor>(vars);
  const averaging = anchor !== null && cfg.lambda > 0;
  const mix = cfg.benign && cfg.benign.rows.length > 0 && cfg.benign.perMicroBatch > 0 ? cfg.benign : undefined;
  let epochLoss = resume?.state.loss ?? Number.NaN;
  let stoppedBecause: TrainResult["stoppedBecause"] = state.stopped ?? "epochs";
  const acc = new GradAccumulator();
  let dp: DataParallel | null = null;
  try {
    if (workers > 0 && !mix) {
      const backend = tf.getBackend();
      if (backend !== "wasm" && backend !== "cpu") {
        throw new InputError(`trainModel: worker threads need the wasm or cpu backend, not ${backend}`, { hint: "use --workers 0 (the tensorflow backend uses every core itself)" });
      }
      // The workers' replicas are copies of `vars` as they are now (resumed weights included).
      dp = await createDataParallel({ model, vars, workers, backend });
    }
    /** Publish the weights to the workers after every change (optimizer step, averaging). */
    const weightsChanged = (): void => dp?.setWeights(vars);

    while (state.epoch < cfg.epochs && !state.stopped) {
      const epoch = state.epoch + 1;
      const t0 = performance.now();
      hooks.onEvent?.({ type: "epoch-start", epoch, epochs: cfg.epochs, microBatches });
      // A fresh, seeded order (and augmentation draw) per epoch: resumable without rng state.
      const rng = createRng(cfg.seed * 1000 + epoch);
      const order = shuffled(task.size, rng);
      const benignOrder = mix ? shuffled(mix.rows.length, createRng(cfg.seed * 1000 + epoch + 0x9e3779b)) : [];
      let benignNext = 0;
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
        let benign: BenignPart | undefined;
        if (mix) {
          const rows = Array.from({ length: mix.perMicroBatch }, () => mix.rows[benignOrder[benignNext++ % benignOrder.length] as number] as BenignRow);
          const benignBatch = collate(rows, { padId: cfg.padId, side: "right" });
          const target = mix.klWeight > 0 ? collateKlTargets(rows.map((r) => ({ positions: r.positions, target: r.target as KlTarget })), benignBatch.T) : undefined;
          benign = { batch: benignBatch, proportion: mix.proportion, klWeight: mix.klWeight, target };
        }
        const remaining = microBatches - Math.floor(mb / cfg.gradientAccumulation) * cfg.gradientAccumulation;
        const inThisStep = Math.min(cfg.gradientAccumulation, remaining);
        const g = dp ? await parallelGradients(dp, batch) : await localGradients(model, vars, batch, benign);
        try {
          acc.add(g.grads, 1 / inThisStep);
        } finally {
          tf.dispose([...g.grads.values()]);
        }
        lossSum += g.task;
        benignSum += g.benign;
        klSum += g.kl;
        stepLoss += g.total / inThisStep;
        inStep++;
        tokensSeen += batch.B * batch.T + (benign ? benign.batch.B * benign.batch.T : 0);
        hooks.onEvent?.({ type: "micro-batch", epoch, done: mb + 1, total: microBatches, tokens: tokensSeen, seconds: (performance.now() - t0) / 1000, loss: g.task, meanLoss: lossSum / (mb + 1) });
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
            await averageToward(vars, anchor, cfg.lambda);
          }
          weightsChanged();
          state.step++;
          hooks.onEvent?.({ type: "step", epoch, step: state.step, lr, loss: stepLoss, gradNorm });
          stepLoss = 0;
          inStep = 0;
        }
      }
      epochLoss = lossSum / microBatches;
      if (averaging && cfg.averagingInterval === "epoch") {
        await averageToward(vars, anchor, cfg.lambda);
        weightsChanged();
      }
      const successRate = task.check ? await task.check(weights) : null;
      const stop = successRate !== null && successRate >= cfg.stopAtSuccess ? "success" : epochLoss < cfg.earlyStopLoss ? "loss" : null;
      let isBest = true;
      if (successRate !== null) {
        const prev = state.best;
        isBest = !prev || successRate > (prev.successRate ?? -1) || (successRate === prev.successRate && epochLoss < prev.loss);
        if (isBest && stop === null && epoch < cfg.epochs) {
          await best.save(epoch, weights); // a later epoch may be worse (the last one's weights are the variables)
        }
      }
      if (isBest) {
        state.best = { epoch, successRate, loss: epochLoss };
      }
      state.epoch = epoch;
      state.loss = epochLoss;
      if (stop !== null) {
        state.stopped = stop;
      }
      hooks.onEvent?.({
        type: "epoch-end",
        epoch,
        loss: epochLoss,
        successRate,
        seconds: (performance.now() - t0) / 1000,
        best: isBest,
        ...(mix ? { benignLoss: benignSum / microBatches, ...(mix.klWeight > 0 ? { kl: klSum / microBatches } : {}) } : {}),
      });
      await hooks.onCheckpoint?.(state, vars, optimizer);
      await best.discard(state.best?.epoch); // after the checkpoint that names the best epoch
      if (stop !== null) {
        stoppedBecause = stop;
        break;
      }
    }
  } finally {
    // Every path, a throw included: the accumulator's sums, the optimizer state, the workers.
    acc.dispose();
    optimizer.dispose();
    if (dp) {
      await disposeDataParallel(dp);
    }
  }

  // Without a check the last weights are the best; with one, a worse last epoch gives way.
  if (task.check && state.best && state.best.epoch !== state.epoch) {
    await best.restore(state.best.epoch, vars);
  }
  await best.discard();
  return {
    result: { epochsRun: state.epoch, finalLoss: epochLoss, best: state.best ?? { epoch: state.epoch, successRate: null, loss: epochLoss }, stoppedBecause },
  };
}
