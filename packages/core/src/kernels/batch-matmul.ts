/**
 * BatchMatMul on wasm through our SIMD GEMM (simd-gemm.ts), for every float32 case.
 *
 * tfjs-wasm sends only one case to XNNPACK (no transpose flags, batch 1) and everything
 * else to a scalar triple loop: attention's batched matMuls ran at 0.4–0.8 GFLOP/s and a
 * transposed 2-D one at 2 GFLOP/s, against 10–25 here. Batch dimensions broadcast as in
 * tfjs-core's matMul. B, transposed or not, is packed block by block into 8-wide panels
 * in a heap scratch; A is read in place through strides, transposed or not.
 * The cpu backend gets the same GEMM through a private wasm memory (cpuBatchMatMulConfig).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { runGemm, scratchBytes, type MatMulDims } from "./gemm-loops.js";
import { pooledGemm } from "./gemm-pool.js";
import { readValues, type DataBackend } from "./backend-data.js";
import { heapAddress, heapF32, isWasmBackend, WebAssemblyApi, type WasmBackendLike, type WasmMemory, heapMalloc } from "./wasm-heap.js";

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

function matMulDims(a: TensorInfo, bT: TensorInfo, transposeA: boolean, transposeB: boolean): MatMulDims {
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
  return { M, N, K, outDims, batch: outDims.reduce((p, d) => p * d, 1), aIdx: batchIndices(outDims, aDims), bIdx: batchIndices(outDims, bDims) };
}

/**
 * C = op(A) · op(B) over broadcast batch dims, on the wasm heap.
 * @returns a new float32 TensorInfo of shape [...batch, M, N]
 */
export function wasmBatchMatMul(b: WasmBackendLike, a: TensorInfo, bT: TensorInfo, transposeA: boolean, transposeB: boolean): TensorInfo {
  const d = matMulDims(a, bT, transposeA, transposeB);
  const out = b.makeOutput([...d.outDims, d.M, d.N], "float32");
  if (d.batch * d.M * d.N === 0) {
    return out;
  }
  const scratch = heapMalloc(b, scratchBytes(d));
  try {
    const args = [b.wasm.asm.memory, heapF32(b), d, heapAddress(b, a), heapAddress(b, bT), heapAddress(b, out), scratch, transposeA, transposeB] as const;
    if (!pooledGemm(...args)) {
      runGemm(...args);
    }
  } finally {
    b.wasm._free(scratch);
  }
  return out;
}

/** Operands larger than this together go to the cpu backend's own matMul. */
const CPU_GEMM_MAX_BYTES = 2 ** 31;
let cpuMemory: WasmMemory | undefined;

/**
 * The same GEMM for the cpu backend, whose tensors are JS arrays: A and B are copied into a
 * private wasm memory (grown as needed, kept for the next call), C computed there and copied
 * out. The copies cost ~1% of the arithmetic at the 20M model's sizes; the cpu backend's JS
 * matMul runs at ~0.5 GFLOP/s.
 * @returns the product's values, or undefined when the operands are too large
 */
export function cpuBatchMatMulValues(aValues: Float32Array, a: TensorInfo, bValues: Float32Array, bT: TensorInfo, transposeA: boolean, transposeB: boolean): { values: Float32Array; shape: number[] } | undefined {
  const d = matMulDims(a, bT, transposeA, transposeB);
  const shape = [...d.outDims, d.M, d.N];
  const cSize = d.batch * d.M * d.N;
  if (cSize === 0) {
    return { values: new Float32Array(0), shape };
  }
  const align = (x: number): number => Math.ceil(x / 64) * 64;
  const aAddr = 0;
  const bAddr = align(aValues.length * 4);
  const cAddr = bAddr + align(bValues.length * 4);
  const scratch = cAddr + align(cSize * 4);
  const total = scratch + scratchBytes(d);
  if (total > CPU_GEMM_MAX_BYTES) {
    return undefined;
  }
  cpuMemory ??= new WebAssemblyApi.Memory({ initial: 1, maximum: 65536 });
  const have = cpuMemory.buffer.byteLength;
  if (total > have) {
    cpuMemory.grow(Math.ceil((total - have) / 65536));
  }
  const heap = new Float32Array(cpuMemory.buffer);
  heap.set(aValues, aAddr >>> 2);
  heap.set(bValues, bAddr >>> 2);
  runGemm(cpuMemory, heap, d, aAddr, bAddr, cAddr, scratch, transposeA, transposeB);
  return { values: heap.slice(cAddr >>> 2, (cAddr >>> 2) + cSize), shape };
}

/** The cpu BatchMatMul kernel: our GEMM through a private wasm memory; `stock` for the rest. */
export function cpuBatchMatMulConfig(stock?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { a, b: bT } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const backend = args.backend as unknown as DataBackend;
    const result =
      a.dtype === "float32" && bT.dtype === "float32" && backend.makeTensorInfo
        ? cpuBatchMatMulValues(readValues(backend, a) as Float32Array, a, readValues(backend, bT) as Float32Array, bT, transposeA, transposeB)
        : undefined;
    if (!result || !backend.makeTensorInfo) {
      if (!stock) {
        throw new Error(`BatchMatMul of ${a.dtype} × ${bT.dtype} is not supported`);
      }
      return stock.kernelFunc(args);
    }
    return backend.makeTensorInfo(result.shape, "float32", result.values);
  };
  return { kernelName: tf.BatchMatMul, backendName: "cpu", kernelFunc, setupFunc: stock?.setupFunc };
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
