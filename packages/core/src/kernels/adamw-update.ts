/**
 * The AdamW update of one tensor (train/adamw.ts) as one kernel: the new weights come out
 * as a new tensor; the moments m and v, Float32Arrays outside the tfjs heap, are updated in
 * place. On wasm: a SIMD float32 loop with PyTorch's operation order, in the heap
 * (simd-adamw.ts, ~1 ns per parameter). On cpu: the float64 JS loop below (10–16 ns per
 * parameter), which train/adamw.ts also runs through dataSync on any other backend.
 */
import type { KernelConfig, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { readValues, zeroOutput, type DataBackend } from "./backend-data.js";
import { wasmAdamwUpdate } from "./simd-adamw.js";
import { isWasmBackend } from "./wasm-heap.js";

export const ADAMW_UPDATE = "OmlAdamWUpdate";

export interface AdamWUpdateAttrs {
  /** First moment, updated in place. */
  m: Float32Array;
  /** Second moment, updated in place. */
  v: Float32Array;
  beta1: number;
  beta2: number;
  eps: number;
  /** 1 − lr·wd. */
  decay: number;
  /** lr / (1 − β1ᵗ). */
  stepSize: number;
  /** √(1 − β2ᵗ). */
  bc2Sqrt: number;
  /** Multiplies the gradient first (global-norm clipping, accumulation), as torch's in-place clip does; default 1. */
  gradScale?: number;
}

/**
 * PyTorch's AdamW for one tensor: m ← m + (g − m)(1 − β1); v ← v·β2 + g²(1 − β2);
 * out = w·decay − stepSize·m / (√v / bc2Sqrt + eps). Runs in float64; m, v and out are
 * rounded to float32 once, and the update uses the stored (rounded) m and v, as torch does.
 */
export function adamwUpdateValues(w: TypedArray, g: TypedArray, a: AdamWUpdateAttrs, out: Float32Array): void {
  const { m, v, beta1, beta2, eps, decay, stepSize } = a;
  const invBc2Sqrt = 1 / a.bc2Sqrt;
  const gs = a.gradScale ?? 1;
  for (let i = 0; i < out.length; i++) {
    const gi = gs === 1 ? (g[i] as number) : Math.fround((g[i] as number) * gs);
    m[i] = (m[i] as number) + (gi - (m[i] as number)) * (1 - beta1);
    v[i] = (v[i] as number) * beta2 + gi * gi * (1 - beta2);
    out[i] = (w[i] as number) * decay - (stepSize * (m[i] as number)) / (Math.sqrt(v[i] as number) * invBc2Sqrt + eps);
  }
}

function kernelFunc({ inputs, backend, attrs }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { w, g } = inputs as { w: TensorInfo; g: TensorInfo };
  if (isWasmBackend(backend)) {
    return wasmAdamwUpdate(backend, w, g, attrs as unknown as AdamWUpdateAttrs);
  }
  const b = backend as unknown as DataBackend;
  const out = zeroOutput(b, w.shape, "float32");
  adamwUpdateValues(readValues(b, w), readValues(b, g), attrs as unknown as AdamWUpdateAttrs, out.values as Float32Array);
  return out.finish();
}

export function adamwUpdateConfig(backendName: string): KernelConfig {
  return { kernelName: ADAMW_UPDATE, backendName, kernelFunc };
}
