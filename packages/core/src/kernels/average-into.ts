/**
 * The averaging step of train/averaging.ts as one kernel: out = (1 − λ)·w + λ·w0, the anchor
 * w0 a Float32Array outside the heap, in float64 rounded once to float32. On wasm, when only
 * the variable holds w's memory (reference count 1), the result overwrites it and shares it,
 * as assign() expects: no copy of the weights out of the heap, no new tensor, no garbage
 * (the chain dataSync → JS array → tf.tensor left two 80 MB arrays per call on a 20M model).
 */
import type { KernelConfig, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { readValues, zeroOutput, type DataBackend } from "./backend-data.js";
import { isWasmBackend } from "./wasm-heap.js";

export const AVERAGE_INTO = "OmlAverageInto";

export interface AverageIntoAttrs {
  anchor: Float32Array;
  lambda: number;
}

/** out[i] = (1 − λ)·w[i] + λ·w0[i]; `out` may be `w` itself. */
export function averageValues(w: TypedArray, anchor: Float32Array, lambda: number, out: TypedArray): void {
  for (let i = 0; i < out.length; i++) {
    out[i] = (1 - lambda) * (w[i] as number) + lambda * (anchor[i] as number);
  }
}

interface RefCounts {
  refCount(dataId: object): number;
  incRef(dataId: object): void;
}

function kernelFunc({ inputs, backend, attrs }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { w } = inputs as { w: TensorInfo };
  const { anchor, lambda } = attrs as unknown as AverageIntoAttrs;
  const b = backend as unknown as DataBackend;
  if (isWasmBackend(backend) && (backend as unknown as RefCounts).refCount(w.dataId) === 1) {
    const values = readValues(b, w); // a view of w in the heap
    averageValues(values, anchor, lambda, values);
    (backend as unknown as RefCounts).incRef(w.dataId);
    return { dataId: w.dataId, shape: w.shape, dtype: "float32" };
  }
  const out = zeroOutput(b, w.shape, "float32");
  averageValues(readValues(b, w), anchor, lambda, out.values);
  return out.finish();
}

export function averageIntoConfig(backendName: string): KernelConfig {
  return { kernelName: AVERAGE_INTO, backendName, kernelFunc };
}
