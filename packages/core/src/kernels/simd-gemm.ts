/**
 * A float32 GEMM in WebAssembly SIMD that runs in place in the tfjs wasm heap, blocked for
 * the caches as BLIS does:
 *   for each block of NC columns, of KC inner indices:   pack B's block into 8-wide panels
 *     for each block of MC rows:                         gemm() below (wasm)
 *       for each panel of 8 columns:                     the panel (KC·8 floats) stays in L1
 *         for each 4 rows:                               4 × 8 micro-kernel over KC
 * A is read in place through byte strides (rsA per row, csA per inner index), so a
 * transposed A costs nothing; B of either layout is packed (packB). C gets the first
 * inner block written and the others added.
 *
 * Micro-kernel: eight f32x4 accumulators; per inner index two vector loads of the panel,
 * four splat loads of A and eight fused multiply-adds (relaxed SIMD's f32x4.relaxed_madd,
 * see fmaAvailable; without it a multiply then an add, each product rounded to float32
 * first, as tfjs's own kernels do). Every output element sums its products in index order
 * whatever its place in the batch, so a row computes the same bits alone or batched.
 * 4 × 8 is the largest block V8 keeps in registers: 6 × 8 ran at half the speed.
 *
 * Measured (min CPU ms of 15, 2-core AMD EPYC, Node 20; GFLOP/s):
 *                                         stock tfjs-wasm    this, no FMA    this, FMA
 *   (512, 256)·(256, 704) (XNNPACK's case)    9.5 (19)         7.2 (25)        4.4 (42)
 *   (512, 256)·(704, 256)ᵀ                    157 (1.2)        7.4 (25)        4.4 (42)
 *   lm_head dx (512, 32000)·(32000, 256)      —               403 (21)        235 (36)
 *   lm_head y (512, 256)·(32000, 256)ᵀ        —               385 (22)        209 (40)
 *   attention (1024, 106, 8)·(1024, 53, 8)ᵀ   119 (0.8)         12 (8)           7 (12)
 * (Before cache blocking, the lm_head dx ran at 4 GFLOP/s: a 1 MB panel per 8 columns.)
 */
import v8 from "node:v8";
import { op, wasmModule, WasmType, type Code } from "./wasm-encoder.js";
import { perMemory, WebAssemblyApi, type WasmMemory } from "./wasm-heap.js";

/** Cache blocks: KC·8 floats of a panel in L1, MC·KC floats of A in L2, KC·NC of B in L3. */
export const GEMM_BLOCKS = { NC: 2048, KC: 256, MC: 128 } as const;

// params (i32): byte addresses and strides
const A = 0;
const B = 1;
const C = 2;
const M = 3;
const N = 4;
const K = 5;
const RS_A = 6;
const CS_A = 7;
const LDC = 8;
const ACCUMULATE = 9;
const NUM_PARAMS = 10;
// i32 locals
const I = 10;
const J = 11;
const KK = 12;
const PA = 13;
const PB = 14;
const PC = 15;
const PANEL = 16;
const REM = 17;
const RS2 = 18;
const RS3 = 19;
const NUM_I32_LOCALS = 10;
// v128 locals: accumulators ACC + 2r + h (row r, half h), then a, b0, b1
const ACC = 20;
const AV = 28;
const B0 = 29;
const B1 = 30;
const NUM_V128_LOCALS = 11;

