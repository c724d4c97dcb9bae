/**
 * A fast UnsortedSegmentSum kernel: the gradient of `gather`, i.e. of the token embedding.
 *
 * The wasm backend has none, and the cpu backend's runs in O(numSegments × N) (minutes at a
 * 32k vocabulary). This one is a single O(N × inner) scatter-add in JS over the backend's
 * own buffers, registered for both; on wasm it reads and writes the heap in place. (512, 256)
 * rows into a 32000 × 256 table: ~7–35 ms on wasm or cpu (bench/engine-primitives.mjs).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { readValues, zeroOutput, type DataBackend } from "./backend-data.js";

/** out[segmentIds[i], :] += x[i, :] for the leading axis of x, as tf.unsortedSegmentSum. */
export function unsortedSegmentSumValues(x: TypedArray, segmentIds: TypedArray, numSegments: number, out: Float32Array | Int32Array): void {
  const outer = segmentIds.length;
  const inner = outer === 0 ? 0 : x.length / outer;
  for (let i = 0; i < outer; i++) {
    const s = segmentIds[i] as number;
    if (s < 0 || s >= numSegments) {
      continue; // tf semantics: ids outside [0, numSegments) are dropped
    }
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) {
      out[dst + j] = (out[dst + j] as number) + (x[src + j] as number);
    }
  }
}

function kernelFunc({ inputs, backend, attrs }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as unknown as { numSegments: number };
  const b = backend as unknown as DataBackend;
  // tf.unsortedSegmentSum flattens segmentIds against the leading dims of x.
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const out = zeroOutput(b, [numSegments, ...innerShape], x.dtype === "int32" ? "int32" : "float32");
  const xVals = readValues(b, x); // views after the allocation: see backend-data.ts
  const ids = readValues(b, segmentIds);
  unsortedSegmentSumValues(xVals, ids, numSegments, out.values);
  return out.finish();
}

export function unsortedSegmentSumConfig(backendName: string): KernelConfig {
  return { kernelName: tf.UnsortedSegmentSum, backendName, kernelFunc };
}
