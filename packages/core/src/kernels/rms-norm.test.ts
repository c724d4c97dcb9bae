import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { maxScaledError } from "../train/gradient-check.js";
import { fusedRmsNorm, rmsNormChain, rmsNormValues } from "./rms-norm.js";

/** x's shape (C last) and the weight offset (0 Llama, 1 Gemma). */
const CASES: [number[], number][] = [
  [[5, 8], 0],
  [[2, 3, 64], 0],
  [[4, 256], 1],
  [[3, 17, 64], 1],
  [[2, 2, 7], 0], // C mod 4 ≠ 0: wasm runs the JS loop
  [[1, 1, 4], 0],
];

const name = ([shape, offset]: [number[], number]): string => `x [${shape}], offset ${offset}`;

test("rmsNormValues by hand: x = [3, 4], eps 0, w = [1, 2]", () => {
  // mean(x²) = 12.5, r = 1/√12.5
  const out = new Float32Array(2);
  rmsNormValues(Float32Array.from([3, 4]), Float32Array.from([1, 2]), { eps: 0, offset: 0 }, out);
  expect(out[0]).toBeCloseTo(3 / Math.sqrt(12.5), 6);
  expect(out[1]).toBeCloseTo((2 * 4) / Math.sqrt(12.5), 6);
});

for (const backend of ["wasm", "cpu"] as const) {
  describe(`fusedRmsNorm on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test.each(CASES.map((c) => [name(c), c] as const))("values as the op chain: %s", (_, [shape, offset]) => {
      tf.tidy(() => {
        const C = shape[shape.length - 1] as number;
        const x = tf.randomNormal(shape, 0, 2, "float32", 1);
        const w = tf.randomNormal([C], 0.5, 0.5, "float32", 2);
        const got = fusedRmsNorm(x, w, 1e-5, offset);
        expect(got.shape).toEqual(shape);
        expect(maxScaledError(got.dataSync(), rmsNormChain(x, w, 1e-5, offset).dataSync())).toBeLessThan(5e-7); // a float32 rounding or two
      });
    });

    test.each(CASES.map((c) => [name(c), c] as const))("gradients to x and w as the op chain's: %s", (_, [shape, offset]) => {
      tf.tidy(() => {
        const C = shape[shape.length - 1] as number;
        const x = tf.randomNormal(shape, 0, 2, "float32", 3);
        const w = tf.randomNormal([C], 0.5, 0.5, "float32", 4);
        const dy = tf.randomNormal(shape, 0, 1, "float32", 5);
        const loss = (f: typeof fusedRmsNorm) => (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, b, 1e-5, offset), dy));
        const [gx, gw] = tf.grads(loss(fusedRmsNorm))([x, w]) as [tf.Tensor, tf.Tensor];
        const [cx, cw] = tf.grads(loss(rmsNormChain))([x, w]) as [tf.Tensor, tf.Tensor];
        expect(gx.shape).toEqual(shape);
        expect(gw.shape).toEqual([C]);
        expect(maxScaledError(gx.dataSync(), cx.dataSync())).toBeLessThan(2e-6);
        expect(maxScaledError(gw.dataSync(), cw.dataSync())).toBeLessThan(2e-6);
      });
    });

    test("a gradient to x alone (w a constant) leaves no tensor behind", () => {
      tf.tidy(() => {
        const w = tf.randomNormal([8], 1, 0.2, "float32", 6);
        const g = tf.grad((x: tf.Tensor) => tf.sum(fusedRmsNorm(x, w, 1e-6, 0)))(tf.randomNormal([3, 8], 0, 1, "float32", 7));
        expect(g.shape).toEqual([3, 8]);
      });
    });
  });
}