/** Blocks of R rows (4 or 1) while i + R ≤ M, for the panel at PANEL, columns J…J+7. */
function rowBlocks(R: number, fma: boolean): Code {
  const acc = (r: number, h: number): number => ACC + 2 * r + h;
  const rows = (f: (r: number) => Code): Code => Array.from({ length: R }, (_, r) => f(r)).flat();
  const nextRow = [...op.get(PC), ...op.get(LDC), ...op.add, ...op.set(PC)];
  const loadC = [
    ...op.get(REM), ...op.i32(8), ...op.geS,
    ...op.if(
      rows((r) => [...op.get(PC), ...op.vLoad(0), ...op.set(acc(r, 0)), ...op.get(PC), ...op.vLoad(16), ...op.set(acc(r, 1)), ...nextRow]),
      rows((r) => [
        ...op.vZero, ...op.set(acc(r, 0)), ...op.vZero, ...op.set(acc(r, 1)),
        ...Array.from({ length: 8 }, (_, l) => [
          ...op.get(REM), ...op.i32(l), ...op.gtS,
          ...op.if([...op.get(acc(r, l >> 2)), ...op.get(PC), ...op.f32Load(4 * l), ...op.f4ReplaceLane(l & 3), ...op.set(acc(r, l >> 2))]),
        ]).flat(),
        ...nextRow,
      ]),
    ),
  ];
  const zero = Array.from({ length: 2 * R }, (_, q) => [...op.vZero, ...op.set(ACC + q)]).flat();
  const cAddr = [...op.get(C), ...op.get(I), ...op.get(LDC), ...op.mul, ...op.add, ...op.get(J), ...op.i32(4), ...op.mul, ...op.add, ...op.set(PC)];
  const kLoop = op.block(
    op.loop([
      ...op.get(KK), ...op.eqz, ...op.brIf(1),
      ...op.get(PB), ...op.vLoad(0), ...op.set(B0),
      ...op.get(PB), ...op.vLoad(16), ...op.set(B1),
      ...rows((r) => [
        ...op.get(PA), ...(r > 0 ? [...op.get([RS_A, RS2, RS3][r - 1] as number), ...op.add] : []), ...op.vLoadSplat(0), ...op.set(AV),
        ...(fma
          ? [...op.get(AV), ...op.get(B0), ...op.get(acc(r, 0)), ...op.f4Madd, ...op.set(acc(r, 0)), ...op.get(AV), ...op.get(B1), ...op.get(acc(r, 1)), ...op.f4Madd, ...op.set(acc(r, 1))]
          : [
              ...op.get(acc(r, 0)), ...op.get(AV), ...op.get(B0), ...op.f4Mul, ...op.f4Add, ...op.set(acc(r, 0)),
              ...op.get(acc(r, 1)), ...op.get(AV), ...op.get(B1), ...op.f4Mul, ...op.f4Add, ...op.set(acc(r, 1)),
            ]),
      ]),
      ...op.get(PA), ...op.get(CS_A), ...op.add, ...op.set(PA),
      ...op.get(PB), ...op.i32(32), ...op.add, ...op.set(PB),
      ...op.get(KK), ...op.i32(1), ...op.sub, ...op.set(KK),
      ...op.br(0),
    ]),
  );
  const store = [
    ...op.get(REM), ...op.i32(8), ...op.geS,
    ...op.if(
      rows((r) => [...op.get(PC), ...op.get(acc(r, 0)), ...op.vStore(0), ...op.get(PC), ...op.get(acc(r, 1)), ...op.vStore(16), ...nextRow]),
      rows((r) => [
        ...Array.from({ length: 8 }, (_, l) => [
          ...op.get(REM), ...op.i32(l), ...op.gtS,
          ...op.if([...op.get(PC), ...op.get(acc(r, l >> 2)), ...op.f4Lane(l & 3), ...op.f32Store(4 * l)]),
        ]).flat(),
        ...nextRow,
      ]),
    ),
  ];
  return op.block(
    op.loop([
      ...op.get(I), ...op.i32(R), ...op.add, ...op.get(M), ...op.gtS, ...op.brIf(1),
      ...cAddr,
      ...op.get(ACCUMULATE), ...op.if(loadC, zero),
      ...op.get(A), ...op.get(I), ...op.get(RS_A), ...op.mul, ...op.add, ...op.set(PA),
      ...op.get(PANEL), ...op.set(PB),
      ...op.get(K), ...op.set(KK),
      ...kLoop,
      ...cAddr,
      ...store,
      ...op.get(I), ...op.i32(R), ...op.add, ...op.set(I),
      ...op.br(0),
    ]),
  );
}

/**
 * pack(src, rs, cs, kc, nc, dst): B(k, j) at byte address src + k·rs + j·cs, for k < kc and
 * j < nc, into ⌈nc/8⌉ panels of (kc, 8) floats at dst, zero-padded (packPanels in wasm).
 */
