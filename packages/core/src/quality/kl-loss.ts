/**
 * KL(reference ‖ current) per position, from the reference's top-k next tokens, as a loss:
 * the Chain & Hash-style regularizer that keeps a fine-tuned model's next-token distributions
 * close to the base model's on benign text.
 *
 * Storing the base model's full distribution per position costs V floats (128 KiB at a 32k
 * vocabulary); we keep its k most likely tokens S and the mass left over, and measure the KL
 * between the two distributions coarsened to S ∪ {rest}:
 *
 *   KL_k(p ‖ q) = Σ_{i∈S} p_i·(log p_i − log q_i) + p_r·(log p_r − log q_r)
 *   p_r = 1 − Σ_S p_i,   q_r = Σ_{j∉S} q_j,   q = softmax(x)
 *
 * This is a true KL (of the coarsened distributions), ≥ 0, 0 iff q agrees with p on S and on
 * the rest's total, never more than the full KL (data-processing inequality), and equal to it
 * when k = V. Its gradient has a closed form, dKL/dx_j = q_j − p̃_j with the target
 *   p̃_j = p_j for j ∈ S,   p̃_j = q_j · p_r / q_r outside S
 * (the rest's mass spread like q spreads it): the same shape as cross-entropy's p − onehot.
 * Forward and backward run in float64 in JS over the counted rows only; q_r is summed
 * directly over j ∉ S (not as 1 − Σ_S q, which cancels).
 *
 * Memory: a target costs k·8 + 4 bytes per position (k int32 ids, k float32 log-probs and the
 * rest mass): 520 bytes at k = 64, against 4·V for the full distribution.
 *
 * Shape letters: B batch, T time, V vocabulary, N = B·T, R counted positions, k top tokens.
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";

/** The reference's top-k next-token distribution at R positions. */
export interface KlTarget {
  /** Flattened positions n = b·T + t of the (B, T, V) logits that carry a target, (R). */
  rows: Int32Array;
  /** Tokens kept per position. */
  k: number;
  /** (R, k) the reference's k most likely next tokens per position. */
  indices: Int32Array;
  /** (R, k) their log-probabilities under the reference. */
  logProbs: Float32Array;
  /** (R) the reference's probability mass outside the k tokens (0 when k = V). */
  rest: Float32Array;
}

/** Smallest rest mass of the current model used in a log (keeps a vanished rest finite). */
const TINY = 1e-30;

/**
 * The reference's top-k at each row of `logits` (one forward of the base model, computed once
 * before training).
 * @param logits (R, V) the reference's logits at the positions to regularize
 * @param k tokens to keep per position (capped at V)
 * @returns indices, log-probabilities and rest mass, row-major; `rows` is 0..R−1 (reindex
 *   with `klTargetRows` when collating into a batch)
 */
export function referenceTopK(logits: tf.Tensor2D, k: number): KlTarget {
  if (logits.rank !== 2) {
    throw new InputError(`referenceTopK: logits must be (R, V), got (${logits.shape.join(", ")})`);
  }
  if (!Number.isInteger(k) || k < 1) {
    throw new InputError(`referenceTopK: k = ${k} must be a positive whole number`, { hint: "--kl-top-k takes a whole number ≥ 1" });
  }
  const [R, V] = logits.shape;
  const kk = Math.min(k, V);
  const [values, indices, lse] = tf.tidy(() => {
    const top = tf.topk(logits, kk, true);
    return [top.values, top.indices, tf.logSumExp(logits, -1)];
  });
  const v = values.dataSync() as Float32Array;
  const idx = Int32Array.from(indices.dataSync() as Int32Array);
  const z = lse.dataSync() as Float32Array;
  tf.dispose([values, indices, lse]);
  const logProbs = new Float32Array(R * kk);
  const rest = new Float32Array(R);
  for (let r = 0; r < R; r++) {
    let kept = 0;
    for (let i = 0; i < kk; i++) {
      const lp = (v[r * kk + i] as number) - (z[r] as number);
      logProbs[r * kk + i] = lp;
      kept += Math.exp(lp);
    }
    rest[r] = kk === V ? 0 : Math.max(0, 1 - kept);
  }
  return { rows: Int32Array.from({ length: R }, (_, r) => r), k: kk, indices: idx, logProbs, rest };
}

/**
 * Per-row loss and (optionally) gradient rows in float64, over the counted rows of x (N, V).
 * With `grad`, writes scale·(q − p̃) into grad's counted rows.
 */
