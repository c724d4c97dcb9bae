import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { InputError } from "../errors.js";
import { maxScaledError, numericGradient } from "./gradient-check.js";
import { CROSS_ENTROPY_GRAD, crossEntropyGradConfig } from "../kernels/cross-entropy-grad.js";
import { IGNORE_INDEX, maskedCrossEntropy } from "./loss.js";

const X = IGNORE_INDEX;

/** The direct formula in float64: mean over counted t of logsumexp(x[t]) − x[t][labels[t + 1]]. */
function referenceLoss(x: Float32Array, labels: number[][], V: number): number {
  let total = 0;
  let count = 0;
  labels.forEach((row, b) => {
    for (let t = 0; t + 1 < row.length; t++) {
      const label = row[t + 1] as number;
      if (label === IGNORE_INDEX) {
        continue;
      }
      const o = (b * row.length + t) * V;
      const logits = Array.from(x.subarray(o, o + V));
      const max = Math.max(...logits);
      const lse = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
      total += lse - (logits[label] as number);
      count++;
    }
  });
  return count === 0 ? 0 : total / count;
}

/** The unfused tfjs formulation, differentiated by tfjs: −Σ mask·onehot·logSoftmax / count. */
function plainLoss(logits: tf.Tensor, labels: number[][], V: number): tf.Scalar {
  const shifted = labels.map((row) => [...row.slice(1), X]);
  const mask = tf.tensor2d(shifted.map((r) => r.map((l) => (l === X ? 1 : 0) ^ 1)), undefined, "float32");
  const ids = tf.tensor2d(shifted.map((r) => r.map((l) => (l === X ? 0 : l))), undefined, "int32");
  const onehot = tf.cast(tf.oneHot(ids, V), "float32"); // oneHot straight to float32 is zeros on wasm
  const picked = tf.sum(tf.mul(tf.logSoftmax(logits), onehot), -1); // (B, T)
  return tf.div(tf.neg(tf.sum(tf.mul(picked, mask))), tf.sum(mask)) as tf.Scalar;
}

