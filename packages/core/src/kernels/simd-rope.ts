/**
 * RoPE (rope.ts) in WebAssembly SIMD, in place in the tfjs wasm heap, for rd/2 mod 4 = 0
 * (stories260K: rd = 8, one vector per half). Per row of x and its cos/sin row, four
 * floats j … j+3 of each half at a time:
 *   forward    y1 = x1·c1 − x2·s1      y2 = x2·c2 + x1·s2
 *   transpose  y1 = x1·c1 + x2·s2      y2 = x2·c2 − x1·s1
 * (x1, c1, s1: the first half; x2, c2, s2: the second). Separate f32x4 multiplies and
 * adds, no FMA: each product and sum rounds to float32 as the op chain's Mul and Add do,
 * so the values are the chain's bit for bit. The JS loop of rope.ts ran at ~6 ns a float
 * (11 ms of a ~100 ms stories260K prefill at batch 256 × 17); this at ~0.5.
 */
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { op, wasmModule, WasmType, type Code, type WasmFunction } from "./wasm-encoder.js";
import { heapAddress, perMemory, type WasmBackendLike } from "./wasm-heap.js";

// params: X, COS, SIN, OUT (byte addresses), ROWS_PER_BATCH (n·T), T, BATCH, ROW (rd·4 bytes), COS_STRIDE (bytes between cos batches: T·rd·4 or 0)
const [X, COS, SIN, OUT, NT, T, BATCH, ROW, COS_STRIDE] = [0, 1, 2, 3, 4, 5, 6, 7, 8] as const;
// i32 locals
const [B, R, PC, CB, J, HALF, TT] = [9, 10, 11, 12, 13, 14, 15] as const;
// v128 locals
const [X1, X2] = [16, 17] as const;

/** The v128 at [base + offset local + extra bytes]. */
const at = (base: number, off: number, extra: number | null): Code => [...op.get(base), ...op.get(off), ...op.add, ...(extra === null ? [] : [...op.get(extra), ...op.add]), ...op.vLoad(0)];

function ropeFunction(name: string, transpose: boolean): WasmFunction {
  const cos1 = at(COS, PC, J);
  const cos2 = [...op.get(COS), ...op.get(PC), ...op.add, ...op.get(J), ...op.add, ...op.get(HALF), ...op.add, ...op.vLoad(0)];
  const sin1 = at(SIN, PC, J);
  const sin2 = [...op.get(SIN), ...op.get(PC), ...op.add, ...op.get(J), ...op.add, ...op.get(HALF), ...op.add, ...op.vLoad(0)];
  const outAt = (half: boolean): Code => [...op.get(OUT), ...op.get(J), ...op.add, ...(half ? [...op.get(HALF), ...op.add] : [])];
  const y1 = transpose
    ? [...op.get(X1), ...cos1, ...op.f4Mul, ...op.get(X2), ...sin2, ...op.f4Mul, ...op.f4Add]
    : [...op.get(X1), ...cos1, ...op.f4Mul, ...op.get(X2), ...sin1, ...op.f4Mul, ...op.f4Sub];
  const y2 = transpose
    ? [...op.get(X2), ...cos2, ...op.f4Mul, ...op.get(X1), ...sin1, ...op.f4Mul, ...op.f4Sub]
    : [...op.get(X2), ...cos2, ...op.f4Mul, ...op.get(X1), ...sin2, ...op.f4Mul, ...op.f4Add];
  const perVector = [
    ...op.get(X), ...op.get(J), ...op.add, ...op.vLoad(0), ...op.set(X1),
    ...op.get(X), ...op.get(J), ...op.add, ...op.get(HALF), ...op.add, ...op.vLoad(0), ...op.set(X2),
    ...outAt(false), ...y1, ...op.vStore(0),
    ...outAt(true), ...y2, ...op.vStore(0),
  ];
  const loop = (v: number, end: Code, step: number, body: Code, init: Code = op.i32(0)): Code => [
    ...init, ...op.set(v),
    ...op.block(op.loop([...op.get(v), ...end, ...op.geS, ...op.brIf(1), ...body, ...op.get(v), ...op.i32(step), ...op.add, ...op.set(v), ...op.br(0)])),
  ];
  const perRow = [
    ...loop(J, op.get(HALF), 16, perVector),
    ...op.get(X), ...op.get(ROW), ...op.add, ...op.set(X),
    ...op.get(OUT), ...op.get(ROW), ...op.add, ...op.set(OUT),
    // the cos/sin row follows t: back to the batch's first row after T rows
    ...op.get(TT), ...op.i32(1), ...op.add, ...op.set(TT),
    ...op.get(TT), ...op.get(T), ...op.eq,
    ...op.if([...op.i32(0), ...op.set(TT), ...op.get(CB), ...op.set(PC)], [...op.get(PC), ...op.get(ROW), ...op.add, ...op.set(PC)]),
  ];
  const perBatch = [
    ...op.get(B), ...op.get(COS_STRIDE), ...op.mul, ...op.set(CB),
    ...op.get(CB), ...op.set(PC), ...op.i32(0), ...op.set(TT),
    ...loop(R, op.get(NT), 1, perRow),
  ];
  return {
    name,
    params: new Array(9).fill(WasmType.i32),
    locals: [...new Array(7).fill(WasmType.i32), WasmType.v128, WasmType.v128],
    body: [...op.get(ROW), ...op.i32(1), ...op.shrS, ...op.set(HALF), ...loop(B, op.get(BATCH), 1, perBatch)],
  };
}

/** The module's bytes: forward and transpose(x, cos, sin, out, n·T, T, B, rd·4, cosStride). */
export function ropeModuleBytes(): Uint8Array {
  return wasmModule([ropeFunction("forward", false), ropeFunction("transpose", true)]);
}

type RopeFn = (x: number, cos: number, sin: number, out: number, nT: number, T: number, B: number, rowBytes: number, cosStride: number) => void;

const simdRope = perMemory(ropeModuleBytes, (e) => ({ forward: e.forward as RopeFn, transpose: e.transpose as RopeFn }));

/** RoPE of x (B, n, T, rd) with cos/sin (B or 1, 1, T, rd), or its transpose; rd/2 mod 4 = 0. */
export function wasmRope(b: WasmBackendLike, x: TensorInfo, cos: TensorInfo, sin: TensorInfo, transpose: boolean): TensorInfo {
  const [B, n, T, rd] = x.shape as [number, number, number, number];
  const out = b.makeOutput(x.shape, "float32"); // first: addresses are read after the last allocation
  const cosStride = cos.shape[0] === B && B > 1 ? T * rd * 4 : 0;
  const fn = simdRope(b.wasm.asm.memory)[transpose ? "transpose" : "forward"];
  fn(heapAddress(b, x), heapAddress(b, cos), heapAddress(b, sin), heapAddress(b, out), n * T, T, B, rd * 4, cosStride);
  return out;
}
