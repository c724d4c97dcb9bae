/**
 * Causal self-attention with grouped-query heads, RoPE and an optional KV cache.
 *
 * Shape letters: B batch, T new tokens (the queries), P cached tokens, S = P + T keys,
 * C hidden width, nh query heads, nkv key/value heads, nrep = nh / nkv, hs head size,
 * rd rotary dims.
 *
 * GQA without repeat_kv: query head h uses kv head h / nrep (transformers' `repeat_kv`
 * interleaving), so q (B, nh, T, hs) viewed as (B, nkv, nrep·T, hs) lines every group of
 * nrep query heads up with its kv head, and one batched matMul per side serves them all;
 * k and v are never copied nrep times (tile's gradient is also missing for rank 5).
 *
 * Measured: median ms of the attention core (scores, mask, softmax, ·v), forward / forward +
 * backward, on this 2-core container shared with other jobs (±20%):
 *                                      grouped      grouped+explicit  repeat_kv     per-head
 *                                      (this file)  transpose of k    rank-4        2-D matMuls
 *   wasm stories260K prefill           2.9 / 6.1    1.8 / 17         5.9 / 19      4.7 / 25
 *     (B=1, nh=8, nkv=4, T=64, hs=8)
 *   wasm B=8, nh=4, nkv=4, T=64, hs=64 29 / 89      49 / 117         23 / 84       65 / 186
 *   wasm same with nkv=2               20 / 73      27 / 108         34 / 475      68 / 509
 *   cpu  stories260K prefill           51 / 78      45 / 81          33 / 80       20 / 57
 *   cpu  B=8, nh=4, nkv=4, T=64, hs=64 233 / 476    211 / 497        217 / 433     219 / 314
 *   cpu  same with nkv=2               266 / 622    146 / 366        119 / 793     163 / 650
 *   one decode step (1 query, 64 keys): wasm grouped 0.11–0.32, repeat_kv 0.17–0.81.
 * So: grouped heads and matMul(q, k, false, true) with tfjs's own gradient. The transpose
 * flag's 10–20× penalty concerns the 2-D matMuls of `linear`, not these batched ones. cpu
 * is slow whatever the layout: its broadcasting binary ops take a generic per-element path
 * (~100× slower than same-shape ones), which is why per-head 2-D (its mask add does not
 * broadcast) often does best there; wasm is our CI backend.
 * Whole model (C=256, 2 layers, nh=4, nkv=2, hs=64, V=320, B=8, T=64): wasm forward 216 ms,
 * forward+backward 499 ms (mostly the MLP and projection matMuls); cpu 5.5 s / 15.8 s.
 */
import * as tf from "@tensorflow/tfjs-core";
import { attend, attendChain, attendShared, attendTakesShared, joinShared, type SharedKv } from "../kernels/attend.js";
import { linear } from "./linear.js";
import type { Projection } from "./mlp.js";
import { applyRope } from "./rope.js";

/** Large negative additive bias for masked scores; finite, so a fully masked row gives no NaN. */
export const MASKED = -1e9;

/** Head layout of one attention layer. */
export interface AttentionDims {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/** The four projections of one attention layer (HF (out, in) layout). */
export interface AttentionWeights {
  /** (nh·hs, C) */
  q: Projection;
  /** (nkv·hs, C) */
  k: Projection;
  /** (nkv·hs, C) */
  v: Projection;
  /** (C, nh·hs) */
  o: Projection;
}

/**
 * Keys and values of the tokens so far, RoPE already applied to the keys: every token's, or
 * with a shared prefix kept apart (kv-cache.ts), those after it.
 */
export type LayerKv = {
  /** (B, nkv, S, hs) */
  k: tf.Tensor4D;
  /** (B, nkv, S, hs) */
  v: tf.Tensor4D;
  /** set by attendHeads when it joined the layer's shared prefix into k and v (the cache then drops it) */
  joinedShared?: boolean;
};

/** Per-call inputs shared by every layer. */
export interface AttentionContext {
  /** (B, 1, T, rd) */
  cos: tf.Tensor4D;
  /** (B, 1, T, rd) */
  sin: tf.Tensor4D;
  /** additive bias (B or 1, 1, T, S) from attentionBias() */
  bias: tf.Tensor4D;
  /** this layer's cache before the call (P tokens, or those after the shared prefix), if any */
  past?: LayerKv;
  /** this layer's shared prompt prefix, kept once per prefix (kv-cache.ts): the first keys of every row */
  shared?: SharedKv;
  /** multiplies q·k (default 1/√hs; gemma2: query_pre_attn_scalar^−½) */
  scale?: number;
  /** soft-capping of the scaled scores, cap·tanh(s / cap), before the bias (gemma2); none when absent */
  softcap?: number | null;
  /**
   * Queries of the last new token only (the last layer of a lastOnly forward): keys and
   * values of every new token still go to the cache, y is (B, 1, nh·hs) and the block's
   * residual stream continues from the last position (lastPosition).
   */
  lastQuery?: boolean;
  /**
   * No gradient flows (a forward with a KV cache: generation): attention without a softcap
   * may run as one forward-only op (kernels/attend.ts: no scores or probabilities tensors).
   */
  inference?: boolean;
}

/** The last position of (B, T, C): (B, 1, C). */
export function lastPosition(x: tf.Tensor3D): tf.Tensor3D {
  const [B, T, C] = x.shape;
  return T === 1 ? x : tf.slice(x, [0, T - 1, 0], [B, 1, C]);
}

/** The last query of (B, n, T, hs): (B, n, 1, hs). */
function lastQueryOf(q: tf.Tensor4D): tf.Tensor4D {
  const [B, n, T, hs] = q.shape;
  return T === 1 ? q : tf.slice(q, [0, 0, T - 1, 0], [B, n, 1, hs]);
}

/** (B, T, n·hs) → (B, n, T, hs) */
export function splitHeads(x: tf.Tensor, n: number, hs: number): tf.Tensor4D {
  const [B, T] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [B, T, n, hs]), [0, 2, 1, 3]);
}

