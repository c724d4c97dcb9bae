import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { rotateHalf, rotateHalfValues } from "./rotate-half.js";

/** transformers' rotate_half on nested rows: cat(−x2, x1) over the last dim. */
function rotateRows(rows: number[][]): number[][] {
  return rows.map((r) => {
    const h = r.length / 2;
    return [...r.slice(h).map((v) => -v), ...r.slice(0, h)];
  });
}

test("rotateHalfValues by hand: two runs of 4, both signs", () => {
  const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const out = new Float32Array(8);
  rotateHalfValues(x, 4, 1, out);
  expect(Array.from(out)).toEqual([-3, -4, 1, 2, -7, -8, 5, 6]);
  rotateHalfValues(x, 4, -1, out);
  expect(Array.from(out)).toEqual([3, 4, -1, -2, 7, 8, -5, -6]);
});

for (const backend of ["wasm", "cpu"] as const) {
  describe(`rotateHalf on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test("values: the definition on a (2, 3, 5, 8) tensor", () => {
      const rows = Array.from({ length: 30 }, (_, r) => Array.from({ length: 8 }, (_, j) => Math.fround(Math.sin(r * 8 + j) * 3)));
      const y = tf.tidy(() => rotateHalf(tf.tensor4d(rows.flat(), [2, 3, 5, 8])));
      expect(y.shape).toEqual([2, 3, 5, 8]);
      expect(Array.from(y.dataSync())).toEqual(rotateRows(rows).flat());
      y.dispose();
    });

    test("gradient: d/dx Σ w·rotate_half(x) = rotate_halfᵀ(w) = [w2, −w1]", () => {
      const w = [1, -2, 3, 0.5, 4, 5, -6, 7];
      const g = tf.tidy(() => {
        const wt = tf.tensor2d(w, [2, 4]);
        return tf.grad((x: tf.Tensor) => tf.sum(tf.mul(rotateHalf(x), wt)))(tf.zeros([2, 4]));
      });
      expect(Array.from(g.dataSync())).toEqual([3, 0.5, -1, 2, -6, 7, -4, -5]);
      g.dispose();
    });
  });
}
