/**
 * Attention's probabilities as one op (model/attention.ts):
 *   probs (B, H, R, S) = softmax(scores · scale + bias) over the keys S,
 * bias (B or 1, 1, T, S) added to row t = r mod T of every (b, h) block: R = nrep·T grouped
 * query heads share their batch row's mask. It replaces tf.mul, a 5-D broadcasting tf.add
 * and tf.softmax (XNNPACK on wasm, slow on rows of 17–64) and, backward, their three
 * gradients (softmax's mul, sum, sub, mul; the add's reshape; the mul's scale), with one pass
 * over the scores each way:
 *   d scores = scale · (dy·p − (Σ dy·p)·p)
 * The bias gets no gradient (an attention mask): zeros, should a caller ever ask for one.
 * Gemma2's softcap stays outside: its scores come in already scaled and capped, scale 1.
 *
 * Numerics. wasm (simd-softmax.ts): float32 throughout, as the op chain with XNNPACK (the
 * same exp algorithm, sums over 4 lanes). cpu: z = x·scale + bias rounded to float32 as the
 * chain rounds them, then max, exp and Σ in float64 as kernels/softmax.ts (the chain's cpu
 * Softmax) does; the gradient in float64 too. A masked score (bias MASKED = −1e9) gets
 * probability exactly 0 on both; a fully masked row gives finite probabilities (its
 * maximum's e is 1), as before. Any other backend (tfjs-node) runs the op chain.
 *
 * Measured on wasm, stories260K (5 layers, nh 8, nkv 4, hs 8), 2-core AMD EPYC shared with
 * other jobs (load 2–5): CPU ms, min / median of 30 runs, op chain and this op interleaved
 * (the chain = this file's biasedSoftmaxChain, i.e. attention.ts before this op):
 *                                                    op chain       this op
 *   prefill forward, B 256 × T 17 (lastOnly, mask)   111 / 143      104 / 131
 *   prefill forward, B 256 × T 30                    197 / 260      179 / 234
 *   attendHeads alone, T 17                          6.9 / 9.8      5.6 / 8.0
 *   attendHeads alone, T 30                          14.3 / 19.3    11.3 / 15.1
 *   attendHeads forward + backward, T 17             17.5 / 25.1    13.8 / 18.4
 *   the op alone, (256, 4, 60, 30), wall ms of 21   6.9 / 8.8      3.6 / 4.7
 *     same on cpu                                    51 / 64        38 / 44
 * The 20M Llama's training step (bench/engine.mjs: B 8 × 64, hs 64) does not move (1.2–1.6 s
 * either way: its scores are 1/14 of stories260K's and the GEMMs dominate).
 * Before the lane reductions went to shuffles and pmax, and the constants into locals, this op
 * was no faster than the chain; before masked lanes were zeroed ahead of the exp (denormal
 * arithmetic), 2–3× slower.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { readValues, zeroOutput, type DataBackend } from "./backend-data.js";
import { wasmBiasedSoftmax, wasmBiasedSoftmaxGrad } from "./simd-softmax.js";
import { isWasmBackend } from "./wasm-heap.js";

export const BIASED_SOFTMAX = "OmlBiasedSoftmax";
export const BIASED_SOFTMAX_GRAD = "OmlBiasedSoftmaxGrad";

export interface BiasedSoftmaxAttrs {
  /** multiplies the scores before the bias is added */
  scale: number;
}

/**
 * out = softmax(x·scale + bias) row by row (cpu). x holds `blocks` of R rows of S; bias holds
 * `biasBlocks` (1 or blocks / H) of T rows; block k uses bias block ⌊k / H⌋ (or 0).
 */
export function biasedSoftmaxValues(x: TypedArray, bias: TypedArray, shape: { B: number; H: number; R: number; S: number; T: number; Bb: number }, scale: number, out: Float32Array): void {
  const { B, H, R, S, T, Bb } = shape;
  const sc = Math.fround(scale); // tf.mul's scalar is a float32 tensor
  for (let bh = 0; bh < B * H; bh++) {
    const biasBlock = Bb === 1 ? 0 : Math.floor(bh / H) * T * S;
    for (let r = 0; r < R; r++) {
      const o = (bh * R + r) * S;
      const bo = biasBlock + (r % T) * S;
      let max = -Infinity;
      for (let j = 0; j < S; j++) {
        const z = Math.fround(Math.fround((x[o + j] as number) * sc) + (bias[bo + j] as number)); // the chain's float32 mul, add
        out[o + j] = z;
        if (z > max) {
          max = z;
        }
      }
      let sum = 0;
      for (let j = 0; j < S; j++) {
        const e = Math.exp((out[o + j] as number) - max); // an exact 0 far below the max (masked)
        out[o + j] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let j = 0; j < S; j++) {
        out[o + j] = (out[o + j] as number) * inv;
      }
    }
  }
}

