/**
 * Choosing the next token from one row of logits, in plain JS over a Float32Array:
 * greedy argmax, or seeded sampling with transformers' warper order
 * (temperature → top-k → top-p, then a categorical draw).
 */
import type { Rng } from "../util/rng.js";

/** How to pick the next token. temperature 0 (default) is greedy. */
export interface SamplingOptions {
  /** 0 → greedy argmax; > 0 divides the logits before sampling */
  temperature?: number;
  /** keep only the k most likely tokens (ties at the k-th value are kept, as transformers does) */
  topK?: number;
  /** keep the smallest set of most likely tokens whose probability reaches topP (nucleus) */
  topP?: number;
}

/** Index of the largest value of row[offset … offset+n) (the first one on ties, as torch.argmax). */
export function argmax(row: Float32Array, offset = 0, n = row.length - offset): number {
  let best = 0;
  let bestVal = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = row[offset + i] as number;
    if (v > bestVal) {
      bestVal = v;
      best = i;
    }
  }
  return best;
}

/**
 * Pick a token id from the logits row[offset … offset+n).
 * @param rng the seeded generator; used only when temperature > 0
 */
export function sampleToken(row: Float32Array, offset: number, n: number, opts: SamplingOptions, rng: Rng): number {
  const temperature = opts.temperature ?? 0;
  if (temperature <= 0) {
    return argmax(row, offset, n);
  }
  // candidates sorted by logit, descending (stable: lower id first on ties)
  const ids = Array.from({ length: n }, (_, i) => i);
  const logit = (i: number): number => (row[offset + i] as number) / temperature;
  ids.sort((a, b) => logit(b) - logit(a) || a - b);
  let keep = n;
  if (opts.topK !== undefined && opts.topK > 0 && opts.topK < n) {
    const kth = logit(ids[opts.topK - 1] as number);
    keep = opts.topK;
    while (keep < n && logit(ids[keep] as number) >= kth) {
      keep++;
    }
  }
  const max = logit(ids[0] as number);
  const probs = new Float64Array(keep);
  let sum = 0;
  for (let j = 0; j < keep; j++) {
    const p = Math.exp(logit(ids[j] as number) - max);
    probs[j] = p;
    sum += p;
  }
  if (opts.topP !== undefined && opts.topP < 1) {
    // transformers removes a token when the ascending cumulative probability up to it is
    // ≤ 1 − topP, i.e. when the tokens more likely than it already hold ≥ topP: the kept set is
    // the shortest most-likely prefix whose mass reaches topP (renormalised after top-k)
    let cum = 0;
    let cut = keep;
    for (let j = 0; j < keep; j++) {
      cum += (probs[j] as number) / sum;
      if (cum >= opts.topP) {
        cut = j + 1;
        break;
      }
    }
    keep = Math.max(1, cut);
    sum = 0;
    for (let j = 0; j < keep; j++) {
      sum += probs[j] as number;
    }
  }
  let u = rng.nextFloat() * sum;
  for (let j = 0; j < keep; j++) {
    u -= probs[j] as number;
    if (u < 0) {
      return ids[j] as number;
    }
  }
  return ids[keep - 1] as number;
}
