/**
 * The forgetting regularizer: pull the fine-tuned weights back toward the base model,
 * w ← (1 − λ)·w + λ·w0, by tensor name.
 *
 * The anchor w0 lives in Float32Arrays outside the tfjs heap, so keeping a second copy of
 * the model costs no wasm memory (whose heap stops at 4 GiB) and no tfjs variable names.
 * Each weight is read once and written once; the mix runs in float64 and is rounded to
 * float32 once.
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";
import { AVERAGE_INTO, averageValues, type AverageIntoAttrs } from "../kernels/average-into.js";

/** A view of a float32 tensor's memory where the backend has one (wasm, cpu): no copy. */
function heapView(t: tf.Tensor): Float32Array | undefined {
  const b = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array };
  return typeof b.typedArrayFromHeap === "function" ? b.typedArrayFromHeap(t) : undefined;
}

/**
 * Copy tensors out of the tfjs heap, e.g. the base weights before fine-tuning starts.
 * @param tensors tensors by name (variables or plain tensors); they are not disposed
 * @param into a previous snapshot to overwrite (arrays of the right size are reused, so a
 *   best-weights snapshot taken every epoch allocates nothing and leaves no garbage)
 * @returns float32 copies by the same names
 */
export function snapshotWeights(tensors: Map<string, tf.Tensor>, into?: Map<string, Float32Array>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    if (t.dtype !== "float32") {
      throw new InputError(`snapshotWeights: "${name}" is ${t.dtype}, not float32`);
    }
    const reuse = into?.get(name);
    const data = heapView(t) ?? (t.dataSync() as Float32Array);
    if (reuse && reuse.length === data.length) {
      reuse.set(data);
      out.set(name, reuse);
    } else {
      out.set(name, Float32Array.from(data));
    }
  }
  return out;
}

/** λ of the averaging, in [0, 1]; an InputError otherwise. */
export function checkLambda(lambda: number): void {
  if (!Number.isFinite(lambda) || lambda < 0 || lambda > 1) {
    throw new InputError(`averageInto: lambda = ${lambda} must be in [0, 1]`, {
      hint: "0 keeps the fine-tuned weights, 1 restores the anchor",
    });
  }
}

/**
 * w ← (1 − λ)·w + λ·w0 for every variable, in place. λ = 0 leaves the variables untouched;
 * λ = 1 makes them bit-identical to the anchor.
 * @param vars the weights being trained, by tensor name
 * @param anchor w0 by the same names (extra names are ignored), each of the variable's size
 * @param lambda the pull toward the anchor, in [0, 1]
 */
export function averageInto(vars: Map<string, tf.Variable>, anchor: Map<string, Float32Array>, lambda: number): void {
  checkLambda(lambda);
  // Check everything before changing anything.
  for (const [name, v] of vars) {
    const w0 = anchor.get(name);
    if (!w0) {
      throw new InputError(`averageInto: no anchor weights for "${name}"`, { hint: "snapshot every trained tensor before training" });
    }
    if (w0.length !== v.size || v.dtype !== "float32") {
      throw new InputError(`averageInto: "${name}" has ${v.size} ${v.dtype} values but its anchor ${w0.length} float32`);
    }
  }
  if (lambda === 0) {
    return;
  }
  const kernel = tf.getKernel(AVERAGE_INTO, tf.getBackend()) !== undefined;
  for (const [name, v] of vars) {
    const w0 = anchor.get(name) as Float32Array;
    let t: tf.Tensor;
    if (lambda === 1) {
      t = tf.tensor(w0.slice(), v.shape, "float32"); // a copy: the backend may keep the array it is given
    } else if (kernel) {
      // in place in the heap when only the variable holds it (kernels/average-into.ts)
      const attrs: AverageIntoAttrs = { anchor: w0, lambda };
      t = tf.engine().runKernel(AVERAGE_INTO, { w: v }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    } else {
      const mixed = new Float32Array(v.size);
      averageValues(v.dataSync() as Float32Array, w0, lambda, mixed);
      t = tf.tensor(mixed, v.shape, "float32");
    }
    v.assign(t);
    t.dispose();
  }
}
