/**
 * The blocked GEMM loops over one WebAssembly memory (BLIS order; see simd-gemm.ts), shared by
 * batch-matmul.ts (tfjs's heap, the cpu backend's private memory) and the GEMM pool's worker
 * (gemm-pool-worker.ts), which must not load tfjs: this file imports none of it. Large blocks
 * run on the native AVX2 kernel where it serves (native.ts: the same bits, twice the speed).
 */
import { nativeKernels } from "./native.js";
import { GEMM_BLOCKS, packPanels, simdGemm, type GemmFn } from "./simd-gemm.js";
import type { WasmMemory } from "./wasm-heap.js";

/** Shapes of one BatchMatMul, from its operands. */
export interface MatMulDims {
  M: number;
  N: number;
  K: number;
  outDims: number[];
  batch: number;
  aIdx: Int32Array;
  bIdx: Int32Array;
}

/** The dims of `batch` products of (M, K)·(K, N), each operand batch its own (no broadcast). */
export function plainDims(M: number, N: number, K: number, batch: number): MatMulDims {
  const idx = Int32Array.from({ length: batch }, (_, p) => p);
  return { M, N, K, outDims: [batch], batch, aIdx: idx, bIdx: idx };
}

/** Whether operand batch p is batch p for every p (no broadcast). */
export function isIdentity(idx: Int32Array): boolean {
  for (let p = 0; p < idx.length; p++) {
    if (idx[p] !== p) {
      return false;
    }
  }
  return true;
}

/**
 * Blocks of at least this many multiply-adds go to the native kernel (native.ts) when it
 * serves: below, the Node-API call (~0.3 µs) costs more than its wider vectors save.
 */
const NATIVE_MIN_MACS = 32768;
/**
 * B blocks of at least this many floats are packed by the native pack: the JS loop copies at
 * ~2.5 ns a float, and a training step packs the activations of every weight gradient's
 * product (dW = dyᵀ·x, B = x: (576, 64–172) on stories260K): ~16% of its time.
 */
const NATIVE_MIN_PACK = 512;

/** Scratch bytes runGemm needs for B's panels. */
export function scratchBytes(d: MatMulDims): number {
  return Math.ceil(Math.min(d.N, GEMM_BLOCKS.NC) / 8) * 8 * Math.min(d.K, GEMM_BLOCKS.KC) * 4;
}

/**
 * The blocked loops over one memory: A, B and C at byte addresses aAddr, bAddr, cAddr (row-
 * major, batches back to back), the panel scratch at `scratch`; C is overwritten.
 * `aRowsStored`: the row count of op(A) as stored, when this call computes only the first
 * d.M rows of a larger product (a transposed A's column stride depends on it).
 */
export function runGemm(memory: WasmMemory, heap: Float32Array, d: MatMulDims, aAddr: number, bAddr: number, cAddr: number, scratch: number, transposeA: boolean, transposeB: boolean, aRowsStored = d.M): void {
  const { M, N, K, batch, aIdx, bIdx } = d;
  if (K === 0) {
    heap.fill(0, cAddr >>> 2, (cAddr >>> 2) + batch * M * N);
    return;
  }
  const { NC, KC, MC } = GEMM_BLOCKS;
  const { gemm, gemmBatch } = simdGemm(memory);
  const [rsA, csA] = transposeA ? [4, aRowsStored * 4] : [K * 4, 4];
  const [rsB, csB] = transposeB ? [1, K] : [N, 1]; // B(k, j) at k·rsB + j·csB
  const native = nativeKernels();
  if (batch > 1 && M <= MC && K <= KC && N <= NC && isIdentity(aIdx) && isIdentity(bIdx)) {
    // many one-block products (attention): the batch loop and the packing run in wasm, or in
    // one native call (a training step of stories260K: ~2.4 µs a product in wasm)
    const args = [aAddr, bAddr, cAddr, batch, M, N, K, rsA, csA, rsB * 4, csB * 4, M * K * 4, K * N * 4, M * N * 4, scratch] as const;
    if (native) {
      native.gemmBatch(heap, ...args);
    } else {
      gemmBatch(...args);
    }
    return;
  }
  const nativeGemm = native?.gemm;
  const wide: GemmFn | undefined = nativeGemm && ((...args) => nativeGemm(heap, ...args));
  let packed = -1; // which block the scratch holds (a broadcast B is packed once)
  for (let p = 0; p < batch; p++) {
    const aBase = aAddr + (aIdx[p] as number) * aRowsStored * K * 4;
    const bBase = (bAddr >>> 2) + (bIdx[p] as number) * K * N; // >>>: addresses past 2 GiB are unsigned
    const cBase = cAddr + p * M * N * 4;
    for (let jc = 0; jc < N; jc += NC) {
      const nc = Math.min(NC, N - jc);
      for (let pc = 0; pc < K; pc += KC) {
        const kc = Math.min(KC, K - pc);
        const key = ((bIdx[p] as number) * (Math.ceil(N / NC) + 1) + jc / NC) * (Math.ceil(K / KC) + 1) + pc / KC;
        if (key !== packed) {
          (native && kc * nc >= NATIVE_MIN_PACK ? native.pack : packPanels)(heap, bBase, rsB, csB, pc, kc, jc, nc, scratch >>> 2);
          packed = key;
        }
        const kernel = wide && Math.min(MC, M) * nc * kc >= NATIVE_MIN_MACS ? wide : gemm;
        for (let ic = 0; ic < M; ic += MC) {
          kernel(aBase + ic * rsA + pc * csA, scratch, cBase + (ic * N + jc) * 4, Math.min(MC, M - ic), nc, kc, rsA, csA, N * 4, pc > 0 ? 1 : 0);
        }
      }
    }
  }
}

