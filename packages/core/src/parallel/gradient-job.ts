/**
 * Gradient jobs: the unit of work data parallelism spreads over threads. A job is a padded
 * batch and the factor its summed cross-entropy is scaled by:
 *   loss_j = weight_j · Σ_{counted tokens of j} CE / denominator_j
 * With denominator_j = the job's own counted tokens (the default) a job is a micro-batch
 * averaged as train-model.ts does (weight 1/accumulation); with the counted tokens of a
 * whole micro-batch, the jobs of splitBatch() sum to that micro-batch's mean loss, so
 * splitting it over threads changes nothing but float rounding.
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";
import { forward } from "../model/forward.js";
import type { Model } from "../model/load-model.js";
import type { Batch } from "../train/data.js";
import { IGNORE_INDEX, maskedCrossEntropy } from "../train/loss.js";

export interface GradientJob {
  batch: Batch;
  /** multiplies the job's loss (default 1) */
  weight?: number;
  /** divides the job's summed cross-entropy (default: its own counted tokens) */
  denominator?: number;
}

/** Tokens whose loss counts: positions t with labels[b, t + 1] ≠ IGNORE_INDEX (the shift of loss.ts). */
export function countedTokens(batch: Batch): number {
  let n = 0;
  for (let b = 0; b < batch.B; b++) {
    for (let t = 0; t + 1 < batch.T; t++) {
      if (batch.labels[b * batch.T + t + 1] !== IGNORE_INDEX) {
        n++;
      }
    }
  }
  return n;
}

/** What maskedCrossEntropy's mean is multiplied by for `job`. */
export function jobScale(job: GradientJob): number {
  const count = countedTokens(job.batch);
  const denominator = job.denominator ?? count;
  if (!(denominator > 0) && count > 0) {
    throw new InputError(`gradient job: denominator ${denominator} must be positive`);
  }
  return count === 0 ? 0 : ((job.weight ?? 1) * count) / denominator;
}

/**
 * Split a micro-batch's rows into `parts` jobs (as even as the rows allow) whose losses sum
 * to the micro-batch's mean loss times `weight`.
 */
export function splitBatch(batch: Batch, parts: number, weight = 1): GradientJob[] {
  const denominator = countedTokens(batch);
  const jobs: GradientJob[] = [];
  const n = Math.min(parts, batch.B);
  for (let p = 0, start = 0; p < n; p++) {
    const rows = Math.floor(batch.B / n) + (p < batch.B % n ? 1 : 0);
    const range = (a: Int32Array): Int32Array => a.slice(start * batch.T, (start + rows) * batch.T);
    jobs.push({ batch: { inputIds: range(batch.inputIds), labels: range(batch.labels), attentionMask: range(batch.attentionMask), B: rows, T: batch.T }, weight, denominator });
    start += rows;
  }
  return jobs;
}

/**
 * Loss and summed gradients of `jobs` on this thread's backend.
 * @param model the model (config; weights not in `vars` come from model.weights)
 * @param vars the trainable variables by HF name
 * @returns the summed loss, each job's loss, and the gradient sums by name (the caller disposes them)
 */
export function jobGradients(model: Model, vars: Map<string, tf.Variable>, jobs: readonly GradientJob[]): { loss: number; losses: number[]; grads: Map<string, tf.Tensor> } {
  const byTfName = new Map([...vars].map(([name, v]) => [v.name, name]));
  const weights = new Map<string, tf.Tensor>(vars);
  const sums = new Map<string, tf.Tensor>();
  const losses: number[] = [];
  try {
    for (const job of jobs) {
      const scale = jobScale(job);
      const { B, T } = job.batch;
      const { value, grads } = tf.tidy(() => {
        const ids = tf.tensor2d(job.batch.inputIds, [B, T], "int32");
        const labels = tf.tensor2d(job.batch.labels, [B, T], "int32");
        const mask = tf.tensor2d(job.batch.attentionMask, [B, T], "int32");
        return tf.variableGrads(() => tf.mul(maskedCrossEntropy(forward(model, ids, { attentionMask: mask, weights }), labels), scale) as tf.Scalar, [...vars.values()]);
      });
      losses.push(value.dataSync()[0] as number);
      value.dispose();
      for (const [tfName, g] of Object.entries(grads)) {
        const name = byTfName.get(tfName) as string;
        const prev = sums.get(name);
        if (prev) {
          sums.set(name, tf.add(prev, g));
          tf.dispose([prev, g]);
        } else {
          sums.set(name, g);
        }
      }
    }
  } catch (err) {
    tf.dispose([...sums.values()]);
    throw err;
  }
  return { loss: losses.reduce((a, l) => a + l, 0), losses, grads: sums };
}
