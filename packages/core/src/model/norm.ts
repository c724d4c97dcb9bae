/**
 * Normalisation layers.
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * RMSNorm (transformers `LlamaRMSNorm`): x / sqrt(mean(x², -1) + eps) · w, in float32.
 * @param x (..., C)
 * @param w (C) learned gain
 * @param eps added to the mean square (config `rms_norm_eps`)
 */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true); // (..., 1)
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), w);
  });
}
