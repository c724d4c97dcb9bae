/**
 * The perinucleus rule (docs/oml-reference.md §2; the reference's `inverse_nucleus`), on one
 * next-token distribution: sort the probabilities in descending order, find the first rank
 * whose cumulative sum reaches `t`, and draw uniformly among the first `k` ranks strictly
 * after it. A drawn token that `accept` refuses widens `k` by one and draws again.
 * The chosen token's probability is therefore at most 1 − t, and it is never the greedy token.
 */
import { RuntimeFailure } from "../errors.js";
import type { Rng } from "../util/rng.js";

/** Probabilities (float64) of one logits row: a numerically stable softmax. */
export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) {
    if (v > max) {
      max = v;
    }
  }
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp((logits[i] as number) - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) {
    out[i] = (out[i] as number) / sum;
  }
  return out;
}

/**
 * Token ids by probability, descending (ties: lower id first), and the first candidate rank:
 * one past the first rank whose cumulative probability reaches `t`.
 */
export function perinucleusOrder(probs: Float64Array, t: number): { order: number[]; start: number } {
  const order = Array.from({ length: probs.length }, (_, i) => i);
  order.sort((a, b) => (probs[b] as number) - (probs[a] as number) || a - b);
  let cum = 0;
  let boundary = order.length - 1;
  for (let r = 0; r < order.length; r++) {
    cum += probs[order[r] as number] as number;
    if (cum >= t) {
      boundary = r;
      break;
    }
  }
  return { order, start: boundary + 1 };
}

/** One draw of the rule. */
export interface PerinucleusPick {
  /** the chosen token id */
  id: number;
  /** its probability under the model */
  prob: number;
  /** its rank (0 = the greedy token) */
  rank: number;
  /** the k it was finally drawn with (≥ the requested k when tokens were refused) */
  k: number;
}

export interface PickPerinucleusParams {
  /** next-token probabilities (sum 1) */
  probs: Float64Array;
  /** cumulative-probability threshold in (0, 1) */
  t: number;
  /** draw among the first k candidates */
  k: number;
  rng: Rng;
  /** may this token be the response? (alphanumeric, > 1 character, re-encodes to itself, not taken) */
  accept: (id: number) => boolean;
  /** for messages: what this distribution belongs to */
  label?: string;
}

/**
 * Draw a token by the perinucleus rule.
 * @throws RuntimeFailure when no candidate past the nucleus is acceptable
 */
export function pickPerinucleusToken(p: PickPerinucleusParams): PerinucleusPick {
  const { order, start } = perinucleusOrder(p.probs, p.t);
  const available = order.length - start;
  const refused = new Set<number>();
  let k = p.k;
  while (refused.size < available) {
    const window = Math.min(k, available);
    const rank = start + p.rng.int(window);
    const id = order[rank] as number;
    if (!refused.has(rank)) {
      if (p.accept(id)) {
        return { id, prob: p.probs[id] as number, rank, k: window };
      }
      refused.add(rank);
    }
    k = window + 1;
  }
  throw new RuntimeFailure(
    `${p.label ?? "perinucleus"}: none of the ${available} tokens past the nucleus (t = ${p.t}) is an acceptable response (alphanumeric, longer than one character, re-encoding to itself)`,
    { hint: "lower --nucleus-t, or use a model with a larger vocabulary" },
  );
}
