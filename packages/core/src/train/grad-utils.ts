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

/**
 * Sums gradients over micro-batches into tensors it keeps (tf.keep) until reset() or
 * dispose(). Scale each micro-batch so that the sum is the gradient of the full batch:
 * 1/k for k equal micro-batches of a mean loss, or (counted tokens of this micro-batch) /
 * (counted tokens of the batch) to weigh tokens equally, as one big batch would.
 */
export class GradAccumulator {
  private sums = new Map<string, tf.Tensor>();
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
    for (const [name, g] of grads) {
      const prev = this.sums.get(name);
      if (prev && prev.size !== g.size) {
        throw new InputError(`GradAccumulator.add: gradient "${name}" has ${g.size} values, ${prev.size} before`);
      }
      const next = tf.keep(
        tf.tidy(() => {
          const scaled = scale === 1 ? tf.clone(g) : tf.mul(g, scale);
          return prev ? tf.add(prev, scaled) : scaled;
        }),
      );
      prev?.dispose();
      this.sums.set(name, next);
    }
    this.added++;
  }

  /** The sums so far (a new map of tensors the accumulator owns: valid until the next add(), reset() or dispose()). */
  get grads(): Map<string, tf.Tensor> {
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
    this.added = 0;
  }

  dispose(): void {
    this.reset();
  }
}
