/**
 * RMSNorm (rms-norm.ts) and its gradient in WebAssembly SIMD, in place in the tfjs wasm heap,
 * row by row over the last axis (C floats, C mod 4 = 0), in float32:
 *   forward   r = 1 / sqrt(Σ x² / C + eps);  y = (x·r) · (w + offset)
 *   backward  g = w + offset;  k = r³ · (Σ dy·g·x) / C
 *             dx = r·(dy·g) − x·k;   dw += (x·r)·dy  (accumulated over the rows)
 * The sums run in four f32 lanes, then across them ((l0 + l1) + (l2 + l3)): float32 as
 * tfjs-wasm's Mean (a float32 running sum), only in another order. Two passes over a row
 * each way; a row of stories260K (C = 64) is 16 vectors, so the per-row overhead (the
 * reduction, one sqrt and a division) is a fair part: kept scalar, it is once per row.
 */
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { op, wasmModule, WasmType, type Code, type WasmFunction, type WasmValueType } from "./wasm-encoder.js";
import { heapAddress, heapF32, perMemory, type WasmBackendLike } from "./wasm-heap.js";

/** f32.convert_i32_s */
const F32_FROM_I32: Code = [0xb2];

// forward params: X, W, OUT (byte addresses), ROWS, C, EPS (f32), OFFSET (f32)
// backward params: DY, X, W, DX, DW, ROWS, C, EPS, OFFSET
// locals of both, after the params: J, END (i32), R, K (f32), VACC, VDOT, VR, VK, VOFF (v128)

/** Σ of the four lanes of a v128 local, as one f32 on the stack. */
const laneSum = (local: number): Code => [
  ...op.get(local), ...op.f4Lane(0), ...op.get(local), ...op.f4Lane(1), ...op.fadd,
  ...op.get(local), ...op.f4Lane(2), ...op.get(local), ...op.f4Lane(3), ...op.fadd, ...op.fadd,
];

/** `body` for each byte offset J = 0, 16, … < END. */
const overRow = (J: number, END: number, body: Code): Code => [
  ...op.i32(0), ...op.set(J),
  ...op.block(op.loop([...op.get(J), ...op.get(END), ...op.geS, ...op.brIf(1), ...body, ...op.get(J), ...op.i32(16), ...op.add, ...op.set(J), ...op.br(0)])),
];

/** The v128 at [base + J]. */
const vAt = (base: number, J: number): Code => [...op.get(base), ...op.get(J), ...op.add, ...op.vLoad(0)];

/** A function over ROWS rows: `row`, then each of `advance` moves on by a row (END bytes). */
function overRows(name: string, params: number, ROWS: number, C: number, OFFSET: number, row: Code, advance: number[]): WasmFunction {
  const [J, END] = [params, params + 1];
  const VOFF = params + 8;
  return {
    name,
    params: [...new Array<WasmValueType>(params - 2).fill(WasmType.i32), WasmType.f32, WasmType.f32],
    locals: [WasmType.i32, WasmType.i32, WasmType.f32, WasmType.f32, ...new Array<WasmValueType>(5).fill(WasmType.v128)],
    body: [
      ...op.get(C), ...op.i32(4), ...op.mul, ...op.set(END),
      ...op.get(OFFSET), ...op.f4Splat, ...op.set(VOFF),
      ...op.block(
        op.loop([
          ...op.get(ROWS), ...op.eqz, ...op.brIf(1),
          ...row,
          ...advance.flatMap((p) => [...op.get(p), ...op.get(END), ...op.add, ...op.set(p)]),
          ...op.get(ROWS), ...op.i32(1), ...op.sub, ...op.set(ROWS),
          ...op.br(0),
        ]),
      ),
    ],
  };
}

/** r = 1 / sqrt(Σ x² / C + eps) from VACC's lanes, into R and the splat VR. */
const rstd = (C: number, EPS: number, VACC: number, R: number, VR: number): Code => [
  ...op.f32(1), ...laneSum(VACC), ...op.get(C), ...F32_FROM_I32, ...op.fdiv, ...op.get(EPS), ...op.fadd, ...op.fsqrt, ...op.fdiv,
  ...op.tee(R), ...op.f4Splat, ...op.set(VR),
];

function forward(): WasmFunction {
  const [X, W, OUT, ROWS, C, EPS, OFFSET] = [0, 1, 2, 3, 4, 5, 6];
  const [J, END, R, , VACC, , VR, , VOFF] = [7, 8, 9, 10, 11, 12, 13, 14, 15];
  const row = [
    ...op.vZero, ...op.set(VACC),
    ...overRow(J, END, [...op.get(VACC), ...vAt(X, J), ...vAt(X, J), ...op.f4Mul, ...op.f4Add, ...op.set(VACC)]),
    ...rstd(C, EPS, VACC, R, VR),
    ...overRow(J, END, [
      ...op.get(OUT), ...op.get(J), ...op.add,
      ...vAt(X, J), ...op.get(VR), ...op.f4Mul, ...vAt(W, J), ...op.get(VOFF), ...op.f4Add, ...op.f4Mul, // (x·r)·(w + offset), as the chain rounds
      ...op.vStore(0),
    ]),
  ];
  return overRows("forward", 7, ROWS, C, OFFSET, row, [X, OUT]);
}

