/**
 * Normalisation layers.
 */
import * as tf from "@tensorflow/tfjs-core";
import { fusedRmsNorm } from "../kernels/rms-norm.js";

/**
 * RMSNorm (transformers `LlamaRMSNorm`): x / sqrt(mean(x², -1) + eps) · w, in float32; one
 * kernel (OmlRmsNorm) on wasm and cpu, the op chain elsewhere (kernels/rms-norm.ts).
 * @param x (..., C)
 * @param w (C) learned gain
 * @param eps added to the mean square (config `rms_norm_eps`)
 */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  return fusedRmsNorm(x, w, eps, 0);
}

/**
 * Gemma's RMSNorm (transformers `GemmaRMSNorm`): x / sqrt(mean(x², -1) + eps) · (1 + w), all in
 * float32 (Gemma multiplies before casting back, Llama after; the same in float32). The gain is
 * stored as an offset from 1, so a zero weight is the identity scale.
 * @param x (..., C)
 * @param w (C) learned offset of the gain
 * @param eps added to the mean square (config `rms_norm_eps`)
 */
export function gemmaRmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  return fusedRmsNorm(x, w, eps, 1);
}

/**
 * LayerNorm over the last axis (torch `nn.LayerNorm`): (x − mean) / sqrt(var + eps) · w + b,
 * with the biased variance mean((x − mean)²).
 * @param x (..., C)
 * @param w (C) gain
 * @param b (C) bias
 * @param eps added to the variance (config `layer_norm_eps`)
 */
export function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const centered = tf.sub(x, tf.mean(x, -1, true)); // (..., C)
    const variance = tf.mean(tf.square(centered), -1, true); // (..., 1)
    return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), w), b);
  });
}
