import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { fmaAvailable, gemmModuleBytes } from "./simd-gemm.js";
import { WebAssemblyApi } from "./wasm-heap.js";

/** Deterministic values in [-1, 1) with a few exact zeros. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = i % 11 === 3 ? 0 : s / 1073741824 - 1;
  }
  return out;
}

/** The definition in float64: C[p] = op(A[pa]) · op(B[pb]) with broadcast batch dims. */
function reference(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], ta: boolean, tb: boolean): { out: Float64Array; shape: number[] } {
  const [ra, rb] = [aShape.length, bShape.length];
  const M = (ta ? aShape[ra - 1] : aShape[ra - 2]) as number;
  const K = (ta ? aShape[ra - 2] : aShape[ra - 1]) as number;
  const N = (tb ? bShape[rb - 2] : bShape[rb - 1]) as number;
  const aDims = aShape.slice(0, -2);
  const bDims = bShape.slice(0, -2);
  const rank = Math.max(aDims.length, bDims.length);
  const pad = (d: number[]): number[] => [...new Array<number>(rank - d.length).fill(1), ...d];
  const [pa, pb] = [pad(aDims), pad(bDims)];
  const outDims = pa.map((d, i) => Math.max(d, pb[i] as number));
  const batch = outDims.reduce((p, d) => p * d, 1);
  const flat = (idx: number[], dims: number[]): number => idx.reduce((acc, v, i) => acc * (dims[i] as number) + ((dims[i] as number) === 1 ? 0 : v), 0);
  const out = new Float64Array(batch * M * N);
  for (let p = 0; p < batch; p++) {
    const idx: number[] = [];
    for (let d = rank - 1, rest = p; d >= 0; d--) {
      idx.unshift(rest % (outDims[d] as number));
      rest = Math.floor(rest / (outDims[d] as number));
    }
    const ao = flat(idx, pa) * M * K;
    const bo = flat(idx, pb) * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          s += (a[ao + (ta ? k * M + i : i * K + k)] as number) * (b[bo + (tb ? j * K + k : k * N + j)] as number);
        }
        out[p * M * N + i * N + j] = s;
      }
    }
  }
  return { out, shape: [...outDims, M, N] };
}

const cases: Array<[number[], number[], boolean, boolean]> = [
  [[5, 7], [7, 9], false, false], // M % 4 ≠ 0, N % 8 ≠ 0 (partial stores)
  [[8, 3], [3, 16], false, false], // whole blocks, no packing
  [[6, 10], [13, 10], false, true], // linear(): x · Wᵀ
  [[10, 6], [10, 13], true, false], // dW = dyᵀ · x
  [[4, 9], [3, 4], true, true],
  [[3, 4, 1], [3, 1, 5], false, false], // K = 1
  [[2, 3, 33, 8], [2, 3, 17, 8], false, true], // attention q · kᵀ
  [[2, 3, 33, 17], [2, 3, 17, 8], false, false], // probs · v
  [[4, 9, 6], [4, 9, 13], true, false], // batched, packed in wasm: Aᵀ read in place
  [[4, 9, 6], [4, 13, 9], true, true], // batched Aᵀ · Bᵀ
  [[2, 130, 8], [2, 8, 5], false, false], // batched, M > MC: the JS block loop
  [[2, 3, 6, 5], [5, 4], false, false], // b broadcast over the batch
  [[6, 5], [2, 3, 5, 4], false, false], // a broadcast
  [[2, 1, 6, 5], [1, 3, 5, 4], false, false], // both broadcast
  [[130, 520], [520, 20], false, false], // several row and inner blocks (MC = 128, KC = 256)
  [[520, 130], [20, 520], true, true],
  [[5, 20], [2061, 20], false, true], // several column blocks (NC = 2048)
];

for (const backend of ["wasm", "cpu"] as const) {
  describe(`our BatchMatMul on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test("the generated modules are valid WebAssembly (plain and, where available, FMA)", () => {
      const fma = fmaAvailable(); // turns relaxed SIMD on where V8 has it behind a flag
      expect(WebAssemblyApi.validate(gemmModuleBytes(false))).toBe(true);
      expect(WebAssemblyApi.validate(gemmModuleBytes(true))).toBe(fma);
    });

    for (const [aShape, bShape, ta, tb] of cases) {
      test(`(${aShape.join(", ")})${ta ? "ᵀ" : ""} · (${bShape.join(", ")})${tb ? "ᵀ" : ""} equals the float64 definition`, () => {
        const a = values(aShape.reduce((p, d) => p * d, 1), 1);
        const b = values(bShape.reduce((p, d) => p * d, 1), 2);
        const ref = reference(a, aShape, b, bShape, ta, tb);
        const got = tf.tidy(() => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb));
        expect(got.shape).toEqual(ref.shape);
        const data = got.dataSync();
        got.dispose();
        const K = (ta ? aShape[aShape.length - 2] : aShape[aShape.length - 1]) as number;
        ref.out.forEach((v, i) => expect(Math.abs((data[i] as number) - v)).toBeLessThanOrEqual(2e-7 * K + 1e-7));
      });
    }

    test("K = 0 gives zeros; empty outputs work", () => {
      tf.tidy(() => {
        expect(tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 4])).arraySync()).toEqual(new Array(3).fill([0, 0, 0, 0]));
        expect(tf.matMul(tf.zeros([0, 5]), tf.ones([5, 4])).shape).toEqual([0, 4]);
      });
    });

    test("results do not depend on the row's place in the batch (bit-identical)", () => {
      tf.tidy(() => {
        const x = tf.tensor(values(9 * 64, 3), [9, 64]);
        const w = tf.tensor(values(40 * 64, 4), [40, 64]);
        const all = tf.matMul(x, w, false, true).arraySync() as number[][];
        for (const r of [0, 4, 8]) {
          expect((tf.matMul(tf.slice(x, [r, 0], [1, 64]), w, false, true).arraySync() as number[][])[0]).toEqual(all[r]);
        }
      });
    });

    test("the gradient of a batched a · bᵀ (every transpose case) equals the float64 definition", () => {
      const [A, Bv, R] = [values(2 * 5 * 6, 5), values(2 * 7 * 6, 6), values(2 * 5 * 7, 7)];
      // L = Σ (a · bᵀ) ∘ r:  dL/da = r · b,  dL/db = rᵀ · a
      const da = reference(R, [2, 5, 7], Bv, [2, 7, 6], false, false).out;
      const db = reference(R, [2, 5, 7], A, [2, 5, 6], true, false).out;
      const grads = tf.tidy(() => tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p, q, false, true), tf.tensor(R, [2, 5, 7]))))([tf.tensor(A, [2, 5, 6]), tf.tensor(Bv, [2, 7, 6])]));
      const [ga, gb] = grads.map((g) => g.dataSync());
      tf.dispose(grads);
      da.forEach((v, i) => expect(Math.abs((ga?.[i] as number) - v)).toBeLessThan(1e-6));
      db.forEach((v, i) => expect(Math.abs((gb?.[i] as number) - v)).toBeLessThan(1e-6));
    });
  });
}
