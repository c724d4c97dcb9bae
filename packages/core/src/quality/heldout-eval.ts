/**
 * What fine-tuning cost a model, on held-out token sequences: the mean next-token
 * cross-entropy of the base and of the tuned weights, and the mean per-token
 * KL(base ‖ tuned) over the full vocabulary, every position whose next token is in the
 * sequence counted once. Both models run on the same batch (right-padded, sorted by length),
 * so nothing of size V is kept between batches.
 *
 * Shape letters: B batch, T time, V vocabulary, N = B·T.
 */
import * as tf from "@tensorflow/tfjs-core";
import { forward } from "../model/forward.js";
import type { Model } from "../model/load-model.js";

export interface HeldoutMetrics {
  /** Sequences evaluated. */
  sequences: number;
  /** Positions predicted (Σ (length − 1)). */
  tokens: number;
  /** Mean next-token cross-entropy (nats) of the base model. */
  ce_before: number;
  /** …of the tuned weights. */
  ce_after: number;
  /** (ce_after − ce_before) / ce_before */
  ce_relative_change: number;
  /** Mean per-token KL(base ‖ tuned), nats. */
  kl: number;
}

export interface EvaluateHeldoutParams {
  /** The base model (its own weights are the "before"). */
  model: Model;
  /** The tuned weights by HF name (missing names come from the base). */
  tuned: Map<string, tf.Tensor>;
  /** Token ids per sequence (BOS included when the model expects one). */
  sequences: readonly number[][];
  /** Fills the padding. */
  padId: number;
  /** Rows per forward; default: as many as keep a (B, T, V) tensor near 4M values (1…32). */
  batchSize?: number;
}

/** Cross-entropies and KL of the tuned weights against the base on held-out sequences. */
export async function evaluateHeldout(p: EvaluateHeldoutParams): Promise<HeldoutMetrics> {
  const seqs = p.sequences.filter((s) => s.length >= 2);
  const V = p.model.config.vocabSize;
  const order = seqs.map((_, i) => i).sort((a, b) => (seqs[b] as number[]).length - (seqs[a] as number[]).length);
  const longest = seqs.reduce((m, s) => Math.max(m, s.length), 1);
  const batchSize = p.batchSize ?? Math.max(1, Math.min(32, Math.floor(2 ** 22 / (longest * V))));
  let ceBefore = 0;
  let ceAfter = 0;
  let kl = 0;
  let tokens = 0;
  for (let s = 0; s < order.length; s += batchSize) {
    const rows = order.slice(s, s + batchSize).map((i) => seqs[i] as number[]);
    const B = rows.length;
    const T = Math.max(...rows.map((r) => r.length));
    const ids = new Int32Array(B * T).fill(p.padId);
    const mask = new Int32Array(B * T);
    const counted: number[] = [];
    const picked: number[] = [];
    rows.forEach((r, b) => {
      ids.set(r, b * T);
      mask.fill(1, b * T, b * T + r.length);
      for (let t = 0; t + 1 < r.length; t++) {
        counted.push(b * T + t);
        picked.push((b * T + t) * V + (r[t + 1] as number));
      }
    });
    const sums = tf.tidy(() => {
      const x = tf.tensor2d(ids, [B, T], "int32");
      const m = tf.tensor2d(mask, [B, T], "int32");
      const lpBase = tf.logSoftmax(tf.reshape(forward(p.model, x, { attentionMask: m }), [B * T, V])); // (N, V)
      const lpTuned = tf.logSoftmax(tf.reshape(forward(p.model, x, { attentionMask: m, weights: p.tuned }), [B * T, V])); // (N, V)
      const at = tf.tensor1d(Int32Array.from(picked), "int32");
      const ceB = tf.neg(tf.sum(tf.gather(tf.reshape(lpBase, [-1]), at)));
      const ceT = tf.neg(tf.sum(tf.gather(tf.reshape(lpTuned, [-1]), at)));
      const klRows = tf.sum(tf.mul(tf.exp(lpBase), tf.sub(lpBase, lpTuned)), -1); // (N)
      const klSum = tf.sum(tf.gather(klRows, tf.tensor1d(Int32Array.from(counted), "int32")));
      return tf.stack([ceB, ceT, klSum]);
    });
    const [a, b, c] = (await sums.data()) as Float32Array;
    sums.dispose();
    ceBefore += a as number;
    ceAfter += b as number;
    kl += c as number;
    tokens += counted.length;
  }
  const n = Math.max(tokens, 1);
  return {
    sequences: seqs.length,
    tokens,
    ce_before: ceBefore / n,
    ce_after: ceAfter / n,
    ce_relative_change: ceBefore > 0 ? (ceAfter - ceBefore) / ceBefore : 0,
    kl: kl / n,
  };
}
