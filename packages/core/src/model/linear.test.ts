import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { InputError } from "../errors.js";
import { maxScaledError, numericGradient } from "../train/gradient-check.js";
import { linear } from "./linear.js";

/** The formulation linear() replaces: matMul with transposeB, tfjs's own gradients. */
function plainLinear(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor {
  const inDim = w.shape[1];
  const y = tf.matMul(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, w, false, true);
  return tf.reshape(b ? tf.add(y, b) : y, [...x.shape.slice(0, -1), w.shape[0]]);
}

for (const backend of ["cpu", "wasm"] as const) {
  describe(`linear on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test("forward by hand: y = x·Wᵀ + b on an (out, in) weight", () => {
      tf.tidy(() => {
        const x = tf.tensor2d([[1, 2], [3, -1]]);
        const w = tf.tensor2d([[1, 0], [0, 1], [1, 1]]); // (out=3, in=2)
        const b = tf.tensor1d([1, 2, 3]);
        expect(linear(x, w, b).arraySync()).toEqual([[2, 4, 6], [4, 1, 5]]);
        expect(linear(x, w).arraySync()).toEqual([[1, 2, 3], [3, -1, 2]]);
      });
    });

    test("(B, T, in) input: values and gradients match the transpose-flag formulation", () => {
      tf.tidy(() => {
        const x = tf.randomNormal([2, 5, 8], 0, 1, "float32", 1);
        const w = tf.randomNormal([6, 8], 0, 1, "float32", 2) as tf.Tensor2D;
        const b = tf.randomNormal([6], 0, 1, "float32", 3) as tf.Tensor1D;
        const r = tf.randomNormal([2, 5, 6], 0, 1, "float32", 4);
        for (const bias of [undefined, b]) {
          const ours = linear(x, w, bias);
          expect(ours.shape).toEqual([2, 5, 6]);
          expect(maxScaledError(ours.dataSync(), plainLinear(x, w, bias).dataSync())).toBeLessThan(1e-5);
          const inputs = bias ? [x, w, bias] : [x, w];
          const loss = (f: typeof linear) => (...t: tf.Tensor[]) =>
            tf.sum(tf.mul(f(t[0] as tf.Tensor, t[1] as tf.Tensor2D, t[2] as tf.Tensor1D | undefined), r));
          const gOurs = tf.grads(loss(linear))(inputs);
          const gPlain = tf.grads(loss(plainLinear))(inputs);
          gOurs.forEach((g, i) => {
            expect(g.shape).toEqual(inputs[i]?.shape);
            expect(maxScaledError(g.dataSync(), (gPlain[i] as tf.Tensor).dataSync())).toBeLessThan(1e-5);
          });
        }
      });
    });

    test("gradients match finite differences for x, W and b", () => {
      tf.tidy(() => {
        const x = tf.randomNormal([3, 4], 0, 1, "float32", 5);
        const w = tf.randomNormal([5, 4], 0, 1, "float32", 6) as tf.Tensor2D;
        const b = tf.randomNormal([5], 0, 1, "float32", 7) as tf.Tensor1D;
        const r = tf.randomNormal([3, 5], 0, 1, "float32", 8);
        // A non-linear readout so that the check covers dy ≠ const: L = Σ r ⊙ y².
        const L = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor): tf.Scalar => tf.sum(tf.mul(r, tf.square(linear(xx, ww as tf.Tensor2D, bb as tf.Tensor1D))));
        const [gx, gw, gb] = tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => L(a, c, d))([x, w, b]);
        // L is quadratic in each argument, so central differences are exact up to rounding.
        expect(maxScaledError(gx!.dataSync(), numericGradient((t) => L(t, w, b), x, 0.25))).toBeLessThan(2e-4);
        expect(maxScaledError(gw!.dataSync(), numericGradient((t) => L(x, t, b), w, 0.25))).toBeLessThan(2e-4);
        expect(maxScaledError(gb!.dataSync(), numericGradient((t) => L(x, w, t), b, 0.25))).toBeLessThan(2e-4);
      });
    });

    test("trains variables through tf.variableGrads", () => {
      const w = tf.tidy(() => tf.variable(tf.tensor2d([[1, 2, 3], [4, 5, 6]]), true, `linear-test-w-${backend}`)); // (out=2, in=3)
      const x = tf.tensor2d([[1, 0, -1], [2, 1, 0]]);
      const { value, grads } = tf.variableGrads(() => tf.sum(linear(x, w)), [w]);
      // d/dW Σ x·Wᵀ = Σ_N x, the same for every output row.
      expect(grads[w.name]?.arraySync()).toEqual([[3, 1, -1], [3, 1, -1]]);
      expect(value.dataSync()[0]).toBe(-2 + 4 + -2 + 13);
      tf.dispose([value, x, w, ...Object.values(grads)]);
    });

    test("a weight that does not fit the input is an InputError", () => {
      const x = tf.zeros([2, 3]);
      const w = tf.zeros([3, 2]) as tf.Tensor2D;
      expect(() => linear(x, w)).toThrow(InputError);
      expect(() => linear(x, w)).toThrow(/input \(2, 3\) does not fit weight \(3, 2\)/);
      tf.dispose([x, w]);
    });
  });
}