function backward(): WasmFunction {
  const [DY, X, W, DX, DW, ROWS, C, EPS, OFFSET] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [J, END, R, K, VACC, VDOT, VR, VK, VOFF] = [9, 10, 11, 12, 13, 14, 15, 16, 17];
  const gain = [...vAt(W, J), ...op.get(VOFF), ...op.f4Add];
  const at = (base: number): Code => [...op.get(base), ...op.get(J), ...op.add];
  const row = [
    ...op.vZero, ...op.set(VACC), ...op.vZero, ...op.set(VDOT),
    ...overRow(J, END, [
      ...op.get(VACC), ...vAt(X, J), ...vAt(X, J), ...op.f4Mul, ...op.f4Add, ...op.set(VACC),
      ...op.get(VDOT), ...vAt(DY, J), ...gain, ...op.f4Mul, ...vAt(X, J), ...op.f4Mul, ...op.f4Add, ...op.set(VDOT),
    ]),
    ...rstd(C, EPS, VACC, R, VR),
    // k = r³ · Σ dy·g·x / C
    ...op.get(R), ...op.get(R), ...op.fmul, ...op.get(R), ...op.fmul, ...laneSum(VDOT), ...op.fmul, ...op.get(C), ...F32_FROM_I32, ...op.fdiv,
    ...op.tee(K), ...op.f4Splat, ...op.set(VK),
    ...overRow(J, END, [
      ...at(DX), ...op.get(VR), ...vAt(DY, J), ...gain, ...op.f4Mul, ...op.f4Mul, ...vAt(X, J), ...op.get(VK), ...op.f4Mul, ...op.f4Sub, ...op.vStore(0),
      ...at(DW), ...vAt(DW, J), ...vAt(X, J), ...op.get(VR), ...op.f4Mul, ...vAt(DY, J), ...op.f4Mul, ...op.f4Add, ...op.vStore(0),
    ]),
  ];
  return overRows("backward", 9, ROWS, C, OFFSET, row, [DY, X, DX]);
}

/** The module's bytes: forward(x, w, out, rows, C, eps, offset), backward(dy, x, w, dx, dw, rows, C, eps, offset). */
export function rmsNormModuleBytes(): Uint8Array {
  return wasmModule([forward(), backward()]);
}

type ForwardFn = (x: number, w: number, out: number, rows: number, C: number, eps: number, offset: number) => void;
type BackwardFn = (dy: number, x: number, w: number, dx: number, dw: number, rows: number, C: number, eps: number, offset: number) => void;

/** The two functions bound to a heap (one instance per WebAssembly.Memory). */
const simdRmsNorm = perMemory(rmsNormModuleBytes, (e) => ({ forward: e.forward as ForwardFn, backward: e.backward as BackwardFn }));

/** y = x · rsqrt(mean(x²) + eps) · (w + offset) over the last axis (C mod 4 = 0). */
export function wasmRmsNorm(b: WasmBackendLike, x: TensorInfo, w: TensorInfo, eps: number, offset: number): TensorInfo {
  const C = w.shape[0] as number;
  const out = b.makeOutput(x.shape, "float32"); // first: addresses are read after the last allocation
  const rows = x.shape.reduce((a, c) => a * c, 1) / C;
  simdRmsNorm(b.wasm.asm.memory).forward(heapAddress(b, x), heapAddress(b, w), heapAddress(b, out), rows, C, eps, offset);
  return out;
}

/** [dx, dw] of RMSNorm for the output gradient dy (C mod 4 = 0). */
export function wasmRmsNormGrad(b: WasmBackendLike, dy: TensorInfo, x: TensorInfo, w: TensorInfo, eps: number, offset: number): TensorInfo[] {
  const C = w.shape[0] as number;
  const dx = b.makeOutput(x.shape, "float32");
  const dw = b.makeOutput([C], "float32");
  const dwAddress = heapAddress(b, dw);
  heapF32(b).fill(0, dwAddress >>> 2, (dwAddress >>> 2) + C); // accumulated into; malloc does not clear
  const rows = x.shape.reduce((a, c) => a * c, 1) / C;
  simdRmsNorm(b.wasm.asm.memory).backward(heapAddress(b, dy), heapAddress(b, x), heapAddress(b, w), heapAddress(b, dx), dwAddress, rows, C, eps, offset);
  return [dx, dw];
}
