/**
 * A fast UnsortedSegmentSum kernel: the gradient of `gather`, i.e. of the token embedding.
 *
 * The wasm backend has none, and the cpu backend's runs in O(numSegments × N) (minutes at a
 * 32k vocabulary). This one is a single O(N × inner) scatter-add in JS over the backend's
 * own buffers, registered for both.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";

/** What we use of a backend: cpu has makeTensorInfo; wasm has makeOutput + typedArrayFromHeap. */
interface DataBackend {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeTensorInfo?(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): TensorInfo;
  makeOutput?(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap?(t: TensorInfo): TypedArray;
}

/** Hand `values` to the backend as a new tensor of `shape`. */
export function makeOutput(b: DataBackend, shape: number[], dtype: tf.DataType, values: Float32Array | Int32Array): TensorInfo {
  if (b.makeOutput && b.typedArrayFromHeap) {
    const out = b.makeOutput(shape, dtype);
    b.typedArrayFromHeap(out).set(values);
    return out;
  }
  if (b.makeTensorInfo) {
    return b.makeTensorInfo(shape, dtype, values);
  }
  throw new Error("backend can neither makeOutput nor makeTensorInfo");
}

/** out[segmentIds[i], :] += x[i, :] for the leading axis of x, as tf.unsortedSegmentSum. */
export function unsortedSegmentSumValues(
  x: TypedArray,
  xShape: number[],
  segmentIds: TypedArray,
  numSegments: number,
  out: Float32Array | Int32Array,
): void {
  const outer = segmentIds.length;
  const inner = outer === 0 ? 0 : x.length / outer;
  void xShape;
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
  const xVals = b.readSync(x.dataId) as TypedArray;
  const ids = b.readSync(segmentIds.dataId) as TypedArray;
  // tf.unsortedSegmentSum flattens segmentIds against the leading dims of x.
  const idCount = ids.length;
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const innerSize = innerShape.reduce((a, c) => a * c, 1);
  const outShape = [numSegments, ...innerShape];
  const out = x.dtype === "int32" ? new Int32Array(numSegments * innerSize) : new Float32Array(numSegments * innerSize);
  unsortedSegmentSumValues(xVals, [idCount, innerSize], ids, numSegments, out);
  return makeOutput(b, outShape, x.dtype, out);
}

export function unsortedSegmentSumConfig(backendName: string): KernelConfig {
  return { kernelName: tf.UnsortedSegmentSum, backendName, kernelFunc };
}
