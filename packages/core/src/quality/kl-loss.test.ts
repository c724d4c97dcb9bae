import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { InputError } from "../errors.js";
import { maxScaledError, numericGradient } from "../train/gradient-check.js";
import { collateKlTargets, klToReference, referenceTopK, type KlTarget } from "./kl-loss.js";

/** Full KL(p ‖ q) in float64 from two logit rows. */
function directKl(p: number[], q: number[]): number {
  const logSoftmax = (x: number[]): number[] => {
    const m = Math.max(...x);
    const z = Math.log(x.reduce((s, v) => s + Math.exp(v - m), 0)) + m;
    return x.map((v) => v - z);
  };
  const lp = logSoftmax(p);
  const lq = logSoftmax(q);
  return lp.reduce((s, l, i) => s + Math.exp(l) * (l - (lq[i] as number)), 0);
}

for (const backend of ["cpu", "wasm"] as const) {
  describe(`KL to a top-k reference on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test("by hand: p = (0.5, 0.3, 0.2) against a uniform q, k = 3 (exact) and k = 1 (coarsened)", () => {
      tf.tidy(() => {
        const ref = tf.tensor2d([[Math.log(0.5), Math.log(0.3), Math.log(0.2)]]);
        const full = referenceTopK(ref, 3);
        expect(Array.from(full.indices)).toEqual([0, 1, 2]);
        expect(full.rest[0]).toBe(0);
        const one = referenceTopK(ref, 1);
        expect(Array.from(one.indices)).toEqual([0]);
        expect(one.logProbs[0]).toBeCloseTo(Math.log(0.5), 6);
        expect(one.rest[0]).toBeCloseTo(0.5, 6);

        const x = tf.zeros([1, 1, 3]);
        // Exact: 0.5 ln 1.5 + 0.3 ln 0.9 + 0.2 ln 0.6 = 0.068953…
        expect(klToReference(x, full).dataSync()[0]).toBeCloseTo(0.5 * Math.log(1.5) + 0.3 * Math.log(0.9) + 0.2 * Math.log(0.6), 6);
        // Coarsened to {0, rest}: 0.5 ln(0.5 / (1/3)) + 0.5 ln(0.5 / (2/3)) = 0.058892… ≤ the exact KL.
        expect(klToReference(x, one).dataSync()[0]).toBeCloseTo(0.5 * Math.log(1.5) + 0.5 * Math.log(0.75), 6);

        // Gradients: q − p for k = V; for k = 1, q₀ − p₀ on the kept token and q_j (1 − p_r / q_r) = ⅓ · ¼ outside.
        const gFull = tf.grad((l: tf.Tensor) => klToReference(l, full))(x).dataSync();
        expect(maxScaledError(gFull, [1 / 3 - 0.5, 1 / 3 - 0.3, 1 / 3 - 0.2])).toBeLessThan(1e-6);
        const gOne = tf.grad((l: tf.Tensor) => klToReference(l, one))(x).dataSync();
        expect(maxScaledError(gOne, [-1 / 6, 1 / 12, 1 / 12])).toBeLessThan(1e-6);
      });
    });

    test("k = V equals the direct full KL, averaged over the target positions only", () => {
      tf.tidy(() => {
        const V = 9;
        const refLogits = tf.mul(tf.randomNormal([2, 4, V], 0, 1, "float32", 3), 2);
        const cur = tf.mul(tf.randomNormal([2, 4, V], 0, 1, "float32", 4), 2);
        const positions = [[0, 2], [3]];
        const pr = refLogits.arraySync() as number[][][];
        const cr = cur.arraySync() as number[][][];
        const targets = positions.map((ts, b) => ({
          positions: ts,
          target: referenceTopK(tf.tensor2d(ts.map((t) => pr[b]?.[t] as number[])), V),
        }));
        const target = collateKlTargets(targets, 4);
        expect(Array.from(target.rows)).toEqual([0, 2, 7]);
        let want = 0;
        positions.forEach((ts, b) => ts.forEach((t) => (want += directKl(pr[b]?.[t] as number[], cr[b]?.[t] as number[]))));
        expect(klToReference(cur, target).dataSync()[0]).toBeCloseTo(want / 3, 5);
        // the reference against itself: 0
        expect(Math.abs(klToReference(refLogits, target).dataSync()[0] as number)).toBeLessThan(1e-6);
      });
    });

    test("the analytic gradient matches finite differences (k < V, rest bucket in play)", () => {
      tf.tidy(() => {
        const V = 7;
        const refRows = tf.mul(tf.randomNormal([3, V], 0, 1, "float32", 5), 1.5) as tf.Tensor2D;
        const t0 = referenceTopK(refRows, 3);
        const target: KlTarget = { ...t0, rows: Int32Array.from([0, 4, 5]) }; // (2, 3) logits, positions 0, 4, 5
        const x = tf.mul(tf.randomNormal([2, 3, V], 0, 1, "float32", 6), 1.5);
        const f = (l: tf.Tensor): tf.Scalar => klToReference(l, target);
        const analytic = tf.grad(f)(x).dataSync();
        const numeric = numericGradient(f, x, 1e-2);
        expect(maxScaledError(analytic, numeric)).toBeLessThan(2e-3);
        // rows without a target get no gradient
        expect(Array.from(analytic.slice(V, 4 * V)).every((g) => g === 0)).toBe(true);
      });
    });

    test("an empty target is 0 with a zero gradient; bad token ids are an InputError", () => {
      tf.tidy(() => {
        const x = tf.ones([1, 2, 4]);
        const empty: KlTarget = { rows: new Int32Array(0), k: 2, indices: new Int32Array(0), logProbs: new Float32Array(0), rest: new Float32Array(0) };
        expect(klToReference(x, empty).dataSync()[0]).toBe(0);
        expect(Array.from(tf.grad((l: tf.Tensor) => klToReference(l, empty))(x).dataSync()).every((g) => g === 0)).toBe(true);
        const bad: KlTarget = { rows: Int32Array.from([0]), k: 1, indices: Int32Array.from([9]), logProbs: Float32Array.from([0]), rest: Float32Array.from([0]) };
        expect(() => klToReference(x, bad)).toThrow(InputError);
        expect(() => klToReference(x, bad)).toThrow(/token 9 is outside the vocabulary \[0, 4\)/);
      });
    });
  });
}
