/**
 * Direct access to a backend's tensor memory, for the kernels of this folder (JS loops that
 * beat chains of tfjs ops). Only cpu and wasm are supported:
 * - cpu keeps each tensor in a JS typed array (readSync returns it, no copy);
 * - wasm keeps them in its heap; typedArrayFromHeap gives a view (no copy), valid only until
 *   the heap next grows, i.e. until the next wasm allocation. So allocate the output first,
 *   then take views of the inputs, then compute, with no tfjs call in between.
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { TensorInfo, TypedArray } from "@tensorflow/tfjs-core";

/** What the kernels use of a backend: cpu has makeTensorInfo; wasm has makeOutput + typedArrayFromHeap. */
export interface DataBackend {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeTensorInfo?(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): TensorInfo;
  makeOutput?(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap?(t: TensorInfo): TypedArray;
}

/** The values of an input, without a copy where the backend allows it. Read only. */
export function readValues(b: DataBackend, t: TensorInfo): TypedArray {
  return b.typedArrayFromHeap ? b.typedArrayFromHeap(t) : (b.readSync(t.dataId) as TypedArray);
}

/** A zero-filled output to write into, then `finish()` to hand it to the backend. */
export interface KernelOutput {
  values: Float32Array | Int32Array;
  finish(): TensorInfo;
}

/** Allocate a zero-filled output of `shape`: in the wasm heap directly, or a JS array for cpu. */
export function zeroOutput(b: DataBackend, shape: number[], dtype: "float32" | "int32"): KernelOutput {
  const size = shape.reduce((a, c) => a * c, 1);
  if (b.makeOutput && b.typedArrayFromHeap) {
    const info = b.makeOutput(shape, dtype);
    const values = b.typedArrayFromHeap(info) as Float32Array | Int32Array;
    values.fill(0); // wasm's malloc does not clear
    return { values, finish: () => info };
  }
  const { makeTensorInfo } = b;
  if (!makeTensorInfo) {
    throw new Error("backend can neither makeOutput nor makeTensorInfo");
  }
  const values = dtype === "int32" ? new Int32Array(size) : new Float32Array(size);
  return { values, finish: () => makeTensorInfo.call(b, shape, dtype, values) };
}
