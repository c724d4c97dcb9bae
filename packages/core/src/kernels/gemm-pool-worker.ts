/**
 * The GEMM pool's thread (gemm-pool.ts): runs its share of a product in the pool's shared
 * memory when the main thread bumps `seq`, then sets `done` and wakes it. Loads no tfjs.
 */
import { workerData } from "node:worker_threads";
import { plainDims, runGemm } from "./gemm-loops.js";
import { CTL, type GemmPoolInit } from "./gemm-pool-protocol.js";

const { memory, control } = workerData as GemmPoolInit;
const ctl = new Int32Array(control);
const u32 = new Uint32Array(control);

/**
 * Run the GEMM on a few small products first, so that its code (the JS loops around the wasm,
 * the wasm's tier-up) is warm before the first real product, while the
 * main thread goes on alone. Measured on oml-check's (4352, 64)·(64, 172), with the thread
 * started with the backend: the first pooled product took 41–45 ms with a cold thread, 24–30
 * ms after this (the rest is the main thread's own first call); later ones are the same.
 */
function warmUp(): void {
  const n = 64;
  const d = plainDims(n, n, n, 2);
  const floats = 2 * n * n;
  const [a, b, c, scratch] = [0, floats * 4, 2 * floats * 4, 3 * floats * 4];
  for (let i = 0; i < 8; i++) {
    for (const [ta, tb] of [[false, false], [false, true], [true, false]] as const) {
      runGemm(memory, new Float32Array(memory.buffer), d, a, b, c, scratch, ta, tb);
      runGemm(memory, new Float32Array(memory.buffer), { ...d, batch: 1, outDims: [1], aIdx: d.aIdx.subarray(0, 1), bIdx: d.bIdx.subarray(0, 1) }, a, b, c, scratch, ta, tb);
    }
  }
}
warmUp();
Atomics.store(ctl, CTL.READY, 1);
let seen = 0;
for (;;) {
  Atomics.wait(ctl, CTL.SEQ, seen);
  seen = Atomics.load(ctl, CTL.SEQ);
  if (seen < 0) {
    break; // closed
  }
  let status = 0;
  try {
    const [a, b, c, scratch] = [u32[CTL.A] as number, u32[CTL.B] as number, u32[CTL.C] as number, u32[CTL.SCRATCH] as number];
    const [batch, M, N, K] = [ctl[CTL.BATCH] as number, ctl[CTL.M] as number, ctl[CTL.N] as number, ctl[CTL.K] as number];
    if (memory.buffer.byteLength < (u32[CTL.BYTES] as number)) {
      memory.grow(0); // the main thread grew the memory: refresh this thread's view of it
    }
    if (memory.buffer.byteLength < (u32[CTL.BYTES] as number)) {
      throw new Error("the shared memory is smaller than the product needs");
    }
    runGemm(memory, new Float32Array(memory.buffer), plainDims(M, N, K, batch), a, b, c, scratch, ctl[CTL.TA] === 1, ctl[CTL.TB] === 1);
  } catch {
    status = 1;
  }
  Atomics.store(ctl, CTL.STATUS, status);
  Atomics.store(ctl, CTL.DONE, seen);
  Atomics.notify(ctl, CTL.DONE);
}
