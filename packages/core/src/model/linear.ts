/**
 * A linear layer on a weight in Hugging Face layout: W is (out, in), as nn.Linear stores it,
 * so y = x · Wᵀ (+ b). This is the one documented place where HF weights are transposed.
 *
 * Why a custom gradient: tfjs-wasm runs matMul with a transpose flag 10–20× slower than an
 * explicit `tf.transpose` followed by a plain matMul, and tfjs's own matMul gradient uses
 * those flags. So both passes here transpose explicitly:
 *   forward   y  = x · transpose(W)        (N, in)·(in, out)  → (N, out)
 *   backward  dx = dy · W                  (N, out)·(out, in) → (N, in)
 *             dW = transpose(dy) · x       (out, N)·(N, in)   → (out, in), HF layout as is
 *             db = Σ_N dy                                     → (out)
 *
 * Forward + backward, median ms of 7 (bench/engine-primitives.mjs; 2-core machine shared with
 * other jobs, so ±30%):
 *                              wasm: transpose flags → linear()     cpu: flags → linear()
 *   (N=512, in=256, out=704)         350 → 36                           ~1500 → ~1500
 *   (N=512, in=64,  out=512)          56 → 10                            ~250 → ~250
 * (cpu's JS matMul costs about the same for either operand layout.)
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";

/** (N, in) · (out, in)ᵀ; explicit transposes in both passes. */
const matMulWt = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([x, w]);
  const value = tf.matMul(x, tf.transpose(w)); // (N, out)
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
    const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
    const dy2 = dy as tf.Tensor2D; // (N, out)
    return [tf.matMul(dy2, ws), tf.matMul(tf.transpose(dy2), xs)]; // (N, in), (out, in)
  };
  return { value, gradFunc };
});

/** The same with a bias added in the matMul kernel (tf.fused.matMul) and db = Σ_N dy. */
const matMulWtBias = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, w, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, w]);
  const value = tf.fused.matMul({ a: x, b: tf.transpose(w), bias: b }); // (N, out)
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
    const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
    const dy2 = dy as tf.Tensor2D; // (N, out)
    return [tf.matMul(dy2, ws), tf.matMul(tf.transpose(dy2), xs), tf.sum(dy2, 0)]; // (N, in), (out, in), (out)
  };
  return { value, gradFunc };
});

/**
 * y = x · Wᵀ + b on Hugging Face layout weights, with a gradient that stays fast on wasm.
 * @param x input (..., in)
 * @param w weight (out, in), as stored in safetensors
 * @param b optional bias (out)
 * @returns (..., out)
 */
export function linear(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1];
  const [outDim, wIn] = w.shape;
  if (inDim !== wIn || (b && b.shape[0] !== outDim)) {
    throw new InputError(
      `linear: input (${x.shape.join(", ")}) does not fit weight (${w.shape.join(", ")})${b ? ` and bias (${b.shape[0]})` : ""}`,
      { hint: "the weight must be (out, in) in Hugging Face layout and the bias (out)" },
    );
  }
  return tf.tidy(() => {
    const lead = x.shape.slice(0, -1);
    const x2 = tf.reshape(x, [-1, wIn]) as tf.Tensor2D; // (N, in)
    const y = b ? matMulWtBias(x2, w, b) : matMulWt(x2, w); // (N, out)
    return tf.reshape(y, [...lead, outDim]);
  });
}
