import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";

const iota = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => i);

for (const backend of ["wasm", "cpu"] as const) {
  describe(`GatherV2 on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test("embedding rows for (B, T) ids, repeated ids included", () => {
      tf.tidy(() => {
        const table = tf.tensor(iota(5 * 3), [5, 3]);
        const ids = tf.tensor2d([[4, 0], [4, 2]], [2, 2], "int32");
        expect(tf.gather(table, ids).arraySync()).toEqual([
          [[12, 13, 14], [0, 1, 2]],
          [[12, 13, 14], [6, 7, 8]],
        ]);
      });
    });

    test("long rows (≥ 16 values) and an inner axis", () => {
      tf.tidy(() => {
        const x = tf.tensor(iota(3 * 20), [3, 20]);
        expect((tf.gather(x, [2, 0]).arraySync() as number[][]).map((r) => r[19])).toEqual([59, 19]);
        expect(tf.gather(tf.tensor(iota(2 * 3 * 2), [2, 3, 2]), [2, 2, 0], 1).arraySync()).toEqual([
          [[4, 5], [4, 5], [0, 1]],
          [[10, 11], [10, 11], [6, 7]],
        ]);
      });
    });

    test("batchDims and int32 values", () => {
      tf.tidy(() => {
        const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32");
        const idx = tf.tensor2d([[2, 0], [1, 1]], [2, 2], "int32");
        expect(tf.gather(x, idx, 1, 1).arraySync()).toEqual([[3, 1], [5, 5]]);
      });
    });

    test("an index outside the table throws", () => {
      tf.tidy(() => {
        expect(() => tf.gather(tf.zeros([4, 2]), [1, 4])).toThrow(/index value 4 is not in \[0, 3\]/);
      });
    });
  });
}
