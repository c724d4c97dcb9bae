/**
 * The fingerprint training loop (docs/oml-reference.md §3, with its traps fixed):
 * full-batch-by-default AdamW on the masked response loss, weight averaging toward w0 after
 * each epoch, a check of every training fingerprint after each epoch, stop at the target
 * success rate or below the early-stop loss, and keep the best weights seen (highest success,
 * then lowest loss). Reports progress as events; never prints.
 */
import * as tf from "@tensorflow/tfjs-core";
import { checkFingerprints } from "../check/check-fingerprints.js";
import { forward } from "../model/forward.js";
import { generate } from "../model/generate.js";
import type { Model } from "../model/load-model.js";
import { AdamW } from "../train/adamw.js";
import { averageInto, snapshotWeights } from "../train/averaging.js";
import { clipByGlobalNorm, GradAccumulator } from "../train/grad-utils.js";
import { maskedCrossEntropy } from "../train/loss.js";
import { lrAt, validateSchedule, type ScheduleName } from "../train/schedule.js";
import { collate, encodeExample, type FingerprintExample, type PromptMode, type TokenizerLike } from "../train/data.js";
import { createRng } from "../util/rng.js";

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
  earlyStopLoss: number;
  /** percent */
  stopAtSuccess: number;
  seed: number;
  /** prompt mode while training: the plain "{}" template, or chat */
  mode: PromptMode;
  /** with augmentation: templates drawn at random per example per epoch */
  augmentationTemplates?: readonly string[];
  padId: number;
}

export type TrainEvent =
  | { type: "epoch-start"; epoch: number; epochs: number; microBatches: number }
  | { type: "micro-batch"; epoch: number; done: number; total: number; tokens: number; seconds: number }
  | { type: "step"; epoch: number; step: number; lr: number; loss: number; gradNorm?: number }
  | { type: "epoch-end"; epoch: number; loss: number; successRate: number; seconds: number; best: boolean };

export interface TrainState {
  /** epochs completed */
  epoch: number;
  step: number;
  best: { epoch: number; successRate: number; loss: number } | null;
}

