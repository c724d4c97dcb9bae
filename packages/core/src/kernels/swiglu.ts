/**
 * The gated MLP's silu(gate) · up as one op (model/mlp.ts), with its gradient:
 *   y = g·σ(g) · u,   du = dy · g·σ(g),   dg = dy·u · σ(g)·(1 + g·(1 − σ(g)))
 * Two kernels: OmlSwiGlu takes gate and up (two projections), OmlSwiGluSplit takes gate_up
 * (…, 2I) and reads its halves in place (Phi-3's fused projection: no split copies, and one
 * gradient tensor instead of two plus a concat). They replace sigmoid, two muls (and the
 * split) forward and five ops backward.
 *
 * Numerics. wasm (simd-swiglu.ts, I mod 4 = 0): float32, σ = 1 / (1 + exp(−g)) with
 * XNNPACK's exp approximation (tfjs-wasm's Sigmoid is XNNPACK's too), its multiply-adds fused
 * where relaxed SIMD runs: a few ulp from the op chain.
 * cpu (and wasm when I mod 4 ≠ 0): σ = 1 / (1 + exp(−g)) in float64 rounded to float32, then
 * the two products rounded as the chain rounds them: the cpu chain's values to the bit; the
 * gradient in float64. Any other backend (tfjs-node) runs the op chain.
 *
 * Measured on wasm, median CPU ms, chain and kernel runs interleaved in one process (2-core
 * AMD EPYC shared with other jobs, load 4–6; figures move ±15% between runs):
 *                                                     op chain     this op
 *   (4352, 172) forward, kernels alone (sigmoid 1.0, muls 0.5)   ~1.6     0.93
 *   (4352, 172) forward + read back                       4.4         3.0
 *   (4352, 172) forward + both gradients                 18.6        13.9
 *   gate_up (4352, 2·172) forward + gradient (split)     35.6        12.3
 *   (512, 704) forward + both gradients                   8.3         5.9
 *   model-level figures (with rms-norm.ts): rms-norm.ts's header.
 * The forward gains least: XNNPACK's sigmoid is already SIMD; the gradient (five ops) and
 * the split (two copies forward, a concat backward) gain most.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { readValues, zeroOutput, type DataBackend } from "./backend-data.js";
import { wasmSwiglu, wasmSwigluGrad } from "./simd-swiglu.js";
import { isWasmBackend } from "./wasm-heap.js";

export const SWIGLU = "OmlSwiGlu";
export const SWIGLU_SPLIT = "OmlSwiGluSplit";
export const SWIGLU_GRAD = "OmlSwiGluGrad";

/** Where the gate and up rows are: g at gOff + r·stride + j, u at uOff + r·stride + j. */
interface Layout {
  rows: number;
  I: number;
  stride: number;
  uOff: number;
}

const layout = (dyShape: number[], split: boolean): Layout => {
  const I = dyShape[dyShape.length - 1] as number;
  const rows = I === 0 ? 0 : dyShape.reduce((a, c) => a * c, 1) / I;
  return split ? { rows, I, stride: 2 * I, uOff: I } : { rows, I, stride: I, uOff: 0 };
};

/** out = silu(g)·u (cpu); `u` is `g` itself in the split layout. */
export function swigluValues(g: TypedArray, u: TypedArray, l: Layout, out: Float32Array): void {
  for (let r = 0; r < l.rows; r++) {
    for (let j = 0; j < l.I; j++) {
      const x = g[r * l.stride + j] as number;
      const sig = Math.fround(1 / (1 + Math.exp(-x))); // tf.sigmoid on cpu
      out[r * l.I + j] = Math.fround(x * sig) * (u[l.uOff + r * l.stride + j] as number);
    }
  }
}

/** dg and du (cpu, float64), written in the layout of g and u (dg = du's array when split). */
export function swigluGradValues(dy: TypedArray, g: TypedArray, u: TypedArray, l: Layout, dg: Float32Array, du: Float32Array): void {
  for (let r = 0; r < l.rows; r++) {
    for (let j = 0; j < l.I; j++) {
      const gi = r * l.stride + j;
      const x = g[gi] as number;
      const d = dy[r * l.I + j] as number;
      const sig = 1 / (1 + Math.exp(-x));
      du[l.uOff + gi] = d * x * sig;
      dg[gi] = d * (u[l.uOff + gi] as number) * sig * (1 + x * (1 - sig));
    }
  }
}

function check(kernel: string, ...ts: TensorInfo[]): void {
  if (ts.some((t) => t.dtype !== "float32")) {
    throw new Error(`${kernel}: float32 inputs expected`);
  }
}

function forwardKernel({ inputs, backend }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { gate, up } = inputs as { gate: TensorInfo; up: TensorInfo };
  check(SWIGLU, gate, up);
  if (gate.shape.join() !== up.shape.join() || gate.shape.length === 0) {
    throw new Error(`${SWIGLU}: gate and up of one shape expected, got [${gate.shape}] and [${up.shape}]`);
  }
  return run(backend, gate, up, gate.shape);
}

