/**
 * KV cache for incremental decoding: per layer, the keys (RoPE applied) and values of every
 * token seen so far. `forward` with a cache reads it, appends the new tokens and replaces the
 * tensors (disposing the old ones). Pair createKvCache / disposeKvCache.
 *
 * Shared prompt prefixes: rows whose prompts start alike (a check template's text, a chat
 * system prompt) get their prefix computed once at batch 1; mergePrefixCaches keeps those
 * caches once each (SharedPrefix), right-aligned in P columns, zero keys/values on the left,
 * which the caller masks out (mask 0), exactly like left padding. Attention reads them where
 * they are when it can, instead of a copy in every row (a check of 1024 fingerprints copied
 * (256, 4, 37, 8) per layer and batch twice: gathered, then concatenated with the new keys).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { SharedKv } from "../kernels/attend.js";
import type { LayerKv } from "./attention.js";

export interface KvCache {
  /** one entry per layer, undefined before the first forward: each row's keys and values (after the shared prefix while a layer keeps one) */
  layers: (LayerKv | undefined)[];
  /** shared prompt prefixes, kept once per prefix (mergePrefixCaches) */
  prefix?: SharedPrefix;
}

/**
 * Prefixes shared by many rows, kept once each: row b's first P keys and values in layer i are
 * row rows[b] of layers[i] (G prefixes right-aligned in P columns with zeros before them, and
 * one all-zero row for the rows without a prefix; the mask covers the zeros). Attention reads
 * them in place where it can (attendTakesShared), else joins them into each row's keys
 * (joinShared) and the layer's entry here is dropped (undefined).
 */
export interface SharedPrefix {
  /** per layer: (G + 1, nkv, P, hs), or undefined once joined into the rows' own */
  layers: (LayerKv | undefined)[];
  /** (B) int32 */
  rows: tf.Tensor1D;
}

/** An empty cache for a model of nLayers layers. */
export function createKvCache(nLayers: number): KvCache {
  return { layers: Array.from({ length: nLayers }, () => undefined) };
}

/** Number of cached tokens (layer 0's keys, with its shared prefix if kept apart). */
export function kvCacheLength(cache: KvCache): number {
  const own = cache.layers[0]?.k.shape[2] ?? 0;
  return own + (cache.prefix?.layers[0]?.k.shape[2] ?? 0);
}

/** The shared prefix of layer i as attention reads it, if the layer still keeps one apart. */
export function sharedKvOf(cache: KvCache, i: number): SharedKv | undefined {
  const p = cache.prefix;
  const l = p?.layers[i];
  return p && l ? { k: l.k, v: l.v, rows: p.rows } : undefined;
}

/** Layer i's shared prefix is now in its rows' own keys: drop it (and the rows once no layer keeps one). */
export function dropSharedPrefix(cache: KvCache, i: number): void {
  const p = cache.prefix;
  const l = p?.layers[i];
  if (!p || !l) {
    return;
  }
  tf.dispose([l.k, l.v]);
  p.layers[i] = undefined;
  if (p.layers.every((x) => x === undefined)) {
    p.rows.dispose();
    cache.prefix = undefined;
  }
}

/** Release every cached tensor; the cache is empty afterwards. */
export function disposeKvCache(cache: KvCache): void {
  for (let i = 0; i < cache.layers.length; i++) {
    const l = cache.layers[i];
    if (l) {
      tf.dispose([l.k, l.v]);
    }
    cache.layers[i] = undefined;
  }
  for (let i = 0; i < (cache.prefix?.layers.length ?? 0); i++) {
    dropSharedPrefix(cache, i);
  }
}

/** Which rows share which prefix. */
export interface PrefixPlan {
  /** the distinct shared prefixes (token ids) */
  prefixes: number[][];
  /** per row: index into prefixes, or −1 (no shared prefix) */
  groupOf: number[];
}

function commonPrefix(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) {
    i++;
  }
  return i;
}

/**
 * Group prompts by shared prefixes worth computing once: runs of the lexicographically
 * sorted prompts that share at least `minShared` tokens, with at least `minRows` rows. A
 * group's prefix is the rows' common prefix, minus the last token of its shortest prompt
 * (each row keeps at least one token for the batched prefill).
 */
export function planSharedPrefixes(prompts: number[][], minShared = 4, minRows = 4): PrefixPlan {
  const order = prompts.map((_, i) => i).sort((a, b) => {
    const pa = prompts[a] as number[];
    const pb = prompts[b] as number[];
    const l = commonPrefix(pa, pb);
    return l < pa.length && l < pb.length ? (pa[l] as number) - (pb[l] as number) : pa.length - pb.length || a - b;
  });
  const plan: PrefixPlan = { prefixes: [], groupOf: prompts.map(() => -1) };
  let start = 0;
  let shared = Infinity; // common prefix of order[start … i)
  for (let i = 1; i <= order.length; i++) {
    const next = i < order.length ? Math.min(shared, commonPrefix(prompts[order[i - 1] as number] as number[], prompts[order[i] as number] as number[])) : -1;
    if (next >= minShared) {
      shared = next;
      continue;
    }
    const rows = order.slice(start, i);
    const length = Math.min(shared, ...rows.map((r) => (prompts[r] as number[]).length - 1));
    if (rows.length >= minRows && length >= minShared) {
      const first = prompts[rows[0] as number] as number[];
      for (const r of rows) {
        plan.groupOf[r] = plan.prefixes.length;
      }
      plan.prefixes.push(first.slice(0, length));
    }
    start = i;
    shared = Infinity;
  }
  return plan;
}

/**
 * One cache from per-prefix batch-1 caches, the prefixes kept once each (SharedPrefix): row b
 * reads prefix groupOf[b] right-aligned in P columns (zeros before it; all zeros for −1),
 * P = the longest prefix. Disposes the per-prefix caches.
 */
export function mergePrefixCaches(caches: KvCache[], groupOf: number[], nLayers: number): KvCache {
  const P = Math.max(0, ...caches.map(kvCacheLength));
  const out = createKvCache(nLayers);
  const layers: LayerKv[] = [];
  for (let i = 0; i < nLayers; i++) {
    layers.push(
      tf.tidy(() => {
        const side = (pick: (l: LayerKv) => tf.Tensor4D): tf.Tensor4D => {
          const parts = caches.map((c) => {
            const t = pick(c.layers[i] as LayerKv); // (1, nkv, Pg, hs)
            return t.shape[2] === P ? t : tf.pad(t, [[0, 0], [0, 0], [P - t.shape[2], 0], [0, 0]]);
          });
          const first = pick(caches[0]?.layers[i] as LayerKv);
          parts.push(tf.zeros([1, first.shape[1], P, first.shape[3]])); // the "no prefix" row
          return tf.concat(parts, 0) as tf.Tensor4D; // (G + 1, nkv, P, hs)
        };
        return { k: side((l) => l.k), v: side((l) => l.v) };
      }),
    );
  }
  const rows = tf.tensor1d(
    groupOf.map((g) => (g < 0 ? caches.length : g)),
    "int32",
  );
  out.prefix = { layers, rows };
  caches.forEach(disposeKvCache);
  return out;
}