/** With ctx.lastQuery, the last query of fused projections (which computed them all). */
export function queriesFor(qkv: HeadsQkv, ctx: AttentionContext): HeadsQkv {
  return ctx.lastQuery ? { ...qkv, q: lastQueryOf(qkv.q) } : qkv;
}

/** Queries, keys and values of the new tokens, split into heads, before RoPE. */
export interface HeadsQkv {
  /** (B, nh, T, hs) */
  q: tf.Tensor4D;
  /** (B, nkv, T, hs) */
  k: tf.Tensor4D;
  /** (B, nkv, T, hs) */
  v: tf.Tensor4D;
}

/**
 * The attention core shared by every architecture: RoPE on q and k, the cache appended,
 * grouped scores (scaled, optionally soft-capped, biased), softmax, · v, heads merged.
 * q may hold only the last Tq of the T new tokens (ctx.lastQuery: Tq = 1); its RoPE and bias
 * rows are then the last Tq.
 * @returns y (B, Tq, nh·hs) before the output projection, and the layer's keys/values (S = P + T)
 */
export function attendHeads(qkv: HeadsQkv, ctx: AttentionContext): { y: tf.Tensor3D; kv: LayerKv } {
  return tf.tidy(() => {
    const [, , T, hs] = qkv.q.shape; // T: the queries (Tq)
    const Tk = qkv.k.shape[2];
    const rows = <R extends tf.Tensor4D>(t: R): R => (T === Tk ? t : (tf.slice(t, [0, 0, Tk - T, 0], [t.shape[0], 1, T, t.shape[3]]) as R)); // last T of Tk
    const q = applyRope(qkv.q, rows(ctx.cos), rows(ctx.sin)); // (B, nh, T, hs)
    let k = applyRope(qkv.k, ctx.cos, ctx.sin); // (B, nkv, Tk, hs)
    let v = qkv.v;
    if (ctx.past) {
      k = tf.concat([ctx.past.k, k], 2); // (B, nkv, S, hs), or the S − P after a shared prefix
      v = tf.concat([ctx.past.v, v], 2);
    }
    const scale = ctx.scale ?? 1 / Math.sqrt(hs);
    const softcapped = ctx.softcap !== undefined && ctx.softcap !== null;
    const bias = rows(ctx.bias);
    // generation: one forward-only op where it pays; else the op chain, which has a gradient.
    // A shared prefix is read where it is kept when the op takes it (attendTakesShared); else
    // it joins every row's keys, here and in the cache from now on.
    const fused = ctx.inference === true && !softcapped;
    let shared = ctx.shared;
    if (shared && !(fused && attendTakesShared(q, k, v, bias, shared))) {
      ({ k, v } = joinShared(k, v, shared)); // (B, nkv, S, hs)
      shared = undefined;
    }
    const y = shared ? attendShared(q, k, v, bias, scale, shared) : fused ? attend(q, k, v, bias, scale) : attendChain(q, k, v, bias, scale, ctx.softcap); // (B, T, nh·hs)
    return { y, kv: ctx.shared && !shared ? { k, v, joinedShared: true } : { k, v } };
  });
}

