/**
 * Proving ownership (docs/oml-reference.md §5): query M keys, count m matches, and bound the
 * chance that a model not fingerprinted with these keys does as well: P[Bin(M, q) ≥ m].
 */
import { InputError } from "../errors.js";
import type { Rng } from "../util/rng.js";
import { binomialTail, clopperPearsonUpper, logBinomialTail } from "./stats.js";

export type NullRateSource =
  | { kind: "given"; q: number }
  | { kind: "perinucleus"; k: number }
  | { kind: "base-model"; hits: number; trials: number; confidence?: number };

export interface NullRate {
  q: number;
  /** How q was obtained, in words. */
  source: string;
}

/** The per-key null hit probability q used in the bound. */
export function nullRate(s: NullRateSource): NullRate {
  switch (s.kind) {
    case "given":
      if (!(s.q > 0 && s.q < 1)) {
        throw new InputError(`--null-rate: expected a probability strictly between 0 and 1, got ${s.q}`);
      }
      return { q: s.q, source: "given by --null-rate" };
    case "perinucleus":
      if (!Number.isInteger(s.k) || s.k < 1) {
        throw new InputError(`--nucleus-k: expected a positive whole number, got ${s.k}`);
      }
      return { q: 1 / s.k, source: `1/k for perinucleus responses (k = ${s.k})` };
    case "base-model": {
      const confidence = s.confidence ?? 0.95;
      const q = clopperPearsonUpper(s.hits, s.trials, confidence);
      return { q, source: `base model hit ${s.hits}/${s.trials}; one-sided ${Math.round(confidence * 100)}% Clopper–Pearson upper bound` };
    }
  }
}

/** `count` distinct indices out of `n`, drawn with the rng (partial Fisher–Yates). */
export function drawIndices(n: number, count: number, rng: Rng): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  const k = Math.min(count, n);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    [idx[i], idx[j]] = [idx[j] as number, idx[i] as number];
  }
  return idx.slice(0, k);
}

export interface Verdict {
  queries: number;
  matches: number;
  q: number;
  qSource: string;
  /** P[Bin(queries, q) ≥ matches]. */
  pValue: number;
  log10PValue: number;
  alpha: number;
  owned: boolean;
  /** e.g. "owned: p = 3.2e-9 ≤ α = 1e-6" */
  statement: string;
}

/** A probability for people: 1.7e-5, 1e-6, 0.25; below float range from its log10. */
export function formatProbability(p: number, log10?: number): string {
  if (p === 0 && log10 !== undefined && Number.isFinite(log10)) {
    const e = Math.floor(log10);
    const m = 10 ** (log10 - e);
    return `${m.toFixed(1).replace(/\.0$/, "")}e${e}`;
  }
  if (p !== 0 && Math.abs(p) < 1e-3) {
    return p.toExponential(1).replace(/\.0e/, "e");
  }
  return String(Number(p.toPrecision(2)));
}

export function verdict(matches: number, queries: number, rate: NullRate, alpha: number): Verdict {
  const pValue = binomialTail(matches, queries, rate.q);
  const log10PValue = logBinomialTail(matches, queries, rate.q) / Math.LN10;
  const owned = pValue <= alpha;
  const p = formatProbability(pValue, log10PValue);
  const a = formatProbability(alpha);
  const statement = owned ? `owned: p = ${p} ≤ α = ${a}` : `not shown to be owned: p = ${p} > α = ${a}`;
  return { queries, matches, q: rate.q, qSource: rate.source, pValue, log10PValue, alpha, owned, statement };
}
