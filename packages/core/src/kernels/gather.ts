/**
 * GatherV2 on wasm and cpu as row copies. tfjs-wasm's own computes every element's source
 * through strides in C++: the embedding lookup of (256, 53) ids from a (512, 64) table
 * (13568 rows of 64 floats) took ~100 ms; one `set` per row takes ~1 ms. tfjs-cpu's took
 * 67 ms for the 20M model's (8, 64) ids.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { rawMemory } from "./raw-memory.js";


/**
 * out[b, o, i, :] = x[b, o, idx[b, i], :] with x viewed as (batch, outer, dim, slice) and
 * idx as (batch, n).
 */
export function gatherValues(x: TypedArray, idx: ArrayLike<number>, info: { batchSize: number; outerSize: number; dimSize: number; sliceSize: number }, out: TypedArray): void {
  const { batchSize, outerSize, dimSize, sliceSize } = info;
  const n = idx.length / batchSize;
  let o = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let r = 0; r < outerSize; r++) {
      const base = (b * outerSize + r) * dimSize;
      for (let i = 0; i < n; i++) {
        const s = (base + (idx[b * n + i] as number)) * sliceSize;
        if (sliceSize >= 16) {
          out.set(x.subarray(s, s + sliceSize), o);
        } else {
          for (let j = 0; j < sliceSize; j++) {
            out[o + j] = x[s + j] as number;
          }
        }
        o += sliceSize;
      }
    }
  }
}

/** The GatherV2 kernel of `backendName` (wasm or cpu); `stock` serves strings. */
export function gatherConfig(backendName: string, stock?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    const mem = rawMemory(args.backend);
    if ((x.dtype !== "float32" && x.dtype !== "int32" && x.dtype !== "bool") || !mem) {
      if (!stock) {
        throw new Error(`GatherV2 of ${x.dtype} is not supported`);
      }
      return stock.kernelFunc(args);
    }
    const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0] as number;
    const dim = x.shape[parsedAxis] as number;
    // a copy: a heap view would go stale at the output's allocation
    const ids = Int32Array.from(mem.input(indices));
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i] as number;
      if (!(v >= 0 && v < dim)) {
        throw new Error(`GatherV2: the index value ${v} is not in [0, ${dim - 1}]`);
      }
    }
    const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x as tf.Tensor, indices as tf.Tensor, parsedAxis, batchDims);
    const out = mem.output(info.outputShape, x.dtype);
    const values = out.values;
    gatherValues(mem.input(x), ids, info, values);
    return out.info;
  };
  return { kernelName: tf.GatherV2, backendName, kernelFunc, setupFunc: stock?.setupFunc };
}
