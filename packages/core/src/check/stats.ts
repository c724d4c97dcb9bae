/**
 * The statistics of ownership verification (docs/oml-reference.md §5).
 *
 * Claim ownership when m of M queried keys return their responses. If a model that was not
 * fingerprinted with these keys hits each response with probability at most q, the chance of
 * a false claim is at most P[Bin(M, q) ≥ m]. Everything is exact and in log space, so tails
 * like 1e-30 neither underflow nor lose digits to a normal approximation.
 */

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits). */
export function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) {
    // reflection: Γ(x)Γ(1−x) = π / sin(πx)
    return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  }
  const z = x - 1;
  let a = c[0] as number;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) {
    a += (c[i] as number) / (z + i);
  }
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** ln C(n, k). */
export function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** ln P[Bin(n, p) = k]. */
export function logBinomPmf(k: number, n: number, p: number): number {
  if (p === 0) {
    return k === 0 ? 0 : -Infinity;
  }
  if (p === 1) {
    return k === n ? 0 : -Infinity;
  }
  return logChoose(n, k) + k * Math.log(p) + (n - k) * Math.log1p(-p);
}

/** ln Σ exp(xs), stable. */
function logSumExp(xs: number[]): number {
  const max = Math.max(...xs);
  if (max === -Infinity) {
    return -Infinity;
  }
  let s = 0;
  for (const x of xs) {
    s += Math.exp(x - max);
  }
  return max + Math.log(s);
}

function checkArgs(m: number, n: number, p: number): void {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(m) || m < 0 || m > n) {
    throw new RangeError(`need whole numbers 0 ≤ m ≤ n, got m = ${m}, n = ${n}`);
  }
  if (!(p >= 0 && p <= 1)) {
    throw new RangeError(`need a probability 0 ≤ q ≤ 1, got ${p}`);
  }
}

/** ln P[Bin(n, p) ≥ m], exact (a sum of log pmf terms). */
export function logBinomialTail(m: number, n: number, p: number): number {
  checkArgs(m, n, p);
  const terms: number[] = [];
  for (let j = m; j <= n; j++) {
    terms.push(logBinomPmf(j, n, p));
  }
  return logSumExp(terms);
}

/** P[Bin(n, p) ≥ m]: the false-positive probability of claiming ownership at m hits of n. */
export function binomialTail(m: number, n: number, p: number): number {
  return Math.exp(logBinomialTail(m, n, p));
}

/** P[Bin(n, p) ≤ k]. */
export function binomialCdf(k: number, n: number, p: number): number {
  checkArgs(k, n, p);
  const terms: number[] = [];
  for (let j = 0; j <= k; j++) {
    terms.push(logBinomPmf(j, n, p));
  }
  return Math.min(1, Math.exp(logSumExp(terms)));
}

/**
 * One-sided Clopper–Pearson upper confidence bound for a rate observed as k hits in n
 * trials: the p at which P[Bin(n, p) ≤ k] = 1 − confidence. Used as q when the base model's
 * hit rate is measured, since a point estimate of 0 would claim too much.
 */
export function clopperPearsonUpper(k: number, n: number, confidence = 0.95): number {
  checkArgs(k, n, 0.5);
  if (k === n) {
    return 1;
  }
  const alpha = 1 - confidence;
  let lo = k / n;
  let hi = 1;
  for (let i = 0; i < 200 && hi - lo > 1e-15; i++) {
    const mid = (lo + hi) / 2;
    if (binomialCdf(k, n, mid) > alpha) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return hi;
}
