/**
 * BatchMatMul on wasm through our SIMD GEMM (simd-gemm.ts), for every float32 case.
 *
 * tfjs-wasm sends only one case to XNNPACK (no transpose flags, batch 1) and everything
 * else to a scalar triple loop: attention's batched matMuls ran at 0.4–0.8 GFLOP/s and a
 * transposed 2-D one at 2 GFLOP/s, against 10–25 here. Batch dimensions broadcast as in
 * tfjs-core's matMul. A transposed B (and a B whose width is not a multiple of 8) is first
 * packed into a zero-padded (K, ⌈N/8⌉·8) scratch in the heap; A is read in place through
 * strides, transposed or not.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { simdGemm } from "./simd-gemm.js";
import { heapAddress, heapF32, isWasmBackend, type WasmBackendLike } from "./wasm-heap.js";

/** For each output batch index, the batch index of an operand with `dims` (broadcast). */
function batchIndices(outDims: number[], dims: number[]): Int32Array {
  const size = outDims.reduce((p, d) => p * d, 1);
  const padded = [...new Array<number>(outDims.length - dims.length).fill(1), ...dims];
  const strides = new Array<number>(padded.length);
  for (let d = padded.length - 1, s = 1; d >= 0; d--) {
    strides[d] = (padded[d] as number) === 1 ? 0 : s;
    s *= padded[d] as number;
  }
  const out = new Int32Array(size);
  for (let p = 0; p < size; p++) {
    let rest = p;
    let idx = 0;
    for (let d = outDims.length - 1; d >= 0; d--) {
      const dim = outDims[d] as number;
      idx += (rest % dim) * (strides[d] as number);
      rest = Math.floor(rest / dim);
    }
    out[p] = idx;
  }
  return out;
}

/** Copy B's batch `src` (float index) into the scratch as (K, Np), zero-padded. */
function packB(heap: Float32Array, src: number, dst: number, K: number, N: number, Np: number, transposed: boolean): void {
  if (transposed) {
    // B is (N, K): scratch[k, j] = B[j, k]
    for (let j = 0; j < N; j++) {
      const row = src + j * K;
      for (let k = 0, o = dst + j; k < K; k++, o += Np) {
        heap[o] = heap[row + k] as number;
      }
    }
  } else {
    for (let k = 0; k < K; k++) {
      heap.copyWithin(dst + k * Np, src + k * N, src + k * N + N);
    }
  }
}

/**
 * C = op(A) · op(B) over broadcast batch dims, on the wasm heap.
 * @returns a new float32 TensorInfo of shape [...batch, M, N]
 */
export function wasmBatchMatMul(b: WasmBackendLike, a: TensorInfo, bT: TensorInfo, transposeA: boolean, transposeB: boolean): TensorInfo {
  const ra = a.shape.length;
  const rb = bT.shape.length;
  const M = (transposeA ? a.shape[ra - 1] : a.shape[ra - 2]) as number;
  const K = (transposeA ? a.shape[ra - 2] : a.shape[ra - 1]) as number;
  const Kb = (transposeB ? bT.shape[rb - 1] : bT.shape[rb - 2]) as number;
  const N = (transposeB ? bT.shape[rb - 2] : bT.shape[rb - 1]) as number;
  if (K !== Kb) {
    throw new Error(`matMul: inner dims ${K} and ${Kb} of shapes (${a.shape.join(", ")}) and (${bT.shape.join(", ")}) differ (transposeA=${transposeA}, transposeB=${transposeB})`);
  }
  const aDims = a.shape.slice(0, -2);
  const bDims = bT.shape.slice(0, -2);
  const outDims = tf.broadcast_util.assertAndGetBroadcastShape(aDims, bDims);
  const batch = outDims.reduce((p, d) => p * d, 1);
  const out = b.makeOutput([...outDims, M, N], "float32");
  if (batch * M * N === 0) {
    return out;
  }
  const cAddr = heapAddress(b, out);
  if (K === 0) {
    heapF32(b).fill(0, cAddr >> 2, (cAddr >> 2) + batch * M * N);
    return out;
  }
  const aIdx = batchIndices(outDims, aDims);
  const bIdx = batchIndices(outDims, bDims);
  const bBatches = bDims.reduce((p, d) => p * d, 1);
  const pack = transposeB || N % 8 !== 0;
  const Np = pack ? Math.ceil(N / 8) * 8 : N;
  const scratch = pack ? b.wasm._malloc(bBatches * K * Np * 4) : 0;
  try {
    const gemm = simdGemm(b.wasm.asm.memory);
    const aAddr = heapAddress(b, a);
    const bAddr = heapAddress(b, bT);
    if (pack) {
      const heap = heapF32(b); // after the last allocation
      heap.fill(0, scratch >> 2, (scratch >> 2) + bBatches * K * Np);
      for (let q = 0; q < bBatches; q++) {
        packB(heap, (bAddr >> 2) + q * K * N, (scratch >> 2) + q * K * Np, K, N, Np, transposeB);
      }
    }
    const [rsA, csA] = transposeA ? [4, M * 4] : [K * 4, 4];
    for (let p = 0; p < batch; p++) {
      const bBase = pack ? scratch + (bIdx[p] as number) * K * Np * 4 : bAddr + (bIdx[p] as number) * K * N * 4;
      gemm(aAddr + (aIdx[p] as number) * M * K * 4, bBase, cAddr + p * M * N * 4, M, N, K, rsA, csA, Np * 4);
    }
  } finally {
    if (scratch) {
      b.wasm._free(scratch);
    }
  }
  return out;
}

/** The wasm BatchMatMul kernel; `stock` keeps tfjs's setup and serves non-float32 inputs. */
export function batchMatMulConfig(stock?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { a, b: bT } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (!isWasmBackend(args.backend) || a.dtype !== "float32" || bT.dtype !== "float32") {
      if (!stock) {
        throw new Error(`BatchMatMul of ${a.dtype} × ${bT.dtype} is not supported`);
      }
      return stock.kernelFunc(args);
    }
    return wasmBatchMatMul(args.backend, a, bT, transposeA, transposeB);
  };
  return { kernelName: tf.BatchMatMul, backendName: "wasm", kernelFunc, setupFunc: stock?.setupFunc };
}
