/**
 * A linear layer on a weight in Hugging Face layout: W is (out, in), as nn.Linear stores it,
 * so y = x · Wᵀ (+ b). This is the one documented place where HF weights are transposed.
 *
 * PROVISIONAL: the training-speed version (custom gradient with explicit transposes, which
 * wasm runs 10–20× faster than matMul's transpose flags) replaces this body.
 */
import * as tf from "@tensorflow/tfjs-core";

/** x: (..., in), w: (out, in), b: (out) → (..., out) */
export function linear(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor {
  return tf.tidy(() => {
    const inDim = x.shape[x.shape.length - 1] as number;
    const outDim = w.shape[0];
    const lead = x.shape.slice(0, -1);
    const x2 = tf.reshape(x, [-1, inDim]); // (N, in)
    let y = tf.matMul(x2, w, false, true); // (N, out)
    if (b) {
      y = tf.add(y, b);
    }
    return tf.reshape(y, [...lead, outDim]);
  });
}
