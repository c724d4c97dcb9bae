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

/**
 * Copy tensors out of the tfjs heap, e.g. the base weights before fine-tuning starts.
 * @param tensors tensors by name (variables or plain tensors); they are not disposed
 * @returns float32 copies by the same names
 */
export function snapshotWeights(tensors: Map<string, tf.Tensor>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    if (t.dtype !== "float32") {
      throw new InputError(`snapshotWeights: "${name}" is ${t.dtype}, not float32`);
    }
    out.set(name, Float32Array.from(t.dataSync() as Float32Array));
  }
  return out;
}

/**
 * w ← (1 − λ)·w + λ·w0 for every variable, in place. λ = 0 leaves the variables untouched;
 * λ = 1 makes them bit-identical to the anchor.
 * @param vars the weights being trained, by tensor name
 * @param anchor w0 by the same names (extra names are ignored), each of the variable's size
 * @param lambda the pull toward the anchor, in [0, 1]
 */
export function averageInto(vars: Map<string, tf.Variable>, anchor: Map<string, Float32Array>, lambda: number): void {
  if (!Number.isFinite(lambda) || lambda < 0 || lambda > 1) {
    throw new InputError(`averageInto: lambda = ${lambda} must be in [0, 1]`, {
      hint: "0 keeps the fine-tuned weights, 1 restores the anchor",
    });
  }
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
  for (const [name, v] of vars) {
    const w0 = anchor.get(name) as Float32Array;
    let mixed: Float32Array;
    if (lambda === 1) {
      mixed = w0.slice(); // a copy: the backend may keep the array it is given
    } else {
      const w = v.dataSync() as Float32Array;
      mixed = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) {
        mixed[i] = (1 - lambda) * (w[i] as number) + lambda * (w0[i] as number);
      }
    }
    const t = tf.tensor(mixed, v.shape, "float32");
    v.assign(t);
    t.dispose();
  }
}
