/**
 * Feed-forward blocks.
 */
import * as tf from "@tensorflow/tfjs-core";
import { linear } from "./linear.js";

/** One projection: W in HF (out, in) layout, optional bias (out). */
export interface Projection {
  w: tf.Tensor2D;
  b?: tf.Tensor1D;
}

/** SiLU (swish): x · σ(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

/**
 * SwiGLU MLP (transformers `LlamaMLP`): down(silu(gate(x)) · up(x)).
 * @param x (B, T, C)
 * @param p gate and up: (I, C), down: (C, I)
 * @returns (B, T, C)
 */
export function swigluMlp(x: tf.Tensor, p: { gate: Projection; up: Projection; down: Projection }): tf.Tensor {
  return tf.tidy(() => {
    const g = linear(x, p.gate.w, p.gate.b); // (B, T, I)
    const u = linear(x, p.up.w, p.up.b); // (B, T, I)
    return linear(tf.mul(silu(g), u), p.down.w, p.down.b); // (B, T, C)
  });
}
