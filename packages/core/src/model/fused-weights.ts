/**
 * Fused projection weights and their parts, on HF (out, in) row-major data: Phi-3 stacks whole
 * blocks of rows (`qkv_proj` = [q; k; v], `gate_up_proj` = [gate; up]); GPT-NeoX interleaves
 * per head (`query_key_value` rows in [nh, 3, hs] order: head 0's q, k, v rows, then head 1's).
 * The forward passes cut the projection outputs instead (one matMul); these functions state the
 * same layouts on the weights, for conversions and for tests that compare fused with unfused.
 */

/** A weight or bias as stored: shape (out, in) or (out), row-major values. */
export interface RowMajor {
  shape: number[];
  data: Float32Array;
}

const rowLength = (t: RowMajor): number => t.shape.slice(1).reduce((a, b) => a * b, 1);

/** Split consecutive blocks of rows: sizes[i] rows each, in order (they must add up to the rows). */
export function splitRows(t: RowMajor, sizes: number[]): RowMajor[] {
  const rows = t.shape[0] as number;
  if (sizes.reduce((a, b) => a + b, 0) !== rows) {
    throw new RangeError(`splitRows: ${sizes.join(" + ")} ≠ ${rows} rows`);
  }
  const n = rowLength(t);
  let at = 0;
  return sizes.map((r) => {
    const part = { shape: [r, ...t.shape.slice(1)], data: t.data.slice(at * n, (at + r) * n) };
    at += r;
    return part;
  });
}

/** Stack blocks of rows (the inverse of splitRows). */
export function concatRows(parts: RowMajor[]): RowMajor {
  const n = parts[0] ? rowLength(parts[0]) : 0;
  const rows = parts.reduce((a, p) => a + (p.shape[0] as number), 0);
  const data = new Float32Array(rows * n);
  let at = 0;
  for (const p of parts) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return { shape: [rows, ...(parts[0]?.shape.slice(1) ?? [])], data };
}

/** GPT-NeoX `query_key_value` (weight (3·nh·hs, C) or bias (3·nh·hs)) → separate q, k, v (nh·hs rows each). */
export function splitNeoxQkv(t: RowMajor, nHeads: number): { q: RowMajor; k: RowMajor; v: RowMajor } {
  const hs = (t.shape[0] as number) / (3 * nHeads);
  const blocks = splitRows(t, new Array<number>(3 * nHeads).fill(hs)); // [h0 q, h0 k, h0 v, h1 q, …]
  const pick = (j: number): RowMajor => concatRows(blocks.filter((_, i) => i % 3 === j));
  return { q: pick(0), k: pick(1), v: pick(2) };
}

/** Separate q, k, v (nh·hs rows each) → GPT-NeoX's head-interleaved `query_key_value`. */
export function fuseNeoxQkv(parts: { q: RowMajor; k: RowMajor; v: RowMajor }, nHeads: number): RowMajor {
  const hs = (parts.q.shape[0] as number) / nHeads;
  const heads = (t: RowMajor): RowMajor[] => splitRows(t, new Array<number>(nHeads).fill(hs));
  const [q, k, v] = [heads(parts.q), heads(parts.k), heads(parts.v)];
  return concatRows(q.flatMap((qh, h) => [qh, k[h] as RowMajor, v[h] as RowMajor]));
}