for (const backend of ["cpu", "wasm"] as const) {
  describe(`maskedCrossEntropy on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test("by hand: logits at t predict labels[t + 1] (the Hugging Face shift)", () => {
      tf.tidy(() => {
        // p(·|t=0) = softmax([0, ln 3]) = [1/4, 3/4]; labels[1] = 1 → loss = −ln(3/4).
        // labels[0] is never a target; the logits at the last position never count.
        const logits = tf.tensor3d([[[0, Math.log(3)], [5, -5]]]);
        const labels = tf.tensor2d([[X, 1]], undefined, "int32");
        expect(maskedCrossEntropy(logits, labels).dataSync()[0]).toBeCloseTo(Math.log(4 / 3), 6);
        // d loss / d logits[0, 0] = p − onehot(1) = [1/4, −1/4]; the last position gets 0.
        const g = tf.grad((l: tf.Tensor) => maskedCrossEntropy(l, labels))(logits);
        expect(maxScaledError(g.dataSync(), [0.25, -0.25, 0, 0])).toBeLessThan(1e-6);
      });
    });

    test("matches the direct log-softmax formula and tfjs's own gradient of it", () => {
      tf.tidy(() => {
        const V = 11;
        const labels = [
          [3, X, X, 4, 7, 10, 0, X], // prompt masked, then a response
          [X, X, X, X, X, X, X, X], // an all-masked row: no position counts
          [1, 2, 3, 4, 5, 6, 7, 8],
        ];
        const logits = tf.mul(tf.randomNormal([3, 8, V], 0, 1, "float32", 11), 3);
        const labelsT = tf.tensor2d(labels, undefined, "int32");
        const loss = maskedCrossEntropy(logits, labelsT);
        const ref = referenceLoss(logits.dataSync() as Float32Array, labels, V);
        expect(Math.abs((loss.dataSync()[0] as number) - ref)).toBeLessThan(1e-5 * Math.max(1, ref));
        const ours = tf.grad((l: tf.Tensor) => maskedCrossEntropy(l, labelsT))(logits);
        const plain = tf.grad((l: tf.Tensor) => plainLoss(l, labels, V))(logits);
        expect(maxScaledError(ours.dataSync(), plain.dataSync())).toBeLessThan(1e-6);
        // Rows with no counted next label get exactly zero gradient.
        const g = ours.arraySync() as number[][][];
        expect(g[1]?.flat().every((v) => v === 0)).toBe(true);
        expect(g[0]?.[0]?.every((v) => v === 0)).toBe(true); // labels[0][1] is masked
        expect(g[2]?.[7]?.every((v) => v === 0)).toBe(true); // the last position
      });
    });

    test("a backend without the gradient kernel gets the same gradient through dataSync", () => {
      tf.tidy(() => {
        const labels = tf.tensor2d([[0, 4, X, 2], [X, 1, 3, X]], undefined, "int32");
        const logits = tf.randomNormal([2, 4, 5], 0, 1, "float32", 14);
        const grad = () => tf.grad((l: tf.Tensor) => tf.mul(maskedCrossEntropy(l, labels), 3))(logits);
        const withKernel = grad().dataSync();
        tf.unregisterKernel(CROSS_ENTROPY_GRAD, backend);
        try {
          expect(Array.from(grad().dataSync())).toEqual(Array.from(withKernel));
        } finally {
          tf.registerKernel(crossEntropyGradConfig(backend));
        }
      });
    });

    test("gradient matches finite differences", () => {
      tf.tidy(() => {
        const labels = tf.tensor2d([[0, 4, X, 2], [X, X, X, X]], undefined, "int32");
        const logits = tf.randomNormal([2, 4, 5], 0, 1, "float32", 12);
        const g = tf.grad((l: tf.Tensor) => maskedCrossEntropy(l, labels))(logits);
        const fd = numericGradient((l) => maskedCrossEntropy(l, labels), logits, 1e-2);
        expect(maxScaledError(g.dataSync(), fd)).toBeLessThan(5e-4);
      });
    });

    test("no counted position: loss 0 and a zero gradient, no NaN", () => {
      tf.tidy(() => {
        const logits = tf.randomNormal([2, 3, 7], 0, 1, "float32", 13);
        for (const rows of [[[X, X, X], [X, X, X]], [[5, X, X], [6, X, X]]]) {
          // The second case has labels only at t = 0, which no logit predicts.
          const labels = tf.tensor2d(rows, undefined, "int32");
          expect(maskedCrossEntropy(logits, labels).dataSync()[0]).toBe(0);
          const g = tf.grad((l: tf.Tensor) => maskedCrossEntropy(l, labels))(logits);
          expect(Array.from(g.dataSync()).every((v) => v === 0)).toBe(true);
        }
      });
    });

    test("huge logit gaps stay finite (no log of an underflowed probability)", () => {
      tf.tidy(() => {
        const logits = tf.tensor3d([[[1000, 0, -1000], [0, 0, 0]]]);
        const labels = tf.tensor2d([[0, 2]], undefined, "int32");
        expect(maskedCrossEntropy(logits, labels).dataSync()[0]).toBe(2000);
        const g = tf.grad((l: tf.Tensor) => maskedCrossEntropy(l, labels))(logits);
        expect(Array.from(g.dataSync())).toEqual([1, 0, -1, 0, 0, 0]);
      });
    });

    test("bad inputs are InputErrors naming the problem", () => {
      tf.tidy(() => {
        const logits = tf.zeros([1, 3, 4]);
        expect(() => maskedCrossEntropy(logits, tf.tensor2d([[0, 4, 1]], undefined, "int32"))).toThrow(/labels\[0\]\[1\] = 4 is outside the vocabulary \[0, 4\)/);
        expect(() => maskedCrossEntropy(logits, tf.tensor2d([[0, -1, 1]], undefined, "int32"))).toThrow(InputError);
        expect(() => maskedCrossEntropy(logits, tf.tensor2d([[0, 1]], undefined, "int32"))).toThrow(/do not fit/);
        expect(() => maskedCrossEntropy(logits, tf.tensor2d([[0, 1, 2]]))).toThrow(/labels are float32/);
      });
    });
  });
}
