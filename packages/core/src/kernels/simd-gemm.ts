/**
 * A float32 GEMM in WebAssembly SIMD that runs in place in the tfjs wasm heap:
 *   C (M, N) = A (M, K) · B (K, N)
 * A is read through byte strides (rsA per row, csA per column), so a transposed A costs
 * nothing; B must be row-major (K, N) with a row stride of `ldb` bytes (callers pack a
 * transposed B first, see batch-matmul.ts); C is row-major (M, N), overwritten.
 *
 * Micro-kernel: 4 rows × 8 columns of C in eight f32x4 accumulators; per k, two vector
 * loads of B, four splat loads of A, eight multiplies and eight adds (wasm SIMD has no
 * fused multiply-add, so each product is rounded to float32 before it is added, as the
 * stock kernel does). Leftover rows run one at a time; a last partial block of columns
 * is computed whole and stored lane by lane, so B's rows must hold ceil(N / 8)·8 readable
 * floats.
 *
 * Measured (CPU ms, 2-core AMD EPYC, Node 20; bench/engine-primitives.mjs):
 *                                             stock wasm BatchMatMul   this
 *   (1024, 106, 8)·(1024, 53, 8)ᵀ  attention       119                    8.7
 *   (1024, 106, 53)·(1024, 53, 8)                  83                     8.5
 *   (32, 64, 64)ᵀ·(32, 64, 64)                     14                     1.1
 *   (512, 256)·(704, 256)ᵀ                         157                    10.8
 *   (512, 256)·(256, 704)           (xnnpack)      9.5                    10.1
 */
import { op, wasmModule, WasmType, type Code } from "./wasm-encoder.js";
import { WebAssemblyApi, type WasmMemory } from "./wasm-heap.js";

// params (i32): byte addresses and strides
const A = 0;
const B = 1;
const C = 2;
const M = 3;
const N = 4;
const K = 5;
const RS_A = 6;
const CS_A = 7;
const LDB = 8;
const NUM_PARAMS = 9;
// i32 locals
const I = 9;
const J = 10;
const KK = 11;
const PA = 12;
const PB = 13;
const PC = 14;
const LDC = 15;
const REM = 16;
const NUM_I32_LOCALS = 8;
// v128 locals: accumulators ACC + 2r + h (row r, half h), then a, b0, b1
const ACC = 17;
const AV = 25;
const B0 = 26;
const B1 = 27;
const NUM_V128_LOCALS = 11;

/** The loop over blocks of R rows (R = 4 or 1) while i + R ≤ M, each over all columns. */
function rowBlocks(R: number): Code {
  const acc = (r: number, h: number): number => ACC + 2 * r + h;
  const rows = (f: (r: number) => Code): Code => Array.from({ length: R }, (_, r) => f(r)).flat();
  const kLoop = op.block(
    op.loop([
      ...op.get(KK), ...op.eqz, ...op.brIf(1),
      ...op.get(PB), ...op.vLoad(0), ...op.set(B0),
      ...op.get(PB), ...op.vLoad(16), ...op.set(B1),
      ...rows((r) => [
        ...op.get(PA), ...(r > 0 ? [...op.get(RS_A), ...op.i32(r), ...op.mul, ...op.add] : []), ...op.vLoadSplat(0), ...op.set(AV),
        ...op.get(acc(r, 0)), ...op.get(AV), ...op.get(B0), ...op.f4Mul, ...op.f4Add, ...op.set(acc(r, 0)),
        ...op.get(acc(r, 1)), ...op.get(AV), ...op.get(B1), ...op.f4Mul, ...op.f4Add, ...op.set(acc(r, 1)),
      ]),
      ...op.get(PA), ...op.get(CS_A), ...op.add, ...op.set(PA),
      ...op.get(PB), ...op.get(LDB), ...op.add, ...op.set(PB),
      ...op.get(KK), ...op.i32(1), ...op.sub, ...op.set(KK),
      ...op.br(0),
    ]),
  );
  const storeFull = rows((r) => [
    ...op.get(PC), ...op.get(acc(r, 0)), ...op.vStore(0),
    ...op.get(PC), ...op.get(acc(r, 1)), ...op.vStore(16),
    ...op.get(PC), ...op.get(LDC), ...op.add, ...op.set(PC),
  ]);
  const storePartial = rows((r) => [
    ...Array.from({ length: 8 }, (_, l) => [
      ...op.get(REM), ...op.i32(l), ...op.gtS,
      ...op.if([...op.get(PC), ...op.get(acc(r, l >> 2)), ...op.f4Lane(l & 3), ...op.f32Store(4 * l)]),
    ]).flat(),
    ...op.get(PC), ...op.get(LDC), ...op.add, ...op.set(PC),
  ]);
  const columnLoop = op.block(
    op.loop([
      ...op.get(J), ...op.get(N), ...op.geS, ...op.brIf(1),
      ...Array.from({ length: 2 * R }, (_, q) => [...op.vZero, ...op.set(ACC + q)]).flat(),
      ...op.get(A), ...op.get(I), ...op.get(RS_A), ...op.mul, ...op.add, ...op.set(PA),
      ...op.get(B), ...op.get(J), ...op.i32(4), ...op.mul, ...op.add, ...op.set(PB),
      ...op.get(K), ...op.set(KK),
      ...kLoop,
      ...op.get(C), ...op.get(I), ...op.get(LDC), ...op.mul, ...op.add, ...op.get(J), ...op.i32(4), ...op.mul, ...op.add, ...op.set(PC),
      ...op.get(N), ...op.get(J), ...op.sub, ...op.set(REM),
      ...op.get(REM), ...op.i32(8), ...op.geS,
      ...op.if(storeFull, storePartial),
      ...op.get(J), ...op.i32(8), ...op.add, ...op.set(J),
      ...op.br(0),
    ]),
  );
  return op.block(
    op.loop([
      ...op.get(I), ...op.i32(R), ...op.add, ...op.get(M), ...op.gtS, ...op.brIf(1),
      ...op.i32(0), ...op.set(J),
      ...columnLoop,
      ...op.get(I), ...op.i32(R), ...op.add, ...op.set(I),
      ...op.br(0),
    ]),
  );
}

/** The module's bytes: one export `gemm(a, b, c, M, N, K, rsA, csA, ldb)`. */
export function gemmModuleBytes(): Uint8Array {
  return wasmModule([
    {
      name: "gemm",
      params: new Array(NUM_PARAMS).fill(WasmType.i32),
      locals: [...new Array(NUM_I32_LOCALS).fill(WasmType.i32), ...new Array(NUM_V128_LOCALS).fill(WasmType.v128)],
      body: [...op.get(N), ...op.i32(4), ...op.mul, ...op.set(LDC), ...op.i32(0), ...op.set(I), ...rowBlocks(4), ...rowBlocks(1)],
    },
  ]);
}

/**
 * gemm(a, b, c, M, N, K, rsA, csA, ldb): addresses and strides in bytes; K ≥ 1.
 */
export type GemmFn = (a: number, b: number, c: number, M: number, N: number, K: number, rsA: number, csA: number, ldb: number) => void;

let compiled: object | undefined;
const instances = new WeakMap<WasmMemory, GemmFn>();

/** The GEMM bound to a heap (one instance per WebAssembly.Memory). */
export function simdGemm(memory: WasmMemory): GemmFn {
  let fn = instances.get(memory);
  if (!fn) {
    compiled ??= new WebAssemblyApi.Module(gemmModuleBytes());
    fn = new WebAssemblyApi.Instance(compiled, { env: { memory } }).exports.gemm as GemmFn;
    instances.set(memory, fn);
  }
  return fn;
}
