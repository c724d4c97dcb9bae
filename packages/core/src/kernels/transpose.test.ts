import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { swapView } from "./simd-transpose.js";

/** The definition: out[i_perm[0], …] = x[i_0, …], by explicit index arithmetic. */
function reference(x: number[], shape: number[], perm: number[]): number[] {
  const outShape = perm.map((p) => shape[p] as number);
  const out = new Array<number>(x.length);
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, c) => a * c, 1));
  const outStrides = outShape.map((_, d) => outShape.slice(d + 1).reduce((a, c) => a * c, 1));
  x.forEach((v, i) => {
    const loc = strides.map((s, d) => Math.floor(i / s) % (shape[d] as number));
    const o = perm.reduce((acc, p, d) => acc + (loc[p] as number) * (outStrides[d] as number), 0);
    out[o] = v;
  });
  return out;
}

const cases: Array<[number[], number[]]> = [
  [[3, 5], [1, 0]],
  [[2, 3, 4], [0, 2, 1]],
  [[2, 3, 4], [2, 0, 1]],
  [[2, 4, 3, 5], [0, 2, 1, 3]], // (B, T, nh, hs) → (B, nh, T, hs), as attention does
  [[2, 4, 3, 5], [3, 1, 2, 0]],
  [[1, 4, 1, 3], [2, 3, 0, 1]], // size-1 dims: really a 2-D transpose
  [[1, 4, 1, 3], [2, 1, 0, 3]], // size-1 dims only: a copy
  [[6], [0]],
  [[4, 3], [0, 1]], // identity
  // wasm: two middle axes swapped over whole runs of 4k floats (simd-transpose.ts)
  [[2, 4, 3, 8], [0, 2, 1, 3]],
  [[3, 5, 4], [1, 0, 2]],
  [[2, 1, 4, 3, 4], [0, 3, 1, 2, 4]], // a size-1 axis dropped
  [[2, 3, 4, 5, 8], [0, 3, 1, 2, 4]], // axes 1 and 2 stay neighbours: merged
  [[2, 3, 2, 12], [0, 2, 1, 3]],
];

for (const backend of ["cpu", "wasm"] as const) {
  describe(`Transpose on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test.each(cases)("shape %j perm %j matches the definition (float32, int32, bool)", (shape, perm) => {
      tf.tidy(() => {
        const size = shape.reduce((a, c) => a * c, 1);
        const values = Array.from({ length: size }, (_, i) => i * 3 - 7);
        const want = reference(values, shape, perm);
        for (const dtype of ["float32", "int32"] as const) {
          const y = tf.transpose(tf.tensor(values, shape, dtype), perm);
          expect(y.shape).toEqual(perm.map((p) => shape[p]));
          expect(y.dtype).toBe(dtype);
          expect(Array.from(y.dataSync())).toEqual(want);
        }
        const bools = values.map((v) => (v % 2 === 0 ? 1 : 0));
        expect(Array.from(tf.transpose(tf.tensor(bools, shape, "bool"), perm).dataSync())).toEqual(reference(bools, shape, perm));
      });
    });

    test.runIf(backend === "cpu")("complex64 still works (delegated to the stock kernel)", () => {
      tf.tidy(() => {
        const c = tf.complex(tf.tensor2d([[1, 2, 3], [4, 5, 6]]), tf.tensor2d([[7, 8, 9], [10, 11, 12]]));
        const t = tf.transpose(c);
        expect(t.shape).toEqual([3, 2]);
        expect(Array.from(tf.real(t).dataSync())).toEqual([1, 4, 2, 5, 3, 6]);
        expect(Array.from(tf.imag(t).dataSync())).toEqual([7, 10, 8, 11, 9, 12]);
      });
    });
  });
}

describe("swapView: which wasm transposes take the SIMD swap", () => {
  test("attention's splits and merges, with size-1 and neighbouring axes folded", () => {
    expect(swapView([2, 4, 3, 8], [0, 2, 1, 3])).toEqual([2, 4, 3, 8]);
    expect(swapView([3, 5, 4], [1, 0, 2])).toEqual([1, 3, 5, 4]);
    expect(swapView([2, 1, 4, 3, 4], [0, 3, 1, 2, 4])).toEqual([2, 4, 3, 4]);
    expect(swapView([2, 3, 4, 5, 8], [0, 3, 1, 2, 4])).toEqual([2, 12, 5, 8]);
  });
  test("not when the last axis moves or its run is not a whole number of vectors", () => {
    expect(swapView([2, 4, 3, 5], [0, 2, 1, 3])).toBeUndefined();
    expect(swapView([2, 3, 4], [0, 2, 1])).toBeUndefined();
    expect(swapView([2, 4, 3, 8], [3, 1, 2, 0])).toBeUndefined();
    expect(swapView([4, 8], [0, 1])).toBeUndefined();
  });
});
