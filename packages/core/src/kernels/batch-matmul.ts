/**
 * BatchMatMul on wasm through our SIMD GEMM (simd-gemm.ts), for every float32 case.
 *
 * tfjs-wasm sends only one case to XNNPACK (no transpose flags, batch 1) and everything
 * else to a scalar triple loop: attention's batched matMuls ran at 0.4–0.8 GFLOP/s and a
 * transposed 2-D one at 2 GFLOP/s, against 10–25 here. Batch dimensions broadcast as in
 * tfjs-core's matMul. B, transposed or not, is packed block by block into 8-wide panels
 * in a heap scratch; A is read in place through strides, transposed or not.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { GEMM_BLOCKS, packPanels, simdGemm } from "./simd-gemm.js";
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
  const { NC, KC, MC } = GEMM_BLOCKS;
  const scratch = b.wasm._malloc(Math.ceil(Math.min(N, NC) / 8) * 8 * Math.min(K, KC) * 4);
  try {
    const gemm = simdGemm(b.wasm.asm.memory);
    const heap = heapF32(b); // after the last allocation
    const aAddr = heapAddress(b, a);
    const bFloat = heapAddress(b, bT) >> 2;
    const [rsA, csA] = transposeA ? [4, M * 4] : [K * 4, 4];
    const [rsB, csB] = transposeB ? [1, K] : [N, 1]; // B(k, j) at k·rsB + j·csB
    let packed = -1; // which block the scratch holds (a broadcast B is packed once)
    for (let p = 0; p < batch; p++) {
      const aBase = aAddr + (aIdx[p] as number) * M * K * 4;
      const bBase = bFloat + (bIdx[p] as number) * K * N;
      const cBase = cAddr + p * M * N * 4;
      for (let jc = 0; jc < N; jc += NC) {
        const nc = Math.min(NC, N - jc);
        for (let pc = 0; pc < K; pc += KC) {
          const kc = Math.min(KC, K - pc);
          const key = ((bIdx[p] as number) * (Math.ceil(N / NC) + 1) + jc / NC) * (Math.ceil(K / KC) + 1) + pc / KC;
          if (key !== packed) {
            packPanels(heap, bBase, rsB, csB, pc, kc, jc, nc, scratch >> 2);
            packed = key;
          }
          for (let ic = 0; ic < M; ic += MC) {
            gemm(aBase + ic * rsA + pc * csA, scratch, cBase + (ic * N + jc) * 4, Math.min(MC, M - ic), nc, kc, rsA, csA, N * 4, pc > 0 ? 1 : 0);
          }
        }
      }
    }
  } finally {
    b.wasm._free(scratch);
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