export interface TrainResult {
  epochsRun: number;
  finalLoss: number;
  best: { epoch: number; successRate: number; loss: number };
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

/** Greedy check of the training fingerprints under the training prompt mode. */
async function trainingSuccess(model: Model, vars: Map<string, tf.Variable>, tok: TokenizerLike, examples: readonly FingerprintExample[], mode: PromptMode, padId: number, batchSize: number): Promise<number> {
  const weights = new Map<string, tf.Tensor>(vars);
  const view: Model = { ...model, weights };
  const [res] = await checkFingerprints({
    examples,
    tokenizer: tok,
    modes: [mode],
    batchSize,
    generate: (prompts, n) => generate(view, prompts, { maxNewTokens: n, eosIds: [], padId }),
  });
  return res?.successRate ?? 0;
}

/**
 * Train `vars` (the model's float weights as variables, by HF name) on the examples.
 * `state`/`optimizer`/`best` may come from a checkpoint (resume).
 */
export async function trainFingerprints(
  model: Model,
  vars: Map<string, tf.Variable>,
  anchor: Map<string, Float32Array> | null,
  tok: TokenizerLike,
  examples: readonly FingerprintExample[],
  cfg: TrainConfig,
  resume: { state: TrainState; optimizer: AdamW; best: Map<string, Float32Array> | null } | null,
  hooks: TrainHooks = {},
): Promise<{ result: TrainResult; best: Map<string, Float32Array> }> {
  const microBatches = Math.ceil(examples.length / cfg.batchSize);
  const stepsPerEpoch = Math.ceil(microBatches / cfg.gradientAccumulation);
  const schedule = { schedule: cfg.schedule, baseLr: cfg.learningRate, totalSteps: cfg.epochs * stepsPerEpoch, warmupSteps: cfg.warmupSteps };
  validateSchedule(schedule);
  const optimizer = resume?.optimizer ?? new AdamW({ weightDecay: cfg.weightDecay, noDecay: isNoDecay });
  const state: TrainState = resume?.state ?? { epoch: 0, step: 0, best: null };
  let best = resume?.best ?? null;
  const weights = new Map<string, tf.Tensor>(vars);
  let epochLoss = Number.NaN;
  let stoppedBecause: TrainResult["stoppedBecause"] = "epochs";

  while (state.epoch < cfg.epochs) {
    const epoch = state.epoch + 1;
    const t0 = performance.now();
    hooks.onEvent?.({ type: "epoch-start", epoch, epochs: cfg.epochs, microBatches });
    // A fresh, seeded order (and augmentation draw) per epoch: resumable without rng state.
    const rng = createRng(cfg.seed * 1000 + epoch);
    const order = examples.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    const acc = new GradAccumulator();
    let lossSum = 0;
    let tokensSeen = 0;
    let stepLoss = 0;
    let inStep = 0;
    for (let mb = 0; mb < microBatches; mb++) {
      const idx = order.slice(mb * cfg.batchSize, (mb + 1) * cfg.batchSize);
      const rows = idx.map((i) => {
        const ex = examples[i] as FingerprintExample;
        if (cfg.augmentationTemplates && cfg.augmentationTemplates.length > 0 && cfg.mode.kind === "template") {
          // The plain key is one of the choices, so the plain check keeps working.
          const k = rng.int(cfg.augmentationTemplates.length + 1);
          const template = k === 0 ? "{}" : (cfg.augmentationTemplates[k - 1] as string);
          return encodeExample(tok, ex, { kind: "template", template });
        }
        return encodeExample(tok, ex, cfg.mode);
      });
      const batch = collate(rows, { padId: cfg.padId, side: "right" });
      const remaining = microBatches - Math.floor(mb / cfg.gradientAccumulation) * cfg.gradientAccumulation;
      const inThisStep = Math.min(cfg.gradientAccumulation, remaining);
      const { value, grads } = tf.tidy(() => {
        const ids = tf.tensor2d(batch.inputIds, [batch.B, batch.T], "int32");
        const labels = tf.tensor2d(batch.labels, [batch.B, batch.T], "int32");
        const mask = tf.tensor2d(batch.attentionMask, [batch.B, batch.T], "int32");
        return tf.variableGrads(() => maskedCrossEntropy(forward(model, ids, { attentionMask: mask, weights }), labels), [...vars.values()]);
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
      const loss = (await value.data())[0] as number;
      value.dispose();
      lossSum += loss;
      stepLoss += loss / inThisStep;
      inStep++;
      tokensSeen += batch.B * batch.T;
      hooks.onEvent?.({ type: "micro-batch", epoch, done: mb + 1, total: microBatches, tokens: tokensSeen, seconds: (performance.now() - t0) / 1000 });
      if (inStep === inThisStep) {
        const lr = lrAt(state.step, schedule);
        let g = acc.grads;
        let gradNorm: number | undefined;
        let clipped: Map<string, tf.Tensor> | undefined;
        if (cfg.maxGradNorm > 0) {
          const c = clipByGlobalNorm(g, cfg.maxGradNorm);
          clipped = c.grads;
          g = c.grads;
          gradNorm = c.norm;
        }
        optimizer.step(vars, g, lr);
        if (clipped) {
          tf.dispose([...clipped.values()]);
        }
        acc.reset();
        state.step++;
        hooks.onEvent?.({ type: "step", epoch, step: state.step, lr, loss: stepLoss, gradNorm });
        stepLoss = 0;
        inStep = 0;
      }
    }
    acc.dispose();
    epochLoss = lossSum / microBatches;
    if (anchor && cfg.lambda > 0) {
      averageInto(vars, anchor, cfg.lambda);
    }
    const successRate = await trainingSuccess(model, vars, tok, examples, cfg.mode, cfg.padId, Math.max(cfg.batchSize, 64));
    const isBest = !state.best || successRate > state.best.successRate || (successRate === state.best.successRate && epochLoss < state.best.loss);
    if (isBest) {
      state.best = { epoch, successRate, loss: epochLoss };
      best = snapshotWeights(weights);
    }
    state.epoch = epoch;
    hooks.onEvent?.({ type: "epoch-end", epoch, loss: epochLoss, successRate, seconds: (performance.now() - t0) / 1000, best: isBest });
    await hooks.onCheckpoint?.(state, vars, optimizer, best);
    if (successRate >= cfg.stopAtSuccess) {
      stoppedBecause = "success";
      break;
    }
    if (epochLoss < cfg.earlyStopLoss) {
      stoppedBecause = "loss";
      break;
    }
  }
  optimizer.dispose();
  if (!best || !state.best) {
    best = snapshotWeights(weights);
  }
  return {
    result: { epochsRun: state.epoch, finalLoss: epochLoss, best: state.best ?? { epoch: state.epoch, successRate: 0, loss: epochLoss }, stoppedBecause },
    best,
  };
}
