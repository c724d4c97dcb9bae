/**
 * Both cores on one GEMM. tfjs-wasm runs one thread in Node and its heap is not shared, so a
 * second thread (gemm-pool-worker.ts) works in a shared
 * WebAssembly.Memory of its own: for a product big enough, the main thread copies the second
 * part of op(A) (rows of a single product, or whole products of a batch) and B there, wakes the
 * thread, computes the first part in place in the tfjs heap, waits, and copies the thread's
 * rows of C back. Both run the same GEMM code on the same values and every row sums its
 * products in the same order whatever thread computes it, so the result is bit for bit the
 * single-thread one (tested).
 *
 * The thread starts at the first product big enough to share (that product and the next
 * few, until the thread has warmed up, stay on one thread: it is never waited for), so a
 * process whose big products all run while data-parallel or generation workers compute
 * never starts it. Off in worker threads (they have their own backends and already use the
 * cores), while such workers run (`gemmPoolYield`), with one core, and with
 * OML_GEMM_THREADS=0.
 */
import os from "node:os";
import { isMainThread, Worker } from "node:worker_threads";
import { RuntimeFailure } from "../errors.js";
import { workerUrl } from "../parallel/worker-url.js";
import { isIdentity, plainDims, runGemm, scratchBytes, type MatMulDims } from "./gemm-loops.js";
import { CTL, type GemmPoolInit } from "./gemm-pool-protocol.js";
import { nativeKernels } from "./native.js";
import { SHARED_MEMORY_MAX_PAGES } from "./wasm-encoder.js";
import { WebAssemblyApi, type WasmMemory } from "./wasm-heap.js";

/** Products below this many flops stay on one thread: waking the other and the copies cost more. */
export const MIN_POOL_FLOPS = 8e6;
/**
 * The same two with our native GEMM (native.ts): twice as fast, so the copies weigh twice as
 * much. Measured (median ms, one thread → pool, interleaved): (4352, 64)·(64, 172) 1.50 → 1.89
 * (96 MFLOP, K·N/(K + N) 47: a stories260K check's); (4352, 172)·(172, 64) 1.28 → 1.22;
 * (9632, 96)·(96, 200) 3.5 → 8.2 (370 MFLOP, 65); (512, 256)·(256, 704) 2.66 → 2.63 (184
 * MFLOP, 188); the 20M Llama's lm_head (512, 256)·(256, 32000) 120 → 95 (8.4 GFLOP, 254). A
 * check then never starts the thread, whose start cost a fresh oml-check ~0.15 s.
 */
export const MIN_POOL_FLOPS_NATIVE = 256e6;
export const MIN_POOL_INTENSITY_NATIVE = 200;
/**
 * Nor do products with fewer multiply-adds per float copied, K·N/(K + N) (A's and C's rows
 * cross over; B is small then). Measured (ms, one thread → pool): (4352, 64)·(64, 64) 0.83 →
 * 1.05 (32 per float); (4352, 64)·(64, 172) 2.30 → 1.33 (47); (512, 256)·(256, 704) 4.5 → 3.0;
 * the 20M Llama's lm_head (512, 256)·(256, 32000) 203 → 139.
 */
export const MIN_POOL_INTENSITY = 40;
/** A product taking longer than this in the pool's thread is a hung thread. */
const WAIT_MS = 600_000;

interface Pool {
  worker: Worker;
  memory: WasmMemory;
  ctl: Int32Array;
  u32: Uint32Array;
  seq: number;
  broken: boolean;
}

let pool: Pool | null | undefined; // undefined: not started; null: off for this thread
let othersBusy = 0;
let disabled = false;
let splitCount = 0;

/** Products of fewer flops stay on one thread (MIN_POOL_FLOPS, or MIN_POOL_FLOPS_NATIVE with the native GEMM). */
export function gemmPoolMinFlops(): number {
  return nativeKernels() ? MIN_POOL_FLOPS_NATIVE : MIN_POOL_FLOPS;
}

