/** What the main thread and the GEMM pool's thread share (gemm-pool.ts, gemm-pool-worker.ts). */
import type { WasmMemory } from "./wasm-heap.js";

/** Slots of the control Int32Array (addresses read as Uint32). */
export const CTL = { SEQ: 0, DONE: 1, STATUS: 2, READY: 3, A: 4, B: 5, C: 6, SCRATCH: 7, BATCH: 8, M: 9, N: 10, K: 11, TA: 12, TB: 13, BYTES: 14, LENGTH: 16 } as const;

export interface GemmPoolInit {
  /** a shared WebAssembly.Memory */
  memory: WasmMemory;
  /** CTL.LENGTH int32 slots */
  control: SharedArrayBuffer;
}
