/**
 * Gradient helpers: the global norm, clipping by it (torch.nn.utils.clip_grad_norm_), and
 * accumulation over micro-batches. Gradients are Map<tensor name, Tensor>, as AdamW takes them.
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";

/** ‖g‖ over all gradients together: √(Σ Σ g²). A sync point (reads one number). */
export function globalNorm(grads: Map<string, tf.Tensor>): number {
  if (grads.size === 0) {
    return 0;
  }
  return tf.tidy(() => {
    const squares = [...grads.values()].map((g) => tf.sum(tf.square(g)));
    return tf.sqrt(tf.addN(squares)).dataSync()[0] as number;
  });
}

/**
 * torch's clip_grad_norm_ coefficient min(1, maxNorm / (norm + 1e-6)); 1 for a non-finite
 * norm. Pass it to AdamW as `gradScale` to clip without a scaled copy of the gradients.
 */
export function clipCoefficient(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new InputError(`clipCoefficient: maxNorm = ${maxNorm} must be a finite number > 0`);
  }
  const coef = maxNorm / (norm + 1e-6);
  return !Number.isFinite(norm) || coef >= 1 ? 1 : coef;
}

/**
 * Scale all gradients by min(1, maxNorm / (norm + 1e-6)), as torch's clip_grad_norm_ does
 * (and TF's clip_by_global_norm). Nothing is disposed: when clipping, the returned map holds
 * new tensors of the current tf.tidy scope, like any op result; otherwise the same tensors.
 * A non-finite norm leaves the gradients as they are: the caller decides what to do.
 * @param grads gradients by tensor name
 * @param maxNorm the largest global norm allowed, > 0
 * @returns the (possibly) clipped gradients and the global norm before clipping
 */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): { grads: Map<string, tf.Tensor>; norm: number } {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new InputError(`clipByGlobalNorm: maxNorm = ${maxNorm} must be a finite number > 0`);
  }
  const norm = globalNorm(grads);
  const coef = maxNorm / (norm + 1e-6);
  if (!Number.isFinite(norm) || coef >= 1) {
    return { grads: new Map(grads), norm };
  }
  const clipped = new Map<string, tf.Tensor>();
  for (const [name, g] of grads) {
    clipped.set(name, tf.mul(g, coef));
  }
  return { grads: clipped, norm };
}

interface HeapBackend {
  typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array;
  refCount?: (dataId: object) => number;
}

/**
 * sum ← sum + g·rel in the memory of `sum`, when the backend exposes it (wasm) and nothing
 * else holds it; false otherwise. Rounds as tf.add(sum, tf.mul(g, rel)) in float32 does.
 */
function addInPlace(sum: tf.Tensor, g: tf.Tensor, rel: number): boolean {
  const b = tf.backend() as unknown as HeapBackend;
  if (typeof b.typedArrayFromHeap !== "function" || typeof b.refCount !== "function" || sum.dtype !== "float32" || g.dtype !== "float32" || b.refCount(sum.dataId) !== 1) {
    return false;
  }
  const dst = b.typedArrayFromHeap(sum);
  const src = b.typedArrayFromHeap(g);
  if (rel === 1) {
    for (let i = 0; i < dst.length; i++) {
      dst[i] = (dst[i] as number) + (src[i] as number); // a float32 add: the float64 sum of two float32s rounds once
    }
  } else {
    const r = Math.fround(rel);
    for (let i = 0; i < dst.length; i++) {
      dst[i] = (dst[i] as number) + Math.fround((src[i] as number) * r);
    }
  }
  return true;
}

/**
 * Sums gradients over micro-batches into tensors it keeps (tf.keep) until reset() or
 * dispose(). Scale each micro-batch so that the sum is the gradient of the full batch:
 * 1/k for k equal micro-batches of a mean loss, or (counted tokens of this micro-batch) /
 * (counted tokens of the batch) to weigh tokens equally, as one big batch would.
 *
 * Memory: the sums are kept as `factor · stored`, with the first micro-batch's gradients
 * stored as they are (a clone shares their memory), so a step with one micro-batch costs no
 * copy, and later ones add `g · (scale / factor)`: in place where the backend lets us write a
 * tensor's memory that nothing else holds (wasm), so the sums keep their place in the heap for
 * the whole step (no new tensors, no fragmenting of the heap); else as new tensors. The same
 * float32 roundings either way. `scaled` hands out the stored sums and the factor, which AdamW
 * applies as `gradScale` (times a clipping coefficient); `grads` multiplies the factor in (one
 * copy) for callers that want plain tensors.
 */
export class GradAccumulator {
  private sums = new Map<string, tf.Tensor>();
  private factor = 1;
  private added = 0;

  /**
   * Add scale · grads. The tensors of `grads` are neither kept nor disposed.
   * @param grads this micro-batch's gradients by tensor name
   * @param scale the weight of this micro-batch in the sum
   */
  add(grads: Map<string, tf.Tensor>, scale = 1): void {
    if (!Number.isFinite(scale)) {
      throw new InputError(`GradAccumulator.add: scale = ${scale} must be finite`);
    }
    if (this.sums.size === 0 && scale !== 0) {
      this.factor = scale;
    }
    const rel = scale / this.factor; // this micro-batch relative to the stored sums
    for (const [name, g] of grads) {
      const prev = this.sums.get(name);
      if (prev && prev.size !== g.size) {
        throw new InputError(`GradAccumulator.add: gradient "${name}" has ${g.size} values, ${prev.size} before`);
      }
      if (prev && addInPlace(prev, g, rel)) {
        continue;
      }
      const next = tf.keep(
        tf.tidy(() => {
          const scaled = rel === 1 ? tf.clone(g) : tf.mul(g, rel);
          return prev ? tf.add(prev, scaled) : scaled;
        }),
      );
      prev?.dispose();
      this.sums.set(name, next);
    }
    this.added++;
  }

  /**
   * The sums as `factor · grads`: tensors the accumulator owns (valid until the next add(),
   * reset() or dispose()) and the factor to multiply them by, e.g. AdamW's gradScale.
   */
  get scaled(): { grads: Map<string, tf.Tensor>; factor: number } {
    return { grads: new Map(this.sums), factor: this.factor };
  }

  /**
   * The sums so far as plain tensors (a new map the accumulator owns: valid until the next
   * add(), reset() or dispose()); a factor ≠ 1 is multiplied in here, once.
   */
  get grads(): Map<string, tf.Tensor> {
    if (this.factor !== 1) {
      for (const [name, t] of this.sums) {
        const next = tf.keep(tf.mul(t, this.factor));
        t.dispose();
        this.sums.set(name, next);
      }
      this.factor = 1;
    }
    return new Map(this.sums);
  }

  /** How many micro-batches were added since the last reset. */
  get microBatches(): number {
    return this.added;
  }

  /** Free the sums and start over. */
  reset(): void {
    tf.dispose([...this.sums.values()]);
    this.sums = new Map();
    this.factor = 1;
    this.added = 0;
  }

  dispose(): void {
    this.reset();
  }
}
