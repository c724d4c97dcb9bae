/**
 * A float32 tensor's values without a copy where the backend allows it, to write or copy
 * weights out of tfjs without doubling them in memory.
 */
import * as tf from "@tensorflow/tfjs-core";
import { readValues, type DataBackend } from "../kernels/backend-data.js";

/**
 * The values of a float32 tensor: on wasm a view of its heap (valid only until the next
 * allocation in that heap: use it before any other tfjs call), on cpu the backend's own array,
 * elsewhere what the backend's readSync gives. Read only.
 */
export function weightValues(t: tf.Tensor): Float32Array {
  return readValues(tf.backend() as unknown as DataBackend, t) as Float32Array;
}
