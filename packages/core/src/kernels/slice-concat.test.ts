import * as tf from "@tensorflow/tfjs-core";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { initBackend } from "../backend.js";
import { concatValues, sliceValues } from "./slice-concat.js";

/** x[i] = i, the easiest values to check slices by hand. */
const iota = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => i);

describe("sliceValues / concatValues by hand", () => {
  test("slice of a (2, 3, 4) tensor: rows, a partial last dim, a contiguous block", () => {
    const x = iota(24);
    const out = new Float32Array(4);
    sliceValues(x, [2, 3, 4], [1, 1, 1], [1, 2, 2], out);
    expect(Array.from(out)).toEqual([17, 18, 21, 22]);
    const block = new Float32Array(8);
    sliceValues(x, [2, 3, 4], [0, 1, 0], [1, 2, 4], block); // whole trailing dim → one run
    expect(Array.from(block)).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
  });

  test("concat along the last axis interleaves rows", () => {
    const out = new Float32Array(10);
    concatValues(
      [
        { values: Float32Array.from([1, 2, 3, 4]), shape: [2, 2] },
        { values: Float32Array.from([5, 6, 7, 8, 9, 10]), shape: [2, 3] },
      ],
      1,
      out,
    );
    expect(Array.from(out)).toEqual([1, 2, 5, 6, 7, 3, 4, 8, 9, 10]);
  });
});

type Op = () => tf.Tensor | tf.Tensor[];
const ops: Array<[string, Op]> = [
  ["rope halves (2, 3, 5, 8) → (2, 3, 5, 4)", () => tf.slice(tf.tensor(iota(240), [2, 3, 5, 8]), [0, 0, 0, 4], [2, 3, 5, 4])],
  ["a middle block of a rank-5 tensor", () => tf.slice(tf.tensor(iota(720), [2, 3, 4, 5, 6]), [1, 0, 1, 2, 1], [1, 3, 2, 3, 4])],
  ["a long contiguous slice (rows of 100)", () => tf.slice(tf.tensor(iota(1000), [10, 100]), [3, 0], [4, 100])],
  ["long partial runs (70 of 100)", () => tf.slice(tf.tensor(iota(1000), [10, 100]), [2, 10], [5, 70])],
  ["int32 slice (positions from a mask)", () => tf.slice(tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32"), [0, 1], [2, 2])],
  ["bool slice", () => tf.slice(tf.tensor2d([[true, false, true], [false, true, true]], [2, 3], "bool"), [0, 1], [2, 2])],
  ["rank-1 slice", () => tf.slice(tf.tensor1d(iota(10)), [3], [4])],
  ["rotate_half concat (2, 3, 5, 4) ++ (2, 3, 5, 4)", () => tf.concat([tf.tensor(iota(120), [2, 3, 5, 4]), tf.neg(tf.tensor(iota(120), [2, 3, 5, 4]))], -1)],
  ["KV cache concat along the sequence", () => tf.concat([tf.tensor(iota(2 * 2 * 3 * 4), [2, 2, 3, 4]), tf.tensor(iota(2 * 2 * 1 * 4), [2, 2, 1, 4])], 2)],
  ["three inputs, one empty, axis 0", () => tf.concat([tf.tensor(iota(6), [2, 3]), tf.zeros([0, 3]), tf.tensor(iota(3), [1, 3])], 0)],
  ["int32 concat (the growing mask)", () => tf.concat([tf.tensor2d([[1, 0], [1, 1]], [2, 2], "int32"), tf.tensor2d([[1], [1]], [2, 1], "int32")], 1)],
  ["long rows concat", () => tf.concat([tf.tensor(iota(300), [3, 100]), tf.tensor(iota(600), [3, 200])], 1)],
];

describe("Slice and Concat on wasm equal cpu's", () => {
  const expected = new Map<string, unknown>();
  let before = 0;
  beforeEach(async () => {
    if (expected.size === 0) {
      await initBackend("cpu");
      for (const [name, op] of ops) {
        expected.set(name, tf.tidy(() => [op()].flat().map((t) => ({ shape: t.shape, dtype: t.dtype, values: t.arraySync() }))));
      }
    }
    await initBackend("wasm");
    before = tf.memory().numTensors;
  });
  afterEach(() => {
    expect(tf.memory().numTensors).toBe(before);
  });

  for (const [name, op] of ops) {
    test(name, () => {
      const got = tf.tidy(() => [op()].flat().map((t) => ({ shape: t.shape, dtype: t.dtype, values: t.arraySync() })));
      expect(got).toEqual(expected.get(name));
    });
  }
});