function packFunction(): Code {
  const [SRC, RS, CS, KC, NC, DST, J0, KK, L, J] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] as const;
  const element = [
    ...op.get(J0), ...op.get(L), ...op.add, ...op.set(J),
    ...op.get(J), ...op.get(NC), ...op.ltS,
    ...op.if(
      [...op.get(DST), ...op.get(SRC), ...op.get(KK), ...op.get(RS), ...op.mul, ...op.add, ...op.get(J), ...op.get(CS), ...op.mul, ...op.add, ...op.f32Load(0), ...op.f32Store(0)],
      [...op.get(DST), ...op.f32(0), ...op.f32Store(0)],
    ),
    ...op.get(DST), ...op.i32(4), ...op.add, ...op.set(DST),
  ];
  const loopTo = (v: number, end: Code, step: number, body: Code): Code => [
    ...op.i32(0), ...op.set(v),
    ...op.block(op.loop([...op.get(v), ...end, ...op.geS, ...op.brIf(1), ...body, ...op.get(v), ...op.i32(step), ...op.add, ...op.set(v), ...op.br(0)])),
  ];
  return loopTo(J0, op.get(NC), 8, loopTo(KK, op.get(KC), 1, loopTo(L, op.i32(8), 1, element)));
}

/**
 * gemmBatch(a, b, c, batch, M, N, K, rsA, csA, rsB, csB, sA, sB, sC, scratch): for each of
 * `batch` products (A, B, C advanced by byte strides sA, sB, sC), pack B whole into the
 * scratch and run gemm over all M rows, C overwritten. For many small products (attention's
 * (B·nkv, T, hs) · (B·nkv, S, hs)ᵀ) the JS loop cost more than the arithmetic; the caller
 * keeps K ≤ KC, N ≤ NC and M ≤ MC, so each product is one block, as runGemm would do it.
 */
function gemmBatchFunction(): Code {
  const [Ap, Bp, Cp, BATCH, Mp, Np, Kp, RSA, CSA, RSB, CSB, SA, SB, SC, SCRATCH, P] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] as const;
  return [
    ...op.i32(0), ...op.set(P),
    ...op.block(
      op.loop([
        ...op.get(P), ...op.get(BATCH), ...op.geS, ...op.brIf(1),
        ...op.get(Bp), ...op.get(RSB), ...op.get(CSB), ...op.get(Kp), ...op.get(Np), ...op.get(SCRATCH), ...op.call(1),
        ...op.get(Ap), ...op.get(SCRATCH), ...op.get(Cp), ...op.get(Mp), ...op.get(Np), ...op.get(Kp), ...op.get(RSA), ...op.get(CSA),
        ...op.get(Np), ...op.i32(4), ...op.mul, ...op.i32(0), ...op.call(0),
        ...op.get(Ap), ...op.get(SA), ...op.add, ...op.set(Ap),
        ...op.get(Bp), ...op.get(SB), ...op.add, ...op.set(Bp),
        ...op.get(Cp), ...op.get(SC), ...op.add, ...op.set(Cp),
        ...op.get(P), ...op.i32(1), ...op.add, ...op.set(P),
        ...op.br(0),
      ]),
    ),
  ];
}

/**
 * The module's bytes, three exports:
 *   gemm(a, panels, c, M, N, K, rsA, csA, ldc, accumulate)
 *     C[i, j] (+)= Σ_k A[i, k] · B[k, j] with B packed as ⌈N/8⌉ panels of (K, 8) floats;
 *   pack(src, rs, cs, kc, nc, dst) (packFunction);
 *   gemmBatch(a, b, c, batch, M, N, K, rsA, csA, rsB, csB, sA, sB, sC, scratch) (gemmBatchFunction).
 */
export function gemmModuleBytes(fma = false, shared = false): Uint8Array {
  const panelLoop = op.block(
    op.loop([
      ...op.get(J), ...op.get(N), ...op.geS, ...op.brIf(1),
      ...op.get(N), ...op.get(J), ...op.sub, ...op.set(REM),
      ...op.i32(0), ...op.set(I),
      ...rowBlocks(4, fma),
      ...rowBlocks(1, fma),
      ...op.get(PANEL), ...op.get(K), ...op.i32(32), ...op.mul, ...op.add, ...op.set(PANEL),
      ...op.get(J), ...op.i32(8), ...op.add, ...op.set(J),
      ...op.br(0),
    ]),
  );
  return wasmModule([
    {
      name: "gemm",
      params: new Array(NUM_PARAMS).fill(WasmType.i32),
      locals: [...new Array(NUM_I32_LOCALS).fill(WasmType.i32), ...new Array(NUM_V128_LOCALS).fill(WasmType.v128)],
      body: [
        ...op.get(RS_A), ...op.i32(2), ...op.mul, ...op.set(RS2),
        ...op.get(RS_A), ...op.i32(3), ...op.mul, ...op.set(RS3),
        ...op.get(B), ...op.set(PANEL), ...op.i32(0), ...op.set(J), ...panelLoop,
      ],
    },
    { name: "pack", params: new Array(6).fill(WasmType.i32), locals: new Array(4).fill(WasmType.i32), body: packFunction() },
    { name: "gemmBatch", params: new Array(15).fill(WasmType.i32), locals: [WasmType.i32], body: gemmBatchFunction() },
  ], { shared });
}