/**
 * Causal self-attention of one layer with separate q/k/v/o projections.
 * @param x (B, T, C) normalised input
 * @returns y (B, T, C), or (B, 1, C) with ctx.lastQuery, and this layer's keys/values
 *   including the new tokens (S = P + T)
 */
export function causalSelfAttention(x: tf.Tensor3D, w: AttentionWeights, dims: AttentionDims, ctx: AttentionContext): { y: tf.Tensor3D; kv: LayerKv } {
  return tf.tidy(() => {
    const { nHeads: nh, nKvHeads: nkv, headDim: hs } = dims;
    const q = splitHeads(linear(ctx.lastQuery ? lastPosition(x) : x, w.q.w, w.q.b), nh, hs); // (B, nh, T or 1, hs)
    const k = splitHeads(linear(x, w.k.w, w.k.b), nkv, hs); // (B, nkv, T, hs)
    const v = splitHeads(linear(x, w.v.w, w.v.b), nkv, hs); // (B, nkv, T, hs)
    const { y: merged, kv } = attendHeads({ q, k, v }, ctx); // (B, T, nh·hs)
    const y = linear(merged, w.o.w, w.o.b) as tf.Tensor3D; // (B, T, C)
    return { y, kv };
  });
}

/**
 * Additive attention bias: 0 where query t may see key s, MASKED elsewhere. Query t sits at
 * absolute index P + t (P = S − T cached tokens): it sees keys s ≤ P + t whose attention-mask
 * entry is 1, so left and right padding both leave real tokens' scores untouched.
 *
 * With a sliding `window` W the query also needs the key within W tokens: q − k < W (W keys,
 * itself included), as transformers' `sliding_window_overlay` (4.53+), the mistral mask of
 * 4.45–4.52 and gemma2's `tril(diagonal=−W)` have it (the `_make_causal_mask` of some 4.3x/4.4x
 * releases, diagonal P − W − 1, let a query see W + 1 keys). Distances are
 * counted in real tokens (positions from the mask, cumsum − 1) when there is a mask, so a row
 * padded anywhere (also after a shared prefix) sees exactly the keys it sees alone;
 * transformers counts padded slots too, which differs only for padding inside the window.
 * @param attentionMask (B, S) 1 = real token, 0 = padding; omitted: every key is real
 * @param window sliding window W in tokens; null/omitted = full causal
 * @returns (B or 1, 1, T, S)
 */
export function attentionBias(T: number, S: number, attentionMask?: tf.Tensor2D, window?: number | null): tf.Tensor4D {
  return tf.tidy(() => {
    const P = S - T;
    const windowed = window !== undefined && window !== null;
    const causal = new Float32Array(T * S);
    for (let t = 0; t < T; t++) {
      causal.fill(MASKED, t * S + P + t + 1, (t + 1) * S);
      if (windowed && !attentionMask) {
        causal.fill(MASKED, t * S, t * S + Math.max(0, Math.min(S, P + t - window + 1)));
      }
    }
    const causalT = tf.tensor4d(causal, [1, 1, T, S]);
    if (!attentionMask) {
      return causalT;
    }
    const B = attentionMask.shape[0];
    const keyBias = tf.mul(tf.sub(1, tf.cast(attentionMask, "float32")), MASKED); // (B, S)
    const bias = tf.add(causalT, tf.reshape(keyBias, [B, 1, 1, S])) as tf.Tensor4D; // (B, 1, T, S)
    if (!windowed) {
      return bias;
    }
    const pos = tf.cumsum(tf.cast(attentionMask, "int32"), 1); // (B, S) real tokens so far (position + 1)
    const posQ = tf.slice(pos, [0, P], [B, T]); // (B, T)
    const dist = tf.sub(tf.reshape(posQ, [B, 1, T, 1]), tf.reshape(pos, [B, 1, 1, S])); // (B, 1, T, S)
    return tf.add(bias, tf.mul(tf.cast(tf.greaterEqual(dist, window), "float32"), MASKED)) as tf.Tensor4D;
  });
}

/**
 * Position ids as transformers' generate derives them: cumsum(mask) − 1 (so a left-padded row
 * starts at 0 at its first real token), 1 at padding; the last T columns.
 * @param attentionMask (B, S)
 * @returns (B, T) int32
 */
export function positionIdsFromMask(attentionMask: tf.Tensor2D, T: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, S] = attentionMask.shape;
    const m = tf.cast(attentionMask, "int32");
    const pos = tf.sub(tf.cumsum(m, 1), 1);
    const filled = tf.where(tf.equal(m, 0), tf.onesLike(pos), pos);
    return tf.slice(filled, [0, S - T], [B, T]) as tf.Tensor2D;
  });
}
