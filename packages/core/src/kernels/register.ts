/**
 * Kernels of our own, registered on every backend that needs them (idempotent).
 * - UnsortedSegmentSum on wasm (missing) and cpu (too slow at a 32k vocabulary).
 */
import * as tf from "@tensorflow/tfjs-core";
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
  }
}