/** And products of fewer multiply-adds per float copied (MIN_POOL_INTENSITY, or MIN_POOL_INTENSITY_NATIVE). */
export function gemmPoolMinIntensity(): number {
  return nativeKernels() ? MIN_POOL_INTENSITY_NATIVE : MIN_POOL_INTENSITY;
}

/** Whether the pool's thread has been started (tests). */
export function gemmPoolStarted(): boolean {
  return pool !== undefined && pool !== null;
}

/** How many products the pool's thread has shared so far (tests, benchmarks). */
export function gemmPoolSplits(): number {
  return splitCount;
}

function wanted(): boolean {
  return isMainThread && !disabled && process.env.OML_GEMM_THREADS !== "0" && (os.availableParallelism?.() ?? os.cpus().length) > 1;
}

/** Start the pool's thread (idempotent; pooledGemm does it on first need); it loads in ~50 ms while the caller goes on. */
export function startGemmPool(): void {
  if (pool !== undefined || !wanted()) {
    return;
  }
  let memory: WasmMemory;
  let control: SharedArrayBuffer;
  let worker: Worker;
  try {
    // a shared memory reserves its maximum (4 GiB) of address space up front
    memory = new WebAssemblyApi.Memory({ initial: 16, maximum: SHARED_MEMORY_MAX_PAGES, shared: true });
    control = new SharedArrayBuffer(CTL.LENGTH * 4);
    worker = new Worker(workerUrl("gemm-pool-worker", "kernels/gemm-pool-worker.js"), { workerData: { memory, control } satisfies GemmPoolInit });
  } catch {
    pool = null; // no second thread here (address space, threads): every product on one
    return;
  }
  worker.unref(); // never keeps the process alive
  const p: Pool = { worker, memory, ctl: new Int32Array(control), u32: new Uint32Array(control), seq: 0, broken: false };
  worker.on("error", () => (p.broken = true));
  worker.on("exit", () => (p.broken = true));
  // Let the thread leave its wait at exit instead of relying on its termination there.
  process.once("exit", () => {
    Atomics.store(p.ctl, CTL.SEQ, -1);
    Atomics.notify(p.ctl, CTL.SEQ);
  });
  pool = p;
}

/**
 * Other threads compute from now on (data-parallel or generation workers): GEMMs stay on one
 * thread until the returned release() is called.
 */
export function gemmPoolYield(): () => void {
  othersBusy++;
  let released = false;
  return () => {
    if (!released) {
      released = true;
      othersBusy--;
    }
  };
}

/** For tests and benchmarks: turn the pool off (true) or back on. */
export function disableGemmPool(off: boolean): void {
  disabled = off;
}