/** out = scale · (dy·p − (Σ dy·p)·p) row by row over the last axis of width S (cpu, float64). */
export function biasedSoftmaxGradValues(dy: TypedArray, probs: TypedArray, S: number, scale: number, out: Float32Array): void {
  const sc = Math.fround(scale);
  for (let o = 0; o < probs.length; o += S) {
    let dot = 0;
    for (let j = 0; j < S; j++) {
      dot += (dy[o + j] as number) * (probs[o + j] as number);
    }
    for (let j = 0; j < S; j++) {
      const p = probs[o + j] as number;
      out[o + j] = ((dy[o + j] as number) - dot) * p * sc;
    }
  }
}

/** The shapes the kernel accepts; throws on anything else (a bias that is not attention's). */
function checkShapes(scores: TensorInfo, bias: TensorInfo): { B: number; H: number; R: number; S: number; T: number; Bb: number } {
  const [B, H, R, S] = scores.shape as [number, number, number, number];
  const [Bb, one, T, Sb] = bias.shape as [number, number, number, number];
  if (scores.shape.length !== 4 || bias.shape.length !== 4 || one !== 1 || Sb !== S || (Bb !== 1 && Bb !== B) || T === 0 || R % T !== 0) {
    throw new Error(`${BIASED_SOFTMAX}: scores (B, H, nrep·T, S) and bias (B or 1, 1, T, S) expected, got [${scores.shape}] and [${bias.shape}]`);
  }
  if (scores.dtype !== "float32" || bias.dtype !== "float32") {
    throw new Error(`${BIASED_SOFTMAX}: float32 scores and bias expected`);
  }
  return { B, H, R, S, T, Bb };
}

function forwardKernel({ inputs, backend, attrs }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { scores, bias } = inputs as { scores: TensorInfo; bias: TensorInfo };
  const { scale } = attrs as unknown as BiasedSoftmaxAttrs;
  const shape = checkShapes(scores, bias);
  if (isWasmBackend(backend)) {
    return wasmBiasedSoftmax(backend, scores, bias, scale);
  }
  const b = backend as unknown as DataBackend;
  const out = zeroOutput(b, scores.shape, "float32");
  biasedSoftmaxValues(readValues(b, scores), readValues(b, bias), shape, scale, out.values as Float32Array);
  return out.finish();
}

function gradKernel({ inputs, backend, attrs }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { dy, probs } = inputs as { dy: TensorInfo; probs: TensorInfo };
  const { scale } = attrs as unknown as BiasedSoftmaxAttrs;
  if (isWasmBackend(backend)) {
    return wasmBiasedSoftmaxGrad(backend, dy, probs, scale);
  }
  const b = backend as unknown as DataBackend;
  const out = zeroOutput(b, probs.shape, "float32");
  biasedSoftmaxGradValues(readValues(b, dy), readValues(b, probs), probs.shape[probs.shape.length - 1] ?? 1, scale, out.values as Float32Array);
  return out.finish();
}

/** The forward and gradient kernels of one backend. */
export function biasedSoftmaxConfigs(backendName: string): KernelConfig[] {
  return [
    { kernelName: BIASED_SOFTMAX, backendName, kernelFunc: forwardKernel },
    { kernelName: BIASED_SOFTMAX_GRAD, backendName, kernelFunc: gradKernel },
  ];
}

/** d scores from the saved probabilities; zeros for the bias (a mask needs none). */
export const biasedSoftmaxGradConfig: tf.GradConfig = {
  kernelName: BIASED_SOFTMAX,
  inputsToSave: ["bias"],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [bias, probs] = saved as [tf.Tensor, tf.Tensor];
    const { scale } = attrs as unknown as BiasedSoftmaxAttrs;
    return {
      scores: () => tf.engine().runKernel(BIASED_SOFTMAX_GRAD, { dy: dy as tf.Tensor, probs }, { scale } as unknown as tf.NamedAttrMap) as tf.Tensor,
      bias: () => tf.zerosLike(bias),
    };
  },
};

/** The op chain the kernel replaces (any backend without it; the tests' reference). */
export function biasedSoftmaxChain(scores: tf.Tensor4D, bias: tf.Tensor4D, scale: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, H, R, S] = scores.shape;
    const T = bias.shape[2];
    const scaled = scale === 1 ? scores : tf.mul(scores, scale);
    const biased = tf.add(tf.reshape(scaled, [B, H, R / T, T, S]), tf.expandDims(bias, 2)); // (B, H, nrep, T, S)
    return tf.reshape(tf.softmax(biased), [B, H, R, S]) as tf.Tensor4D;
  });
}

/**
 * softmax(scores · scale + bias) over the last axis, differentiable in the scores.
 * @param scores (B, H, nrep·T, S) float32
 * @param bias (B or 1, 1, T, S) float32, shared by the nrep query heads of a group
 */
export function biasedSoftmax(scores: tf.Tensor4D, bias: tf.Tensor4D, scale: number): tf.Tensor4D {
  if (tf.getKernel(BIASED_SOFTMAX, tf.getBackend())) {
    return tf.engine().runKernel(BIASED_SOFTMAX, { scores, bias }, { scale } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  }
  return biasedSoftmaxChain(scores, bias, scale);
}