function splitKernel({ inputs, backend }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { gateUp } = inputs as { gateUp: TensorInfo };
  check(SWIGLU_SPLIT, gateUp);
  const twoI = gateUp.shape[gateUp.shape.length - 1];
  if (twoI === undefined || twoI % 2 !== 0) {
    throw new Error(`${SWIGLU_SPLIT}: gate_up (…, 2I) expected, got [${gateUp.shape}]`);
  }
  return run(backend, gateUp, null, [...gateUp.shape.slice(0, -1), twoI / 2]);
}

/** The forward on either layout (up null: split). */
function run(backend: unknown, gate: TensorInfo, up: TensorInfo | null, outShape: number[]): TensorInfo {
  const l = layout(outShape, up === null);
  if (isWasmBackend(backend) && l.I % 4 === 0) {
    return wasmSwiglu(backend, gate, up, outShape);
  }
  const b = backend as DataBackend;
  const out = zeroOutput(b, outShape, "float32"); // allocate first: heap views go stale when it grows
  const g = readValues(b, gate);
  swigluValues(g, up ? readValues(b, up) : g, l, out.values as Float32Array);
  return out.finish();
}

/** inputs dy, gate and up (two tensors: outputs dg, du) or dy and gate alone (gate_up: output d gate_up). */
function gradKernel({ inputs, backend }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo[] {
  const { dy, gate, up } = inputs as { dy: TensorInfo; gate: TensorInfo; up?: TensorInfo };
  const l = layout(dy.shape, !up);
  if (isWasmBackend(backend) && l.I % 4 === 0) {
    return wasmSwigluGrad(backend, dy, gate, up ?? null);
  }
  const b = backend as unknown as DataBackend;
  const dg = zeroOutput(b, gate.shape, "float32");
  const du = up ? zeroOutput(b, up.shape, "float32") : dg;
  const g = readValues(b, gate);
  swigluGradValues(readValues(b, dy), g, up ? readValues(b, up) : g, l, dg.values as Float32Array, du.values as Float32Array);
  return up ? [dg.finish(), du.finish()] : [dg.finish()];
}

/** The kernels of one backend. */
export function swigluConfigs(backendName: string): KernelConfig[] {
  return [
    { kernelName: SWIGLU, backendName, kernelFunc: forwardKernel },
    { kernelName: SWIGLU_SPLIT, backendName, kernelFunc: splitKernel },
    { kernelName: SWIGLU_GRAD, backendName, kernelFunc: gradKernel },
  ];
}

/**
 * dg and du from one kernel run, in the gradient function's body: the per-input thunks each
 * run in a tidy of their own, which would dispose the other output (rms-norm.ts explains).
 */
export const swigluGradConfigs: tf.GradConfig[] = [
  {
    kernelName: SWIGLU,
    inputsToSave: ["gate", "up"],
    gradFunc: (dy, saved) => {
      const [gate, up] = saved as [tf.Tensor, tf.Tensor];
      const [dg, du] = tf.engine().runKernel(SWIGLU_GRAD, { dy: dy as tf.Tensor, gate, up }) as tf.Tensor[];
      return { gate: () => dg as tf.Tensor, up: () => du as tf.Tensor };
    },
  },
  {
    kernelName: SWIGLU_SPLIT,
    inputsToSave: ["gateUp"],
    gradFunc: (dy, saved) => {
      const [gateUp] = saved as [tf.Tensor];
      const [d] = tf.engine().runKernel(SWIGLU_GRAD, { dy: dy as tf.Tensor, gate: gateUp }) as tf.Tensor[];
      return { gateUp: () => d as tf.Tensor };
    },
  },
];

/** silu(g)·u as the op chain (any backend without the kernels; the tests' reference). */
export function swigluChain(g: tf.Tensor, u: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(g, tf.sigmoid(g)), u));
}

const fusable = (...ts: tf.Tensor[]): boolean => ts.every((t) => t.dtype === "float32") && tf.getKernel(SWIGLU, tf.getBackend()) !== undefined;

/** silu(gate) · up, differentiable in both. @param gate, up (…, I) float32, one shape */
export function swiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  if (fusable(gate, up) && gate.shape.join() === up.shape.join()) {
    return tf.engine().runKernel(SWIGLU, { gate, up }) as tf.Tensor;
  }
  return swigluChain(gate, up);
}

/** silu(g) · u of gate_up = [g, u] along the last axis, differentiable. @param gateUp (…, 2I) float32 */
export function splitSwiglu(gateUp: tf.Tensor): tf.Tensor {
  if (fusable(gateUp)) {
    return tf.engine().runKernel(SWIGLU_SPLIT, { gateUp }) as tf.Tensor;
  }
  return tf.tidy(() => {
    const [g, u] = tf.split(gateUp, 2, -1) as [tf.Tensor, tf.Tensor];
    return swigluChain(g, u);
  });
}
