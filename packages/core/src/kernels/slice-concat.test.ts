import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
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

type Nested = number | boolean | Nested[];

/** The definitions on nested arrays (arraySync), independent of any kernel. */
function sliceNested(x: Nested, begin: number[], size: number[], d = 0): Nested {
  const rows = (x as Nested[]).slice(begin[d], (begin[d] as number) + (size[d] as number));
  return d + 1 < begin.length ? rows.map((r) => sliceNested(r, begin, size, d + 1)) : rows;
}
function concatNested(xs: Nested[], axis: number): Nested {
  return axis === 0 ? (xs as Nested[][]).flat(1) : (xs[0] as Nested[]).map((_, i) => concatNested(xs.map((x) => (x as Nested[])[i] as Nested), axis - 1));
}

interface Case {
  name: string;
  inputs: () => tf.Tensor[];
  op: (ts: tf.Tensor[]) => tf.Tensor;
  ref: (xs: Nested[]) => Nested;
}
const slice = (name: string, input: () => tf.Tensor, begin: number[], size: number[]): Case => ({
  name,
  inputs: () => [input()],
  op: ([x]) => tf.slice(x as tf.Tensor, begin, size),
  ref: ([x]) => sliceNested(x as Nested, begin, size),
});
const concat = (name: string, inputs: () => tf.Tensor[], axis: number): Case => ({
  name,
  inputs,
  op: (ts) => tf.concat(ts, axis),
  ref: (xs) => concatNested(xs, axis),
});
const cases: Case[] = [
  slice("rope halves (2, 3, 5, 8) → (2, 3, 5, 4)", () => tf.tensor(iota(240), [2, 3, 5, 8]), [0, 0, 0, 4], [2, 3, 5, 4]),
  slice("a middle block of a rank-5 tensor", () => tf.tensor(iota(720), [2, 3, 4, 5, 6]), [1, 0, 1, 2, 1], [1, 3, 2, 3, 4]),
  slice("a long contiguous slice (rows of 100)", () => tf.tensor(iota(1000), [10, 100]), [3, 0], [4, 100]),
  slice("long partial runs (70 of 100)", () => tf.tensor(iota(1000), [10, 100]), [2, 10], [5, 70]),
  slice("int32 slice (positions from a mask)", () => tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32"), [0, 1], [2, 2]),
  slice("bool slice", () => tf.tensor2d([[true, false, true], [false, true, true]], [2, 3], "bool"), [0, 1], [2, 2]),
  slice("rank-1 slice", () => tf.tensor1d(iota(10)), [3], [4]),
  concat("rotate_half concat (2, 3, 5, 4) ++ (2, 3, 5, 4)", () => [tf.tensor(iota(120), [2, 3, 5, 4]), tf.tensor(iota(120).map((v) => -v), [2, 3, 5, 4])], 3),
  concat("KV cache concat along the sequence", () => [tf.tensor(iota(48), [2, 2, 3, 4]), tf.tensor(iota(16), [2, 2, 1, 4])], 2),
  concat("three inputs, one empty, axis 0", () => [tf.tensor(iota(6), [2, 3]), tf.zeros([0, 3]), tf.tensor(iota(3), [1, 3])], 0),
  concat("int32 concat (the growing mask)", () => [tf.tensor2d([[1, 0], [1, 1]], [2, 2], "int32"), tf.tensor2d([[1], [1]], [2, 1], "int32")], 1),
  concat("long rows concat", () => [tf.tensor(iota(300), [3, 100]), tf.tensor(iota(600), [3, 200])], 1),
];

for (const backend of ["wasm", "cpu"] as const) {
  describe(`Slice, SplitV and Concat on ${backend} equal the definitions`, () => {
    expectNoLeakedTensors(backend);

    for (const c of cases) {
      test(c.name, () => {
        tf.tidy(() => {
          const ins = c.inputs();
          const out = c.op(ins);
          expect(out.arraySync()).toEqual(c.ref(ins.map((t) => t.arraySync() as Nested)));
        });
      });
    }

    test("split into unequal parts (the gradient of rotate_half's concat)", () => {
      tf.tidy(() => {
        const x = tf.tensor(iota(2 * 3 * 7), [2, 3, 7]);
        const parts = tf.split(x, [3, 4], 2);
        expect(parts.map((p) => p.arraySync())).toEqual([sliceNested(x.arraySync() as Nested, [0, 0, 0], [2, 3, 3]), sliceNested(x.arraySync() as Nested, [0, 0, 3], [2, 3, 4])]);
      });
    });
  });
}
