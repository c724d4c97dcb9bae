import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { InputError } from "../errors.js";
import { GradAccumulator, clipByGlobalNorm, clipCoefficient, globalNorm } from "./grad-utils.js";
import { maxScaledError } from "./gradient-check.js";
import { IGNORE_INDEX, maskedCrossEntropy } from "./loss.js";

for (const backend of ["cpu", "wasm"] as const) {
  describe(`gradient utilities on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test("global norm by hand: ‖(3, 4, 12)‖ = 13", () => {
      tf.tidy(() => {
        const grads = new Map([["a", tf.tensor1d([3, 4])], ["b", tf.tensor2d([[12]])]]);
        expect(globalNorm(grads)).toBeCloseTo(13, 5);
        expect(globalNorm(new Map())).toBe(0);
      });
    });

    test("clipping scales by maxNorm / (norm + 1e-6) only above maxNorm", () => {
      tf.tidy(() => {
        const grads = new Map([["a", tf.tensor1d([3, 4])], ["b", tf.tensor2d([[12]])]]);
        const clipped = clipByGlobalNorm(grads, 6.5);
        expect(clipped.norm).toBeCloseTo(13, 5);
        expect(maxScaledError(clipped.grads.get("a")?.dataSync() ?? [], [1.5, 2])).toBeLessThan(1e-6);
        expect(maxScaledError(clipped.grads.get("b")?.dataSync() ?? [], [6])).toBeLessThan(1e-6);
        expect(globalNorm(clipped.grads)).toBeCloseTo(6.5, 5);
        const kept = clipByGlobalNorm(grads, 13.5);
        expect(kept.grads.get("a")).toBe(grads.get("a")); // below the limit: the same tensors
        expect(kept.norm).toBeCloseTo(13, 5);
        const nan = clipByGlobalNorm(new Map([["a", tf.tensor1d([Number.NaN, 1])]]), 1);
        expect(nan.norm).toBeNaN();
        expect(() => clipByGlobalNorm(grads, 0)).toThrow(InputError);
      });
    });

    test("clipCoefficient: maxNorm / (norm + 1e-6) above maxNorm, else 1", () => {
      expect(clipCoefficient(13, 1)).toBeCloseTo(1 / (13 + 1e-6), 12);
      expect(clipCoefficient(0.5, 1)).toBe(1);
      expect(clipCoefficient(Number.NaN, 1)).toBe(1);
      expect(() => clipCoefficient(1, 0)).toThrow(InputError);
    });

    test("accumulator: stores the first micro-batch as is and hands out the factor", () => {
      const acc = new GradAccumulator();
      tf.tidy(() => {
        acc.add(new Map([["a", tf.tensor1d([2, 4])]]), 0.5);
        acc.add(new Map([["a", tf.tensor1d([6, 8])]]), 0.25);
      });
      const { grads, factor } = acc.scaled;
      expect(factor).toBe(0.5);
      expect(grads.get("a")?.arraySync()).toEqual([5, 8]); // 2 + 6·(0.25/0.5), 4 + 8·0.5
      expect(acc.grads.get("a")?.arraySync()).toEqual([2.5, 4]); // the factor multiplied in
      expect(acc.scaled.factor).toBe(1);
      acc.dispose();
    });

    test("accumulator: keeps scaled sums across tidy scopes until reset", () => {
      const acc = new GradAccumulator();
      tf.tidy(() => acc.add(new Map([["w", tf.tensor1d([1, 2])]]), 0.5));
      tf.tidy(() => acc.add(new Map([["w", tf.tensor1d([3, 4])], ["b", tf.tensor1d([8])]]), 0.5));
      expect(acc.microBatches).toBe(2);
      expect(Array.from(acc.grads.get("w")?.dataSync() ?? [])).toEqual([2, 3]);
      expect(Array.from(acc.grads.get("b")?.dataSync() ?? [])).toEqual([4]);
      expect(() => tf.tidy(() => acc.add(new Map([["w", tf.tensor1d([1])]])))).toThrow(/"w" has 1 values, 2 before/);
      acc.reset();
      expect(acc.microBatches).toBe(0);
      expect(acc.grads.size).toBe(0);
      acc.dispose();
    });

    test("accumulator: later micro-batches add into the sums' own memory on wasm, rounding as tf.add(sum, tf.mul(g, rel)) does", () => {
      const n = 1000;
      const batches = [1, 2, 3].map((seed) => tf.randomNormal([n], 0, 1, "float32", seed));
      const scales = [1 / 3, 1 / 3, 0.7]; // rel 1, then 2.1
      const acc = new GradAccumulator();
      const ids: object[] = [];
      batches.forEach((g, i) => {
        acc.add(new Map([["w", g]]), scales[i]);
        g.dispose(); // as train-model.ts does: then the sums are the accumulator's alone
        ids.push((acc.scaled.grads.get("w") as tf.Tensor).dataId);
      });
      const expected = tf.tidy(() => {
        const [a, b, c] = [1, 2, 3].map((seed) => tf.randomNormal([n], 0, 1, "float32", seed)) as [tf.Tensor, tf.Tensor, tf.Tensor];
        return tf.add(tf.add(a, b), tf.mul(c, 0.7 / (1 / 3)));
      });
      expect(Buffer.from((acc.scaled.grads.get("w")?.dataSync() as Float32Array).buffer).equals(Buffer.from((expected.dataSync() as Float32Array).buffer))).toBe(true);
      if (backend === "wasm") {
        expect(ids[2]).toBe(ids[1]); // no new tensor after the first copy-free add
      }
      expected.dispose();
      acc.dispose();
    });

    test("micro-batches weighted by counted tokens add up to the full batch's gradient", () => {
      const X = IGNORE_INDEX;
      const labels = [[1, 2, X, X], [X, 3, 0, 4]]; // 1 and 3 counted positions: 4 in all
      const logits = tf.tidy(() => tf.variable(tf.randomNormal([2, 4, 5], 0, 1, "float32", 21), true, `acc-logits-${backend}`));
      const lossOf = (rows: number[], lab: number[][]) => () =>
        maskedCrossEntropy(tf.gather(logits, rows), tf.tensor2d(lab, undefined, "int32"));
      const full = tf.variableGrads(lossOf([0, 1], labels), [logits]);
      const acc = new GradAccumulator();
      [[0, 1 / 4], [1, 3 / 4]].forEach(([row, weight]) => {
        const micro = tf.variableGrads(lossOf([row as number], [labels[row as number] as number[]]), [logits]);
        acc.add(new Map([["logits", micro.grads[logits.name] as tf.Tensor]]), weight);
        tf.dispose([micro.value, ...Object.values(micro.grads)]);
      });
      expect(maxScaledError(acc.grads.get("logits")?.dataSync() ?? [], full.grads[logits.name]?.dataSync() ?? [1])).toBeLessThan(1e-6);
      acc.dispose();
      tf.dispose([full.value, ...Object.values(full.grads), logits]);
    });
  });
}
