/**
 * GatherV2 on wasm as row copies in the heap. tfjs-wasm's own computes every element's
 * source through strides in C++: the embedding lookup of (256, 53) ids from a (512, 64)
 * table (13568 rows of 64 floats) took ~100 ms; one `set` per row takes ~1 ms.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { rawView } from "./slice-concat.js";

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): TypedArray;
  readSync(dataId: object): tf.backend_util.BackendValues;
}

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

/** The wasm GatherV2 kernel; `stock` serves strings. */
export function gatherConfig(stock?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    if (x.dtype !== "float32" && x.dtype !== "int32" && x.dtype !== "bool") {
      if (!stock) {
        throw new Error(`GatherV2 of ${x.dtype} is not supported`);
      }
      return stock.kernelFunc(args);
    }
    const b = args.backend as unknown as HeapBackend;
    const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0] as number;
    const dim = x.shape[parsedAxis] as number;
    // a copy: a view of the heap would go stale at makeOutput
    const ids = Int32Array.from(b.readSync(indices.dataId) as Int32Array);
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i] as number;
      if (!(v >= 0 && v < dim)) {
        throw new Error(`GatherV2: the index value ${v} is not in [0, ${dim - 1}]`);
      }
    }
    const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x as tf.Tensor, indices as tf.Tensor, parsedAxis, batchDims);
    const out = b.makeOutput(info.outputShape, x.dtype);
    gatherValues(rawView(b, x), ids, info, rawView(b, out));
    return out;
  };
  return { kernelName: tf.GatherV2, backendName: "wasm", kernelFunc, setupFunc: stock?.setupFunc };
}
