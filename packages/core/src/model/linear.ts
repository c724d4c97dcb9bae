/**
 * A linear layer on a weight in Hugging Face layout: W is (out, in), as nn.Linear stores it,
 * so y = x · Wᵀ (+ b). This is the one documented place where HF weights are transposed.
 *
 * The transposes are matMul flags: our wasm BatchMatMul (kernels/batch-matmul.ts) reads a
 * transposed A in place and packs B into panels whatever its layout, so a flag costs
 * nothing there (tfjs-wasm's own kernel ran flagged matMuls 10–20× slower, which is why
 * this file used to transpose explicitly; cpu's JS matMul costs the same either way):
 *   forward   y  = x · Wᵀ            matMul(x, W, false, true)     (N, in)·(out, in)ᵀ → (N, out)
 *   backward  dx = dy · W            matMul(dy, W)                 (N, out)·(out, in) → (N, in)
 *             dW = dyᵀ · x           matMul(dy, x, true, false)    → (out, in), HF layout as is
 *             db = Σ_N dy                                          → (out)
 * The custom gradient keeps dW in (out, in) layout without a transpose of its own.
 *
 * A training step of the 20M-parameter Llama (bench/train-step-vs-pytorch.mjs) spent ~100 ms
 * of CPU in the explicit transposes (the lm_head's dy alone: (512, 32000)) before this.
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";

/** (N, in) · (out, in)ᵀ with dx = dy · W and dW = dyᵀ · x. */
const matMulWt = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([x, w]);
  const value = tf.matMul(x, w, false, true); // (N, out)
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
    const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
    const dy2 = dy as tf.Tensor2D; // (N, out)
    return [tf.matMul(dy2, ws), tf.matMul(dy2, xs, true, false)]; // (N, in), (out, in)
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
    const y = b ? tf.add(matMulWt(x2, w), b) : matMulWt(x2, w); // (N, out)
    return tf.reshape(y, [...lead, outDim]);
  });
}
