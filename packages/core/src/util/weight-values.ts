/**
 * A float32 tensor's values without a copy where the backend allows it, to write or copy
 * weights out of tfjs without doubling them in memory.
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * The values of a float32 tensor: on wasm a view of its heap (valid only until the next
 * allocation in that heap: use it before any other tfjs call), on cpu the backend's own array,
 * elsewhere a copy (dataSync). Read only.
 */
export function weightValues(t: tf.Tensor): Float32Array {
  const b = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array };
  return typeof b.typedArrayFromHeap === "function" ? b.typedArrayFromHeap(t) : (t.dataSync() as Float32Array);
}
