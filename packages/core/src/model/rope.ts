/**
 * Rotary position embeddings in Hugging Face's layout (`rotate_half`: dim i pairs with dim
 * i + rd/2, cos/sin tables are `cat(freqs, freqs)`), as transformers' Llama, Mistral, Qwen2,
 * GPT-NeoX and Phi-3 use. llama2.c/Meta checkpoints pair (2i, 2i+1) instead; their HF
 * conversions permute the q/k rows, so HF-format weights always use this layout.
 *
 * Partial rotary (GPT-NeoX, Phi): only the first `rotaryDim` dims of each head rotate.
 * Frequencies follow transformers' `modeling_rope_utils.py` (default, linear, dynamic, llama3,
 * longrope).
 */
import * as tf from "@tensorflow/tfjs-core";
import { rope } from "../kernels/rope.js";
import type { ModelConfig, RopeScaling } from "./config.js";

const f32 = Math.fround;

/** What the inverse frequencies depend on. */
export interface RopeParams {
  /** how many dims of a head rotate (even) */
  rotaryDim: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositions: number;
}

/**
 * The rd/2 inverse frequencies θ_i = 1 / base^(2i / rd), float32 like transformers computes
 * them, with the configured scaling applied.
 * @param seqLen sequence length seen so far; only `dynamic` and `longrope` scaling use it
 *   (dynamic grows the base once seqLen > maxPositions; longrope switches from the short to the
 *   long factors once seqLen > originalMaxPositions, as transformers' `dynamic_rope_update`
 *   does with max(position_ids) + 1; we pass the padded length, the same without padding)
 */
export function ropeInvFreq(p: RopeParams, seqLen = 0): Float32Array {
  const dim = p.rotaryDim;
  const s = p.ropeScaling;
  let base = p.ropeTheta;
  if (s?.type === "dynamic" && seqLen > p.maxPositions) {
    base = base * ((s.factor * seqLen) / p.maxPositions - (s.factor - 1)) ** (dim / (dim - 2));
  }
  const out = new Float32Array(dim / 2);
  const ext = s?.type === "longrope" || s?.type === "su" ? (seqLen > s.originalMaxPositions ? s.longFactor : s.shortFactor) : undefined;
  for (let i = 0; i < dim / 2; i++) {
    // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), each step in float32;
    // longrope: 1.0 / (ext_factors * base ** (...)), the product in float32 too
    const pow = f32(f32(base) ** f32((2 * i) / dim));
    out[i] = f32(1 / (ext ? f32(f32(ext[i] as number) * pow) : pow));
  }
  if (s?.type === "linear") {
    for (let i = 0; i < out.length; i++) {
      out[i] = f32((out[i] as number) / s.factor);
    }
  } else if (s?.type === "llama3") {
    applyLlama3Scaling(out, s);
  }
  return out;
}

/**
 * Llama 3.1 scaling (transformers `_compute_llama3_parameters`): wavelengths shorter than
 * original/high_freq_factor keep their frequency, longer than original/low_freq_factor are
 * divided by `factor`, and the band between is interpolated smoothly.
 */
function applyLlama3Scaling(invFreq: Float32Array, s: Extract<RopeScaling, { type: "llama3" }>): void {
  const lowFreqWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositions / s.highFreqFactor;
  for (let i = 0; i < invFreq.length; i++) {
    const f = invFreq[i] as number;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) {
      continue; // high frequency: unchanged
    }
    if (wavelen > lowFreqWavelen) {
      invFreq[i] = f32(f / s.factor); // low frequency: interpolated positions
      continue;
    }
    const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    invFreq[i] = f32(((1 - smooth) * f) / s.factor + smooth * f);
  }
}

/**
 * The factor cos and sin are multiplied by (transformers' `attention_scaling`): LongRoPE's
 * attentionFactor, 1 for every other type.
 */
export function ropeAttentionScale(p: RopeParams): number {
  const s = p.ropeScaling;
  return s?.type === "longrope" || s?.type === "su" ? s.attentionFactor : 1;
}

/** RopeParams of a ModelConfig. */
export function ropeParams(config: ModelConfig): RopeParams {
  return { rotaryDim: config.rotaryDim, ropeTheta: config.ropeTheta, ropeScaling: config.ropeScaling, maxPositions: config.maxPositions };
}

/**
 * cos and sin tables for the given positions, ready to broadcast over heads.
 * Computed per call rather than cached: no tensor lifetimes to manage, and the angle is
 * float32(pos · θ) exactly as transformers computes it. With `numPositions` (every id is
 * below it) and fewer positions than ids, the table is computed once per position and
 * gathered: the same values (a batch of 256 × 17 ids has 17 positions: a check's prefill
 * spent ~25 ms in cos and sin of every id).
 * @param invFreq (rd/2) from ropeInvFreq
 * @param positionIds (B, T) int32
 * @param scale multiplies cos and sin (ropeAttentionScale; default 1)
 * @param numPositions an upper bound on the ids (exclusive), e.g. the key length S
 * @returns cos, sin: (B, 1, T, rd)
 */
export function ropeCosSin(invFreq: Float32Array, positionIds: tf.Tensor2D, scale = 1, numPositions?: number): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  return tf.tidy(() => {
    const [B, T] = positionIds.shape;
    const table = numPositions !== undefined && numPositions < B * T;
    const pos = table ? tf.range(0, numPositions, 1, "float32") : tf.cast(positionIds, "float32"); // (S) or (B, T)
    const freqs = tf.mul(tf.expandDims(pos, -1), tf.tensor1d(invFreq)); // (…, rd/2)
    const emb = tf.concat([freqs, freqs], -1); // (…, rd)
    const ids = table ? tf.cast(positionIds, "int32") : positionIds; // positionIdsFromMask's are float32
    const at = (t: tf.Tensor): tf.Tensor4D => tf.expandDims(table ? tf.gather(t, ids) : t, 1) as tf.Tensor4D; // (B, 1, T, rd)
    if (scale === 1) {
      return { cos: at(tf.cos(emb)), sin: at(tf.sin(emb)) };
    }
    return { cos: at(tf.mul(tf.cos(emb), scale)), sin: at(tf.mul(tf.sin(emb), scale)) };
  });
}

/**
 * Rotate queries or keys: x·cos + rotate_half(x)·sin on the first rd dims of each head,
 * where rotate_half([x1, x2]) = [-x2, x1].
 * @param x (B, n, T, hs)
 * @param cos (B, 1, T, rd)
 * @param sin (B, 1, T, rd)
 * @returns (B, n, T, hs)
 */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, n, T, hs] = x.shape;
    const rd = cos.shape[3];
    const xr = rd === hs ? x : tf.slice(x, [0, 0, 0, 0], [B, n, T, rd]); // (B, n, T, rd)
    const out = rope(xr as tf.Tensor4D, cos, sin); // (B, n, T, rd): xr·cos + [−x2, x1]·sin
    if (rd === hs) {
      return out;
    }
    const pass = tf.slice(x, [0, 0, 0, rd], [B, n, T, hs - rd]); // (B, n, T, hs - rd)
    return tf.concat([out, pass], -1);
  });
}
