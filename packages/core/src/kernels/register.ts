/**
 * Kernels of our own, registered on every backend that needs them (idempotent).
 * - UnsortedSegmentSum on wasm (missing) and cpu (too slow at a 32k vocabulary).
 * - Softmax on cpu (its generic broadcasting chain takes seconds at a 32k vocabulary).
 * - OmlCrossEntropyGrad, OmlAdamWUpdate and OmlAverageInto on both: train/loss.ts's
 *   backward, train/adamw.ts's update and train/averaging.ts's mix, in the wasm heap.
 * - Transpose on cpu (its own allocates per element; linear() and gather's gradient transpose).
 * - BatchMatMul on wasm: our SIMD GEMM for every case (tfjs-wasm's is scalar unless 2-D
 *   without transposes); on cpu the same GEMM through a private wasm memory (its JS matMul
 *   runs at ~0.5 GFLOP/s). Slice, SplitV, Concat, GatherV2 and Tile on wasm and cpu: loops
 *   over the tensors' memory (tfjs-wasm's make a typed-array view per copied run or index
 *   elements one by one; tfjs-cpu's map every element through index arrays). Identity (and Transpose by an order-keeping permutation) on wasm: share the
 *   input's memory instead of copying it.
 * - Add/Sub/Multiply/RealDiv on cpu, float32 (its broadcasting path indexes every element).
 * - OmlRope on both (model/rope.ts: x·cos + rotate_half(x)·sin), with its gradient.
 * - OmlBiasedSoftmax on both (attend.ts's op chain: scale + mask + softmax), with its gradient.
 * - OmlRmsNorm and OmlSwiGlu(Split) on both (model/norm.ts, model/mlp.ts), with their gradients.
 * - OmlAttend on wasm (attend.ts: scores, biased softmax, ·v and head merge in one pass), forward only.
 */
import * as tf from "@tensorflow/tfjs-core";
import { ADAMW_UPDATE, adamwUpdateConfig } from "./adamw-update.js";
import { ATTEND, attendConfig } from "./attend.js";
import { AVERAGE_INTO, averageIntoConfig } from "./average-into.js";
import { biasedSoftmaxConfigs, biasedSoftmaxGradConfig } from "./biased-softmax.js";
import { batchMatMulConfig, cpuBatchMatMulConfig } from "./batch-matmul.js";
import { broadcastBinaryConfigs } from "./binary-broadcast.js";
import { gatherConfig } from "./gather.js";
import { identityConfig, transposeShareConfig } from "./identity.js";
import { concatConfig, sliceConfig, splitVConfig } from "./slice-concat.js";
import { rmsNormConfigs, rmsNormGradConfig } from "./rms-norm.js";
import { ROPE, ropeConfig, ropeGradConfig } from "./rope.js";
import { swigluConfigs, swigluGradConfigs } from "./swiglu.js";
import { tileConfig } from "./tile.js";
import { CROSS_ENTROPY_GRAD, crossEntropyGradConfig } from "./cross-entropy-grad.js";
import { softmaxConfig } from "./softmax.js";
import { transposeConfig } from "./transpose.js";
import { unsortedSegmentSumConfig } from "./unsorted-segment-sum.js";

let registered = false;

export function registerCustomKernels(): void {
  if (registered) {
    return;
  }
  registered = true;
  for (const backendName of ["wasm", "cpu"]) {
    if (tf.getKernel(tf.UnsortedSegmentSum, backendName)) {
      tf.unregisterKernel(tf.UnsortedSegmentSum, backendName);
    }
    tf.registerKernel(unsortedSegmentSumConfig(backendName));
    if (!tf.getKernel(CROSS_ENTROPY_GRAD, backendName)) {
      tf.registerKernel(crossEntropyGradConfig(backendName));
    }
    if (!tf.getKernel(ADAMW_UPDATE, backendName)) {
      tf.registerKernel(adamwUpdateConfig(backendName));
    }
    if (!tf.getKernel(AVERAGE_INTO, backendName)) {
      tf.registerKernel(averageIntoConfig(backendName));
    }
    if (!tf.getKernel(ROPE, backendName)) {
      tf.registerKernel(ropeConfig(backendName));
    }
  }
  tf.registerGradient(ropeGradConfig);
  for (const config of ["wasm", "cpu"].flatMap(biasedSoftmaxConfigs)) {
    replaceKernel(config.kernelName, config.backendName, () => config);
  }
  tf.registerGradient(biasedSoftmaxGradConfig);
  for (const config of ["wasm", "cpu"].flatMap((name) => [...rmsNormConfigs(name), ...swigluConfigs(name)])) {
    replaceKernel(config.kernelName, config.backendName, () => config);
  }
  for (const config of [rmsNormGradConfig, ...swigluGradConfigs]) {
    tf.registerGradient(config);
  }
  if (tf.getKernel(tf.Softmax, "cpu")) {
    tf.unregisterKernel(tf.Softmax, "cpu");
  }
  tf.registerKernel(softmaxConfig("cpu"));
  const stockTranspose = tf.getKernel(tf.Transpose, "cpu");
  if (stockTranspose) {
    tf.unregisterKernel(tf.Transpose, "cpu");
  }
  tf.registerKernel(transposeConfig("cpu", stockTranspose?.kernelFunc));
  replaceKernel(tf.BatchMatMul, "wasm", batchMatMulConfig);
  replaceKernel(tf.BatchMatMul, "cpu", cpuBatchMatMulConfig);
  const binary = [tf.Add, tf.Sub, tf.Multiply, tf.RealDiv];
  const stocks = new Map(binary.map((name) => [name, tf.getKernel(name, "cpu")]));
  for (const config of broadcastBinaryConfigs(stocks)) {
    replaceKernel(config.kernelName, "cpu", () => config);
  }
  for (const backendName of ["wasm", "cpu"]) {
    replaceKernel(tf.Slice, backendName, (stock) => sliceConfig(backendName, stock));
    replaceKernel(tf.SplitV, backendName, (stock) => splitVConfig(backendName, stock));
    replaceKernel(tf.Concat, backendName, (stock) => concatConfig(backendName, stock));
    replaceKernel(tf.GatherV2, backendName, (stock) => gatherConfig(backendName, stock));
    replaceKernel(tf.Tile, backendName, (stock) => tileConfig(backendName, stock));
  }
  replaceKernel(ATTEND, "wasm", attendConfig);
  replaceKernel(tf.Identity, "wasm", identityConfig);
  replaceKernel(tf.Transpose, "wasm", transposeShareConfig);
}

/** Register `make(stock)` in place of a backend's own kernel (kept for setup and fallback). */
function replaceKernel(kernelName: string, backendName: string, make: (stock?: tf.KernelConfig) => tf.KernelConfig): void {
  const stock = tf.getKernel(kernelName, backendName);
  if (stock) {
    tf.unregisterKernel(kernelName, backendName);
  }
  tf.registerKernel(make(stock));
}
