/**
 * RMSNorm as one op (model/norm.ts), with its gradient:
 *   y = x · r · (w + offset),  r = 1 / sqrt(mean(x², −1) + eps)   over the last axis C
 *   dx = r·(dy·g) − x · r³ · mean(dy·g·x),   dw = Σ_rows dy · x·r    (g = w + offset)
 * offset 0 is Llama's RMSNorm, 1 Gemma's (its weight stored as an offset from 1). It replaces
 * six ops (square, mean, add, rsqrt, mul, mul) forward and their gradients backward, each a
 * pass over the activations, by one pass forward and two backward.
 *
 * Numerics. wasm (simd-rms-norm.ts, C mod 4 = 0): float32 throughout, the mean accumulated in
 * float32 over four lanes. cpu (and wasm when C mod 4 ≠ 0): the sums in float64, every
 * other step rounded to float32 as the op chain rounds it, so the forward is the cpu chain's
 * to the bit when the sum needs no rounding; the gradient in float64. Both are the chain's
 * values within float32 rounding (a few ulp). Any other backend (tfjs-node) runs the chain.
 *
 * Measured on wasm, median CPU ms, chain and kernel runs interleaved in one process (2-core
 * AMD EPYC shared with other jobs, load 4–6; figures move ±15% between runs):
 *                                                     op chain     this op
 *   rmsNorm (4352, 64) forward (+ read back)              1.6         1.0
 *   rmsNorm (4352, 64) forward + both gradients          11.3         4.6
 *   rmsNorm (512, 256) forward + both gradients           5.0         2.2
 * With swiglu.ts, whole models (11 norms and 5 MLPs per stories260K forward):
 *   stories260K prefill, B 256 × T 17 (lastOnly): five runs of 21–61 pairs, chain → fused
 *     147.9 → 137.0, 128.6 → 112.8, 148.9 → 120.2, 124.6 → 118.4, 151.8 → 146.5: 5–29 ms
 *     less, median 11 ms (~8%); the per-op figures above predict ~10 ms
 *   20M Llama training step, 8 × 64: 1540 → 1497, 1420 → 1386 (~2.5%; its time is in the
 *     32000-wide head and the GEMMs)
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { readValues, zeroOutput, type DataBackend } from "./backend-data.js";
import { wasmRmsNorm, wasmRmsNormGrad } from "./simd-rms-norm.js";
import { isWasmBackend } from "./wasm-heap.js";

export const RMS_NORM = "OmlRmsNorm";
export const RMS_NORM_GRAD = "OmlRmsNormGrad";

export interface RmsNormAttrs {
  /** added to the mean square */
  eps: number;
  /** added to the weight: 0 (Llama), 1 (Gemma) */
  offset: number;
}

/** r = 1 / sqrt(mean(x²) + eps) of the row at `o`, rounded as the cpu chain rounds each op. */
function rowRstd(x: TypedArray, o: number, C: number, eps: number): number {
  let ss = 0;
  for (let j = 0; j < C; j++) {
    ss += Math.fround((x[o + j] as number) * (x[o + j] as number)); // tf.square, then tf.sum's float64 sum
  }
  const ms = Math.fround(Math.fround(ss) / C);
  return Math.fround(1 / Math.sqrt(Math.fround(ms + eps)));
}

/** out = x · r · (w + offset) row by row (cpu). */
export function rmsNormValues(x: TypedArray, w: TypedArray, attrs: RmsNormAttrs, out: Float32Array): void {
  const C = w.length;
  const eps = Math.fround(attrs.eps);
  const gain = Float32Array.from(w, (v) => v + attrs.offset);
  for (let o = 0; o < x.length; o += C) {
    const r = rowRstd(x, o, C, eps);
    for (let j = 0; j < C; j++) {
      out[o + j] = Math.fround((x[o + j] as number) * r) * (gain[j] as number);
    }
  }
}

/** dx and dw (accumulated over the rows in float64) for the output gradient dy (cpu). */
export function rmsNormGradValues(dy: TypedArray, x: TypedArray, w: TypedArray, attrs: RmsNormAttrs, dx: Float32Array, dw: Float32Array): void {
  const C = w.length;
  const eps = Math.fround(attrs.eps);
  const gain = Float32Array.from(w, (v) => v + attrs.offset);
  const dwSum = new Float64Array(C);
  for (let o = 0; o < x.length; o += C) {
    const r = rowRstd(x, o, C, eps);
    let dot = 0;
    for (let j = 0; j < C; j++) {
      dot += (dy[o + j] as number) * (gain[j] as number) * (x[o + j] as number);
    }
    const k = (r * r * r * dot) / C;
    for (let j = 0; j < C; j++) {
      const xj = x[o + j] as number;
      const dyj = dy[o + j] as number;
      dx[o + j] = r * dyj * (gain[j] as number) - xj * k;
      dwSum[j] = (dwSum[j] as number) + xj * r * dyj;
    }
  }
  dw.set(dwSum);
}

