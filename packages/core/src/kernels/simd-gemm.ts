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
import { WebAssemblyApi, type WasmMemory } from "./wasm-heap.js";

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
 * The module's bytes: one export
 *   gemm(a, panels, c, M, N, K, rsA, csA, ldc, accumulate)
 * C[i, j] (+)= Σ_k A[i, k] · B[k, j] with B packed as ⌈N/8⌉ panels of (K, 8) floats.
 */
export function gemmModuleBytes(fma = false): Uint8Array {
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
  ]);
}

/** gemm(a, panels, c, M, N, K, rsA, csA, ldc, accumulate): addresses and strides in bytes. */
export type GemmFn = (a: number, panels: number, c: number, M: number, N: number, K: number, rsA: number, csA: number, ldc: number, accumulate: number) => void;

/**
 * Whether to build the FMA kernel (f32x4.relaxed_madd). Relaxed SIMD ships enabled from V8
 * 11.4 (Node 22); Node 20's V8 11.3 has it behind --experimental-wasm-relaxed-simd, which
 * we turn on for modules compiled from now on. OML_WASM_FMA=0 keeps the plain kernel.
 */
export function fmaAvailable(): boolean {
  if (process.env.OML_WASM_FMA === "0") {
    return false;
  }
  const bytes = gemmModuleBytes(true);
  if (!WebAssemblyApi.validate(bytes)) {
    v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
  }
  return WebAssemblyApi.validate(bytes);
}

let compiled: object | undefined;
const instances = new WeakMap<WasmMemory, GemmFn>();

/** The GEMM bound to a heap (one instance per WebAssembly.Memory). */
export function simdGemm(memory: WasmMemory): GemmFn {
  let fn = instances.get(memory);
  if (!fn) {
    compiled ??= new WebAssemblyApi.Module(gemmModuleBytes(fmaAvailable()));
    fn = new WebAssemblyApi.Instance(compiled, { env: { memory } }).exports.gemm as GemmFn;
    instances.set(memory, fn);
  }
  return fn;
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
