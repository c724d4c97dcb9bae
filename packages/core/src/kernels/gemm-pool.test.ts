/**
 * The GEMM pool: a product split between the main thread and the pool's thread is the
 * single-thread product bit for bit, for every transpose case and for batches.
 */
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { initBackend } from "../backend.js";
import { disableGemmPool, gemmPoolMinFlops, gemmPoolMinIntensity, gemmPoolReady, gemmPoolSplits, gemmPoolYield, MIN_POOL_INTENSITY } from "./gemm-pool.js";

const values = (n: number, seed: number): Float32Array => {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = Math.sin(i * 0.37 + seed);
  }
  return out;
};

describe("GEMM pool on wasm", () => {
  let ready = false;
  beforeAll(async () => {
    await initBackend("wasm");
    ready = await gemmPoolReady();
  });
  afterAll(() => disableGemmPool(false));
  expectNoLeakedTensors("wasm");

  test("the pool's thread starts (2+ cores)", async () => {
    const os = await import("node:os");
    expect(ready).toBe(os.availableParallelism() > 1);
  });

  const cases: Array<[number[], number[], boolean, boolean, boolean]> = [
    [[301, 96], [96, 200], false, false, true], // rows split, odd M
    [[301, 96], [200, 96], false, true, true], // x · Wᵀ (linear)
    [[96, 301], [96, 200], true, false, true], // dW = dyᵀ · x: A's columns copied
    [[96, 301], [200, 96], true, true, true],
    [[5, 128, 96], [5, 96, 128], false, false, true], // products of a batch split
    [[6, 96, 128], [6, 96, 96], true, true, true],
    [[3000, 64], [64, 64], false, false, false], // too few multiply-adds per float: one thread
    [[2, 3, 128, 96], [96, 128], false, false, false], // B broadcast over the batch: one thread
  ];
  // The cases are sized for the wasm GEMM's thresholds (MIN_POOL_FLOPS, MIN_POOL_INTENSITY); the
  // native GEMM pools only bigger products, so there K and N grow (multiply-adds per float), then
  // M (flops; odd M stays odd): the same splits and edges.
  const [kn, minFlops] = [Math.ceil(gemmPoolMinIntensity() / MIN_POOL_INTENSITY), gemmPoolMinFlops()];
  for (const [shape, shapeB, ta, tb, split] of cases) {
    const dims = (s: number[], t: boolean): { rows: number; cols: number } => ({ rows: s.length - (t ? 1 : 2), cols: s.length - (t ? 2 : 1) }); // of op(X)
    const [da, db] = [dims(shape, ta), dims(shapeB, tb)];
    let aShape = shape.map((d, i) => (split && i === da.cols ? d * kn : d));
    const bShape = shapeB.map((d, i) => (split && (i === db.rows || i === db.cols) ? d * kn : d));
    const flops = 2 * aShape.reduce((p, d) => p * d, 1) * (bShape[db.cols] as number);
    const m = split ? Math.ceil(minFlops / flops) : 1;
    aShape = aShape.map((d, i) => (i === da.rows && m > 1 ? d * m + ((d * m - d) % 2) : d)); // odd stays odd
    test(`(${aShape.join(", ")})${ta ? "ᵀ" : ""} · (${bShape.join(", ")})${tb ? "ᵀ" : ""}: the same bits with and without the pool`, () => {
      const a = values(aShape.reduce((p, d) => p * d, 1), 1);
      const b = values(bShape.reduce((p, d) => p * d, 1), 2);
      const run = (off: boolean): Float32Array => {
        disableGemmPool(off);
        // the tensor out of tidy, not its values: tidy walks a returned typed array element by element
        const y = tf.tidy(() => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb));
        const out = y.dataSync() as Float32Array;
        y.dispose();
        return out;
      };
      const before = gemmPoolSplits();
      const pooled = run(false);
      expect(gemmPoolSplits() - before).toBe(ready && split ? 1 : 0);
      const single = run(true);
      expect(pooled.length).toBe(single.length);
      expect(Buffer.from(pooled.buffer).equals(Buffer.from(single.buffer))).toBe(true);
    });
  }

  test("while other workers compute (gemmPoolYield), products stay on one thread and stay right", () => {
    const release = gemmPoolYield();
    try {
      const y = tf.tidy(() => tf.matMul(tf.ones([300, 100]), tf.ones([100, 200])).dataSync());
      expect(y.every((v) => v === 100)).toBe(true);
    } finally {
      release();
    }
  });
});
