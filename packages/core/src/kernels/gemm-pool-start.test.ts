/**
 * When the GEMM pool's thread starts (a file of its own: a fresh process, no thread yet):
 * not with the backend, not for small products, not while other workers compute; at the first
 * product big enough to share, which itself stays on one thread (the thread is never waited
 * for); later products are shared once it is ready.
 */
import os from "node:os";
import * as tf from "@tensorflow/tfjs-core";
import { expect, test } from "vitest";
import { initBackend } from "../backend.js";
import { gemmPoolMinFlops, gemmPoolMinIntensity, gemmPoolReady, gemmPoolSplits, gemmPoolStarted, gemmPoolYield, MIN_POOL_FLOPS, MIN_POOL_INTENSITY } from "./gemm-pool.js";

const product = (m: number, k: number, n: number): void => {
  tf.tidy(() => tf.matMul(tf.ones([m, k]), tf.ones([k, n])).dataSync()[0]); // one value out: tidy walks a returned typed array
};

test.runIf(os.availableParallelism() > 1 && process.env.OML_GEMM_THREADS !== "0")("the pool's thread starts at the first big product, unless workers compute", async () => {
  await initBackend("wasm");
  // a product worth sharing: (400, 128)·(128, 200) for the wasm GEMM; K and N 5× for the native one (multiply-adds per float copied)
  const kn = Math.ceil(gemmPoolMinIntensity() / MIN_POOL_INTENSITY);
  const [big, k, n] = [400 * Math.ceil(gemmPoolMinFlops() / (MIN_POOL_FLOPS * kn * kn)), 128 * kn, 200 * kn];
  expect(gemmPoolStarted()).toBe(false); // not with the backend
  product(8, 8, 8); // small: stays on one thread
  expect(gemmPoolStarted()).toBe(false);
  const release = gemmPoolYield();
  product(big, k, n); // big, but workers compute
  expect(gemmPoolStarted()).toBe(false);
  release();
  product(big, k, n); // starts it, computed alone
  expect(gemmPoolStarted()).toBe(true);
  expect(gemmPoolSplits()).toBe(0);
  expect(await gemmPoolReady()).toBe(true);
  product(big, k, n);
  expect(gemmPoolSplits()).toBe(1);
});
