import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { maxScaledError } from "../train/gradient-check.js";

/** softmax of each row in float64. */
function reference(rows: number[][]): number[] {
  return rows.flatMap((r) => {
    const max = Math.max(...r);
    const e = r.map((v) => Math.exp(v - max));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
}

for (const backend of ["cpu", "wasm"] as const) {
  describe(`Softmax on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test("rows of a 3-D tensor, with huge and −Infinity logits (masked attention)", () => {
      tf.tidy(() => {
        const rows = [[1, 2, 3], [1000, 0, -1000], [0, -Infinity, 0], [-5, -5, -5]];
        const x = tf.tensor3d([rows.slice(0, 2), rows.slice(2)]); // (2, 2, 3)
        const y = tf.softmax(x);
        expect(y.shape).toEqual([2, 2, 3]);
        expect(maxScaledError(y.dataSync(), reference(rows))).toBeLessThan(1e-6);
      });
    });

    test("wide rows match the float64 definition; the gradient still uses the output", () => {
      tf.tidy(() => {
        const x = tf.mul(tf.randomNormal([3, 2000], 0, 1, "float32", 41), 4);
        expect(maxScaledError(tf.softmax(x).dataSync(), reference(x.arraySync() as number[][]))).toBeLessThan(1e-6);
        const r = tf.randomNormal([3, 2000], 0, 1, "float32", 42);
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.softmax(t), r)))(x);
        // d/dx Σ r·softmax(x) = y ⊙ (r − Σ r·y), row by row.
        const y = tf.softmax(x);
        const expected = tf.mul(y, tf.sub(r, tf.sum(tf.mul(r, y), -1, true)));
        expect(maxScaledError(g.dataSync(), expected.dataSync())).toBeLessThan(1e-6);
      });
    });
  });
}
