/**
 * The gradient of the fused cross-entropy (train/loss.ts) as one kernel:
 *   grad[r, :] = (probs[r, :] − onehot(targets[i])) · scale   for r = rows[i]
 *   grad[r, :] = 0                                           for every other row
 * On wasm it reads the saved probabilities and writes the gradient in the heap, in place:
 * a JS loop over the counted rows plus a zero fill, instead of a copy of the (N, V)
 * probabilities out of the heap, the loop, and a copy of the gradient back in: ~45 against
 * ~240 ms at N = 512, V = 32000. Registered for cpu and wasm; train/loss.ts falls back to the
 * same arithmetic through dataSync on any other backend.
 */
import type { KernelConfig, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { readValues, zeroOutput, type DataBackend } from "./backend-data.js";

export const CROSS_ENTROPY_GRAD = "OmlCrossEntropyGrad";

export interface CrossEntropyGradAttrs {
  /** Rows of the (N, V) probabilities whose loss counts. */
  rows: Int32Array;
  /** The target id of each of `rows`. */
  targets: Int32Array;
  /** dy / count. */
  scale: number;
}

/** Write the gradient into `out` (zero-filled, the size of probs). */
export function crossEntropyGradValues(probs: TypedArray, V: number, attrs: CrossEntropyGradAttrs, out: Float32Array): void {
  const { rows, targets, scale } = attrs;
  for (let i = 0; i < rows.length; i++) {
    const o = (rows[i] as number) * V;
    for (let j = 0; j < V; j++) {
      out[o + j] = (probs[o + j] as number) * scale;
    }
    const k = o + (targets[i] as number);
    out[k] = ((probs[k] as number) - 1) * scale;
  }
}

function kernelFunc({ inputs, backend, attrs }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { probs } = inputs as { probs: TensorInfo };
  const b = backend as unknown as DataBackend;
  const out = zeroOutput(b, probs.shape, "float32");
  const V = probs.shape[probs.shape.length - 1] ?? 1;
  crossEntropyGradValues(readValues(b, probs), V, attrs as unknown as CrossEntropyGradAttrs, out.values as Float32Array);
  return out.finish();
}

export function crossEntropyGradConfig(backendName: string): KernelConfig {
  return { kernelName: CROSS_ENTROPY_GRAD, backendName, kernelFunc };
}