/** Resolves true once the pool's thread is ready (false if it is off); for tests. */
export async function gemmPoolReady(): Promise<boolean> {
  startGemmPool();
  for (let i = 0; i < 500 && pool && !pool.broken; i++) {
    if (Atomics.load(pool.ctl, CTL.READY) === 1) {
      return true;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

function usable(): Pool | undefined {
  if (othersBusy > 0 || disabled) {
    return undefined;
  }
  if (pool === undefined) {
    startGemmPool(); // from the next products on, once it is ready
    return undefined;
  }
  if (!pool || pool.broken || Atomics.load(pool.ctl, CTL.READY) !== 1) {
    return undefined;
  }
  return pool;
}

const align = (x: number): number => Math.ceil(x / 64) * 64;

/**
 * C = op(A)·op(B) over `d` on `memory` (the tfjs heap, `heap` its view as of now) with the
 * pool's thread taking the second half; false (nothing done) when the pool is off or busy,
 * the product small, or a batch broadcast.
 */
export function pooledGemm(memory: WasmMemory, heap: Float32Array, d: MatMulDims, aAddr: number, bAddr: number, cAddr: number, scratch: number, transposeA: boolean, transposeB: boolean): boolean {
  const { M, N, K, batch } = d;
  if (2 * batch * M * N * K < gemmPoolMinFlops() || K === 0 || (K * N) / (K + N) < gemmPoolMinIntensity()) {
    return false;
  }
  const p = usable();
  if (!p) {
    return false;
  }
  const single = batch === 1;
  if (!single && !(isIdentity(d.aIdx) && isIdentity(d.bIdx))) {
    return false;
  }
  // Split: rows [m0, M) of one product, or products [p0, batch).
  const m0 = single ? Math.floor(M / 2) : M;
  const p0 = single ? 1 : Math.floor(batch / 2);
  if ((single && m0 === 0) || (!single && p0 === 0)) {
    return false;
  }
  const Mw = single ? M - m0 : M;
  const Bw = single ? 1 : batch - p0;
  const aFloats = Bw * Mw * K;
  const bFloats = Bw * K * N;
  const cFloats = Bw * Mw * N;
  const wd = plainDims(Mw, N, K, Bw);
  const A = 0;
  const B = align(aFloats * 4);
  const C = B + align(bFloats * 4);
  const S = C + align(cFloats * 4);
  const total = S + scratchBytes(wd);
  const have = p.memory.buffer.byteLength;
  if (total > have) {
    if (total > SHARED_MEMORY_MAX_PAGES * 65536) {
      return false;
    }
    p.memory.grow(Math.ceil((total - have) / 65536));
  }
  const shared = new Float32Array(p.memory.buffer);
  const a4 = aAddr >>> 2;
  const b4 = bAddr >>> 2;
  if (single && transposeA) {
    // A stored (K, M): the columns m0 … M of every row k, as a (K, Mw) matrix
    for (let k = 0; k < K; k++) {
      shared.set(heap.subarray(a4 + k * M + m0, a4 + k * M + M), k * Mw);
    }
  } else {
    const from = single ? a4 + m0 * K : a4 + p0 * M * K; // rows m0… of (M, K), or products p0…
    shared.set(heap.subarray(from, from + aFloats), A >>> 2);
  }
  const bFrom = single ? b4 : b4 + p0 * K * N;
  shared.set(heap.subarray(bFrom, bFrom + bFloats), B >>> 2);
  const { ctl, u32 } = p;
  u32[CTL.A] = A;
  u32[CTL.B] = B;
  u32[CTL.C] = C;
  u32[CTL.SCRATCH] = S;
  u32[CTL.BYTES] = total;
  ctl[CTL.BATCH] = Bw;
  ctl[CTL.M] = Mw;
  ctl[CTL.N] = N;
  ctl[CTL.K] = K;
  ctl[CTL.TA] = transposeA ? 1 : 0;
  ctl[CTL.TB] = transposeB ? 1 : 0;
  const seq = ++p.seq;
  Atomics.store(ctl, CTL.SEQ, seq);
  Atomics.notify(ctl, CTL.SEQ);

  // Our part, in place: rows [0, m0) (a transposed A keeps its stored row count), or products [0, p0).
  const md: MatMulDims = single ? { ...d, M: m0 } : { ...d, batch: p0, outDims: [p0], aIdx: d.aIdx.subarray(0, p0), bIdx: d.bIdx.subarray(0, p0) };
  runGemm(memory, heap, md, aAddr, bAddr, cAddr, scratch, transposeA, transposeB, M);

  for (;;) {
    const done = Atomics.load(ctl, CTL.DONE);
    if (done === seq) {
      break;
    }
    // wait on the value just compared: had the thread finished in between, this returns at once
    if (Atomics.wait(ctl, CTL.DONE, done, WAIT_MS) === "timed-out") {
      p.broken = true;
      throw new RuntimeFailure("the GEMM pool's thread did not answer (set OML_GEMM_THREADS=0 to compute on one thread)");
    }
  }
  if (ctl[CTL.STATUS] !== 0) {
    p.broken = true;
    throw new RuntimeFailure("the GEMM pool's thread failed (set OML_GEMM_THREADS=0 to compute on one thread)");
  }
  splitCount++;
  const out = new Float32Array(p.memory.buffer, C, cFloats);
  heap.set(out, (cAddr >>> 2) + (single ? m0 * N : p0 * M * N));
  return true;
}
