/**
 * The forward pass every decoder-only architecture shares: position ids (from the attention
 * mask when there is one, so left padding starts each row at 0), the RoPE tables, the
 * additive attention biases (full causal, plus one per sliding window in use), the layer
 * loop with the KV cache, and the lastOnly cut. Architectures supply the three parts that
 * differ: embedding, block and head.
 */
import * as tf from "@tensorflow/tfjs-core";
import { attentionBias, lastPosition, positionIdsFromMask, type AttentionContext, type LayerKv } from "./attention.js";
import type { ModelConfig } from "./config.js";
import { dropSharedPrefix, kvCacheLength, sharedKvOf } from "./kv-cache.js";
import type { ArchForwardOptions } from "./registry.js";
import { ropeAttentionScale, ropeCosSin, ropeInvFreq, ropeParams } from "./rope.js";

/** What an architecture plugs into decoderForward. */
export interface DecoderParts {
  /** input ids (B, T) → embeddings (B, T, C) */
  embed(inputIds: tf.Tensor2D): tf.Tensor3D;
  /** decoder block i: x (B, T, C) → (B, T, C) and the layer's keys/values */
  block(i: number, x: tf.Tensor3D, ctx: AttentionContext): { x: tf.Tensor3D; kv: LayerKv };
  /** final norm and lm head: (B, T', C) → logits (B, T', V) */
  head(x: tf.Tensor3D): tf.Tensor3D;
}

/** Soft-capping cap·tanh(x / cap) (gemma2's attention scores and final logits). */
export function softcap<T extends tf.Tensor>(x: T, cap: number): T {
  return tf.tidy(() => tf.mul(tf.tanh(tf.div(x, cap)), cap) as T);
}

/**
 * Run a decoder.
 * @param c the model configuration (layerWindows, queryPreAttnScalar, attnSoftcap are read here)
 * @param inputIds (B, T) int32
 * @param opts attention mask (B, S), cache (read, extended and replaced in place), lastOnly
 * @returns logits (B, T, V), or (B, 1, V) with lastOnly
 */
export function decoderForward(c: ModelConfig, inputIds: tf.Tensor2D, opts: ArchForwardOptions, parts: DecoderParts): tf.Tensor3D {
  const cache = opts.cache;
  const { logits, kvs } = tf.tidy(() => {
    const [B, T] = inputIds.shape;
    const P = cache ? kvCacheLength(cache) : 0;
    const S = P + T;
    // positions: from the mask when there is one (left padding), else P … S−1
    const positionIds = opts.attentionMask
      ? positionIdsFromMask(opts.attentionMask, T)
      : (tf.tile(tf.reshape(tf.range(P, S, 1, "int32"), [1, T]), [B, 1]) as tf.Tensor2D); // (B, T)
    const rope = ropeParams(c);
    const { cos, sin } = ropeCosSin(ropeInvFreq(rope, S), positionIds, ropeAttentionScale(rope), S); // (B, 1, T, rd); every position < S
    const biases = new Map<number | null, tf.Tensor4D>(); // window → (B or 1, 1, T, S)
    const biasFor = (window: number | null): tf.Tensor4D => {
      const w = window !== null && window < S ? window : null; // a window ≥ S masks nothing more
      let bias = biases.get(w);
      if (!bias) {
        bias = attentionBias(T, S, opts.attentionMask, w);
        biases.set(w, bias);
      }
      return bias;
    };
    const scale = c.queryPreAttnScalar === undefined ? undefined : c.queryPreAttnScalar ** -0.5;
    let x = parts.embed(inputIds); // (B, T, C)
    const kvs: LayerKv[] = [];
    for (let i = 0; i < c.nLayers; i++) {
      // lastOnly: the last layer computes queries, attention output and MLP at the last
      // position only (keys and values of every token still go to the cache); the same
      // values, ~1/nLayers of the prefill's work less
      const lastQuery = opts.lastOnly === true && T > 1 && i === c.nLayers - 1;
      const shared = cache ? sharedKvOf(cache, i) : undefined;
      const ctx: AttentionContext = { cos, sin, bias: biasFor(c.layerWindows?.[i] ?? null), past: cache?.layers[i], shared, scale, softcap: c.attnSoftcap, lastQuery, inference: cache !== undefined };
      const out = parts.block(i, x, ctx);
      x = out.x;
      kvs.push(out.kv);
    }
    if (opts.lastOnly) {
      x = lastPosition(x); // (B, 1, C); a no-op unless nLayers = 0
    }
    const logits = parts.head(x); // (B, T, V)
    return { logits, kvs: cache ? kvs : [] };
  });
  if (cache) {
    for (let i = 0; i < c.nLayers; i++) {
      const old = cache.layers[i];
      if (old) {
        tf.dispose([old.k, old.v]);
      }
      const { k, v, joinedShared } = kvs[i] as LayerKv;
      cache.layers[i] = { k, v };
      if (joinedShared) {
        dropSharedPrefix(cache, i); // now in the rows' own keys
      }
    }
  }
  return logits;
}