/** C, the weight's length, after checking that it is x's last dimension. */
function checkShapes(x: TensorInfo, w: TensorInfo): number {
  const C = w.shape[0] as number;
  if (w.shape.length !== 1 || x.shape.length === 0 || x.shape[x.shape.length - 1] !== C) {
    throw new Error(`${RMS_NORM}: x (…, C) and w (C) expected, got [${x.shape}] and [${w.shape}]`);
  }
  if (x.dtype !== "float32" || w.dtype !== "float32") {
    throw new Error(`${RMS_NORM}: float32 x and w expected`);
  }
  return C;
}

function forwardKernel({ inputs, backend, attrs }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { x, w } = inputs as { x: TensorInfo; w: TensorInfo };
  const a = attrs as unknown as RmsNormAttrs;
  const C = checkShapes(x, w);
  if (isWasmBackend(backend) && C % 4 === 0) {
    return wasmRmsNorm(backend, x, w, a.eps, a.offset);
  }
  const b = backend as unknown as DataBackend;
  const out = zeroOutput(b, x.shape, "float32"); // allocate first: heap views go stale when it grows
  rmsNormValues(readValues(b, x), readValues(b, w), a, out.values as Float32Array);
  return out.finish();
}

function gradKernel({ inputs, backend, attrs }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo[] {
  const { dy, x, w } = inputs as { dy: TensorInfo; x: TensorInfo; w: TensorInfo };
  const a = attrs as unknown as RmsNormAttrs;
  const C = checkShapes(x, w);
  if (isWasmBackend(backend) && C % 4 === 0) {
    return wasmRmsNormGrad(backend, dy, x, w, a.eps, a.offset);
  }
  const b = backend as unknown as DataBackend;
  const dx = zeroOutput(b, x.shape, "float32");
  const dw = zeroOutput(b, w.shape, "float32");
  rmsNormGradValues(readValues(b, dy), readValues(b, x), readValues(b, w), a, dx.values as Float32Array, dw.values as Float32Array);
  return [dx.finish(), dw.finish()];
}

/** The forward and gradient kernels of one backend. */
export function rmsNormConfigs(backendName: string): KernelConfig[] {
  return [
    { kernelName: RMS_NORM, backendName, kernelFunc: forwardKernel },
    { kernelName: RMS_NORM_GRAD, backendName, kernelFunc: gradKernel },
  ];
}

/**
 * dx and dw from one kernel run. It runs here, in the gradient function's body (inside the
 * backward pass's tidy), not in the per-input thunks: each thunk runs in a tidy of its own,
 * which would dispose the other output. An output nobody asks for (w frozen) is freed with
 * the backward pass's other intermediates.
 */
export const rmsNormGradConfig: tf.GradConfig = {
  kernelName: RMS_NORM,
  inputsToSave: ["x", "w"],
  gradFunc: (dy, saved, attrs) => {
    const [x, w] = saved as [tf.Tensor, tf.Tensor];
    const [dx, dw] = tf.engine().runKernel(RMS_NORM_GRAD, { dy: dy as tf.Tensor, x, w }, attrs) as tf.Tensor[];
    return { x: () => dx as tf.Tensor, w: () => dw as tf.Tensor };
  },
};

/** The op chain the kernel replaces (any backend without it; the tests' reference). */
export function rmsNormChain(x: tf.Tensor, w: tf.Tensor, eps: number, offset: number): tf.Tensor {
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true); // (..., 1)
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), offset === 0 ? w : tf.add(w, offset));
  });
}

/**
 * x · rsqrt(mean(x², −1) + eps) · (w + offset), differentiable in x and w.
 * @param x (…, C) float32
 * @param w (C) float32
 */
export function fusedRmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number, offset: number): tf.Tensor {
  const fits = w.rank === 1 && x.rank > 0 && x.shape[x.rank - 1] === w.shape[0];
  if (fits && x.dtype === "float32" && w.dtype === "float32" && tf.getKernel(RMS_NORM, tf.getBackend())) {
    return tf.engine().runKernel(RMS_NORM, { x, w }, { eps, offset } as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  return rmsNormChain(x, w, eps, offset);
}
