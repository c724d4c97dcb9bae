/**
 * Finite-difference gradients, to check analytic ones (llm.c test_gpt2.c compares its
 * gradients with PyTorch's the same way). Slow by design: two evaluations per element, so
 * use it on tensors of a few hundred elements.
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * Central differences (f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h for every element i of x.
 * @param f a scalar function of x; it is evaluated inside tf.tidy
 * @param x the point (float32); it is not modified
 * @param h the step; large steps are fine for functions that are linear in x
 * @returns the gradient, flattened in x's row-major order
 */
export function numericGradient(f: (x: tf.Tensor) => tf.Scalar, x: tf.Tensor, h = 1e-2): Float64Array {
  const base = Float32Array.from(x.dataSync() as Float32Array);
  const grad = new Float64Array(base.length);
  const evalAt = (values: Float32Array): number =>
    tf.tidy(() => (f(tf.tensor(values, x.shape, "float32")).dataSync() as Float32Array)[0] as number);
  for (let i = 0; i < base.length; i++) {
    const xi = base[i] as number;
    const plus = Float32Array.from(base);
    plus[i] = xi + h;
    const minus = Float32Array.from(base);
    minus[i] = xi - h;
    // Divide by the steps float32 actually took, not by the nominal 2h.
    grad[i] = (evalAt(plus) - evalAt(minus)) / ((plus[i] as number) - (minus[i] as number));
  }
  return grad;
}

/** The largest |a − b| / max(1, |a|, |b|) over the elements: absolute near zero, relative above one. */
export function maxScaledError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    return Infinity;
  }
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    const err = Math.abs(x - y) / Math.max(1, Math.abs(x), Math.abs(y));
    worst = Number.isNaN(err) ? Infinity : Math.max(worst, err);
  }
  return worst;
}