function klRows(x: Float32Array, V: number, target: KlTarget, grad?: { out: Float32Array; scale: number }): number {
  const { rows, k, indices, logProbs, rest } = target;
  const inS = new Uint8Array(V);
  const logq = new Float64Array(V);
  let total = 0;
  for (let r = 0; r < rows.length; r++) {
    const o = (rows[r] as number) * V;
    let m = -Infinity;
    for (let j = 0; j < V; j++) {
      m = Math.max(m, x[o + j] as number);
    }
    let z = 0;
    for (let j = 0; j < V; j++) {
      z += Math.exp((x[o + j] as number) - m);
    }
    const lse = m + Math.log(z);
    for (let j = 0; j < V; j++) {
      logq[j] = (x[o + j] as number) - lse;
    }
    for (let i = 0; i < k; i++) {
      inS[indices[r * k + i] as number] = 1;
    }
    let qRest = 0;
    for (let j = 0; j < V; j++) {
      if (!inS[j]) {
        qRest += Math.exp(logq[j] as number);
      }
    }
    const pRest = rest[r] as number;
    let kl = 0;
    for (let i = 0; i < k; i++) {
      const lp = logProbs[r * k + i] as number;
      kl += Math.exp(lp) * (lp - (logq[indices[r * k + i] as number] as number));
    }
    if (pRest > 0) {
      kl += pRest * (Math.log(pRest) - Math.log(Math.max(qRest, TINY)));
    }
    total += kl;
    if (grad) {
      const ratio = pRest > 0 ? pRest / Math.max(qRest, TINY) : 0;
      for (let j = 0; j < V; j++) {
        const q = Math.exp(logq[j] as number);
        grad.out[o + j] = inS[j] ? grad.scale * q : grad.scale * q * (1 - ratio);
      }
      for (let i = 0; i < k; i++) {
        const j = indices[r * k + i] as number;
        grad.out[o + j] = (grad.out[o + j] as number) - grad.scale * Math.exp(logProbs[r * k + i] as number);
      }
    }
    for (let i = 0; i < k; i++) {
      inS[indices[r * k + i] as number] = 0;
    }
  }
  return total;
}

/**
 * Mean over the target's positions of KL_k(reference ‖ softmax(logits)) (see the file
 * comment), differentiable with respect to the logits (analytic gradient). Reads the logits
 * synchronously.
 * @param logits (B, T, V) float32, the current model's output
 * @param target the reference's top-k at positions `target.rows` of the flattened (B·T) logits
 * @returns a scalar; 0 when the target has no position
 */
export function klToReference(logits: tf.Tensor, target: KlTarget): tf.Scalar {
  if (logits.rank !== 3) {
    throw new InputError(`klToReference: logits must be (B, T, V), got (${logits.shape.join(", ")})`);
  }
  const [B, T, V] = logits.shape as [number, number, number];
  const R = target.rows.length;
  if (target.indices.length !== R * target.k || target.logProbs.length !== R * target.k || target.rest.length !== R) {
    throw new InputError(`klToReference: a target of ${R} positions × k = ${target.k} has ${target.indices.length} ids, ${target.logProbs.length} log-probs and ${target.rest.length} rest masses`);
  }
  const badRow = target.rows.find((n) => n < 0 || n >= B * T);
  if (badRow !== undefined) {
    throw new InputError(`klToReference: target position ${badRow} is outside the (${B}, ${T}) logits`);
  }
  const badId = target.indices.find((id) => id < 0 || id >= V);
  if (badId !== undefined) {
    throw new InputError(`klToReference: target token ${badId} is outside the vocabulary [0, ${V})`, {
      hint: "the reference must be a model with the same vocabulary",
    });
  }
  const fn = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x] = args as [tf.Tensor3D];
    if (R === 0) {
      return { value: tf.scalar(0), gradFunc: () => [tf.zeros(x.shape)] };
    }
    const data = x.dataSync() as Float32Array;
    const value = tf.scalar(klRows(data, V, target) / R);
    const gradFunc = (dy: tf.Tensor): tf.Tensor[] => {
      const out = new Float32Array(B * T * V);
      klRows(data, V, target, { out, scale: (dy.dataSync()[0] as number) / R });
      return [tf.tensor(out, [B, T, V], "float32")];
    };
    return { value, gradFunc };
  });
  return fn(logits) as tf.Scalar;
}

/**
 * Targets of several rows collated into one (B, T) batch: row b's positions t become
 * b·T + t. `positions[b]` lists row b's target positions in the order of its target's rows.
 */
export function collateKlTargets(targets: readonly { positions: readonly number[]; target: KlTarget }[], T: number): KlTarget {
  const k = targets[0]?.target.k ?? 1;
  const rows: number[] = [];
  const parts = { indices: [] as Int32Array[], logProbs: [] as Float32Array[], rest: [] as Float32Array[] };
  targets.forEach(({ positions, target }, b) => {
    if (target.k !== k) {
      throw new InputError(`collateKlTargets: rows have different k (${target.k} and ${k})`);
    }
    if (positions.length !== target.rows.length) {
      throw new InputError(`collateKlTargets: row ${b} lists ${positions.length} positions for a target of ${target.rows.length}`);
    }
    for (const t of positions) {
      if (t < 0 || t >= T) {
        throw new InputError(`collateKlTargets: position ${t} is outside a row of ${T} tokens`);
      }
      rows.push(b * T + t);
    }
    parts.indices.push(target.indices);
    parts.logProbs.push(target.logProbs);
    parts.rest.push(target.rest);
  });
  const cat = <A extends Int32Array | Float32Array>(arrays: A[], make: (n: number) => A): A => {
    const out = make(arrays.reduce((s, a) => s + a.length, 0));
    let off = 0;
    for (const a of arrays) {
      out.set(a, off);
      off += a.length;
    }
    return out;
  };
  return {
    rows: Int32Array.from(rows),
    k,
    indices: cat(parts.indices, (n) => new Int32Array(n)),
    logProbs: cat(parts.logProbs, (n) => new Float32Array(n)),
    rest: cat(parts.rest, (n) => new Float32Array(n)),
  };
}