/** gemm(a, panels, c, M, N, K, rsA, csA, ldc, accumulate): addresses and strides in bytes. */
export type GemmFn = (a: number, panels: number, c: number, M: number, N: number, K: number, rsA: number, csA: number, ldc: number, accumulate: number) => void;
/** gemmBatch(a, b, c, batch, M, N, K, rsA, csA, rsB, csB, sA, sB, sC, scratch): addresses and strides in bytes. */
export type GemmBatchFn = (a: number, b: number, c: number, batch: number, M: number, N: number, K: number, rsA: number, csA: number, rsB: number, csB: number, sA: number, sB: number, sC: number, scratch: number) => void;
/** The module's exports bound to one memory. */
export interface GemmKernels {
  gemm: GemmFn;
  gemmBatch: GemmBatchFn;
}

let fma: boolean | undefined;

/**
 * Whether to build the FMA kernel (f32x4.relaxed_madd). Relaxed SIMD ships enabled from V8
 * 11.4 (Node 22); Node 20's V8 11.3 has it behind --experimental-wasm-relaxed-simd, which
 * we turn on for modules compiled from now on. OML_WASM_FMA=0 keeps the plain kernel.
 * Decided once a process (the probe builds and validates a module: ~7 ms, and every kernel
 * module and the native loader ask).
 */
export function fmaAvailable(): boolean {
  if (fma === undefined) {
    fma = false;
    if (process.env.OML_WASM_FMA !== "0") {
      const bytes = gemmModuleBytes(true);
      if (!WebAssemblyApi.validate(bytes)) {
        v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
      }
      fma = WebAssemblyApi.validate(bytes);
    }
  }
  return fma;
}

const bindGemm = (e: Record<string, unknown>): GemmKernels => ({ gemm: e.gemm as GemmFn, gemmBatch: e.gemmBatch as GemmBatchFn });
const gemmPlain = perMemory(() => gemmModuleBytes(fmaAvailable()), bindGemm);
const gemmShared = perMemory(() => gemmModuleBytes(fmaAvailable(), true), bindGemm);

/** The GEMM kernels bound to a heap (one instance per WebAssembly.Memory, shared or not). */
export function simdGemm(memory: WasmMemory): GemmKernels {
  return memory.buffer instanceof SharedArrayBuffer ? gemmShared(memory) : gemmPlain(memory);
}

/**
 * Pack B[k0 … k0+kc, j0 … j0+nc) into ⌈nc/8⌉ panels of (kc, 8) floats at float index
 * `dst`, zero-padded. B(k, j) is at float index src + k·rs + j·cs (rs = N, cs = 1 for a
 * row-major (K, N) B; rs = 1, cs = K for a transposed one).
 */
export function packPanels(heap: Float32Array, src: number, rs: number, cs: number, k0: number, kc: number, j0: number, nc: number, dst: number): void {
  const panels = Math.ceil(nc / 8);
  for (let p = 0; p < panels; p++) {
    const width = Math.min(8, nc - p * 8);
    const out = dst + p * kc * 8;
    if (width < 8) {
      heap.fill(0, out, out + kc * 8);
    }
    if (cs === 1) {
      for (let k = 0; k < kc; k++) {
        const s = src + (k0 + k) * rs + j0 + p * 8;
        const o = out + k * 8;
        for (let l = 0; l < width; l++) {
          heap[o + l] = heap[s + l] as number;
        }
      }
    } else {
      for (let l = 0; l < width; l++) {
        const s = src + (j0 + p * 8 + l) * cs + k0 * rs;
        for (let k = 0, o = out + l; k < kc; k++, o += 8) {
          heap[o] = heap[s + k * rs] as number;
        }
      }
    }
  }
}
