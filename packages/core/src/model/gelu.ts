/**
 * GELU activations (transformers `activations.py`):
 *   gelu                 x · Φ(x) = ½x·(1 + erf(x/√2))                     (exact; GPT-NeoX / Pythia)
 *   gelu_pytorch_tanh    ½x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))           (Gemma's GeGLU)
 * `gelu_new` and `gelu_fast` are the same tanh formula written differently, so all three map
 * to geluTanh (they differ from each other only in float rounding).
 */
import * as tf from "@tensorflow/tfjs-core";

const SQRT_HALF = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** Exact GELU: ½x·(1 + erf(x/√2)) (torch `nn.functional.gelu`, approximate="none"). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, SQRT_HALF)))));
}

/** Tanh-approximated GELU: ½x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (torch approximate="tanh"). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const cube = tf.mul(tf.square(x), x); // x³ without pow (whose gradient takes log x)
    const inner = tf.mul(tf.add(x, tf.mul(cube, 0.044715)), SQRT_2_OVER_PI);
    return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
  });
}
