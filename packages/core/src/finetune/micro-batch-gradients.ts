/**
 * The gradients of one micro-batch, as train-model.ts accumulates them: on the main thread
 * (with or without a benign mix), or split over the main thread and worker threads
 * (parallel/data-parallel.ts; task rows only). Both return the loss values the loop reports
 * and the gradients by HF name, which the caller disposes.
 *
 * Split over threads, the micro-batch's rows become one gradient job per thread
 * (splitBatch, with the whole micro-batch's counted tokens as every job's denominator), so
 * the jobs' losses and gradients sum to the micro-batch's mean loss and its gradient: the
 * same numbers as one thread up to float32 rounding (the per-job sums are added in a fixed
 * order, so a seed and a worker count give the same result every run).
 */
import * as tf from "@tensorflow/tfjs-core";
import { forward } from "../model/forward.js";
import type { Model } from "../model/load-model.js";
import type { DataParallel } from "../parallel/data-parallel.js";
import { splitBatch } from "../parallel/gradient-job.js";
import { klToReference, type KlTarget } from "../quality/kl-loss.js";
import type { Batch } from "../train/data.js";
import { maskedCrossEntropy } from "../train/loss.js";

/** Loss values of one micro-batch and its gradients by HF name (the caller disposes them). */
export interface MicroBatchGradients {
  /** the loss that was differentiated (task loss, or the mixed loss with benign rows) */
  total: number;
  /** the task rows' mean cross-entropy */
  task: number;
  /** with a benign mix: CE on the benign answers (0 without β), and the KL term (0 without α) */
  benign: number;
  kl: number;
  grads: Map<string, tf.Tensor>;
}

/** The benign part of a micro-batch (train-model.ts's BenignMix, resolved for this micro-batch). */
export interface BenignPart {
  batch: Batch;
  /** β and α */
  proportion: number;
  klWeight: number;
  /** the base model's top-k at the answer positions, when α > 0 */
  target?: KlTarget;
}

const tensors = (b: Batch): { ids: tf.Tensor2D; labels: tf.Tensor2D; mask: tf.Tensor2D } => ({
  ids: tf.tensor2d(b.inputIds, [b.B, b.T], "int32"),
  labels: tf.tensor2d(b.labels, [b.B, b.T], "int32"),
  mask: tf.tensor2d(b.attentionMask, [b.B, b.T], "int32"),
});

/**
 * On this thread: (1 − β)·CE(task rows) + β·CE(benign answers) + α·KL_k(base ‖ current), or
 * CE(task rows) alone without `benign`.
 */
export async function localGradients(model: Model, vars: Map<string, tf.Variable>, batch: Batch, benign?: BenignPart): Promise<MicroBatchGradients> {
  const weights = new Map<string, tf.Tensor>(vars);
  const parts = { task: Number.NaN, benign: 0, kl: 0 };
  const { value, grads } = tf.tidy(() => {
    const main = tensors(batch);
    return tf.variableGrads(() => {
      const taskLoss = maskedCrossEntropy(forward(model, main.ids, { attentionMask: main.mask, weights }), main.labels);
      if (!benign) {
        return taskLoss;
      }
      parts.task = taskLoss.dataSync()[0] as number;
      const b = tensors(benign.batch);
      const logits = forward(model, b.ids, { attentionMask: b.mask, weights });
      let total = tf.mul(taskLoss, 1 - benign.proportion);
      if (benign.proportion > 0) {
        const ce = maskedCrossEntropy(logits, b.labels);
        parts.benign = ce.dataSync()[0] as number;
        total = tf.add(total, tf.mul(ce, benign.proportion));
      }
      if (benign.target) {
        const kl = klToReference(logits, benign.target);
        parts.kl = kl.dataSync()[0] as number;
        total = tf.add(total, tf.mul(kl, benign.klWeight));
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
  let total: number;
  try {
    total = (await value.data())[0] as number;
  } catch (err) {
    tf.dispose(Object.values(grads));
    throw err;
  } finally {
    value.dispose();
  }
  return { total, task: benign ? parts.task : total, benign: parts.benign, kl: parts.kl, grads: named };
}

/** Split over `dp`'s threads: the task rows only (the loss is their mean cross-entropy). */
export async function parallelGradients(dp: DataParallel, batch: Batch): Promise<MicroBatchGradients> {
  const { loss, grads } = await dp.gradients(splitBatch(batch, dp.threads));
  return { total: loss, task: loss, benign: 0, kl: 0, grads };
}
