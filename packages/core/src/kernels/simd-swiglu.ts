/**
 * SwiGLU (swiglu.ts) and its gradient in WebAssembly SIMD, in place in the tfjs wasm heap, in
 * float32, over ROWS rows of I values (I mod 4 = 0). The gate and up rows (and their
 * gradients) lie STRIDE bytes apart: I·4 for two tensors, 2I·4 for gate_up's halves of one
 * (Phi-3's fused projection, read without a split); y and dy rows are I·4 apart.
 *   forward   σ = sigmoid(g);  y = (g·σ)·u                     (tf.mul(silu(g), u)'s rounding)
 *   backward  du = dy·(g·σ);   dg = (dy·u)·σ·(1 + g·(1 − σ))
 * sigmoid(g) = 1 / (1 + e), e = exp(d), d = −g clamped to ±87.34 (2^±126): e stays a normal
 * float (a denormal is ~100× slower arithmetic) and finite; σ(g) for g < −87 is then 1.6e-38
 * instead of less, and silu(g) moves by less than 1e-35. (XNNPACK's form, e = exp(−|g|) and
 * f or 1 − f by g's sign, needs a select: ~10% slower here.) exp is XNNPACK's "rr2-p5" (as
 * simd-softmax.ts): n = round(d·log2 e), r = d − n·ln2 in two parts, e = 2ⁿ·(1 + r·p(r)), at
 * most 1.5 ulp from exp. Its seven multiply-adds are fused (relaxed SIMD's f32x4.relaxed_madd,
 * where simd-gemm.ts's fmaAvailable() finds it): ~20% less time forward, ~15% backward
 * ((4352, 172): 1.2 → 0.93 ms and 1.43 → 1.21 ms, the kernel alone); a rounding less.
 * With FMA, the native addon's swiglu / swigluGrad (native.ts: AVX2, 8 lanes) run instead
 * where it loads, with the same bits.
 */
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { op, wasmModule, WasmType, type Code, type WasmFunction, type WasmValueType } from "./wasm-encoder.js";
import { fmaAvailable } from "./simd-gemm.js";
import { nativeKernels } from "./native.js";
import { heapAddress, heapF32, perMemory, type WasmBackendLike } from "./wasm-heap.js";


/** XNNPACK's f32 exp constants (as simd-softmax.ts). */
const LOG2E = 1.44269502;
const MAGIC = 12583039; // 1.5·2²³ + 127: d·log2e + MAGIC rounds to n, with n + 127 in the low mantissa bits
const MINUS_LN2_HI = -0.693145751953125;
const MINUS_LN2_LO = -1.428606765330187e-6;
const C = [0.9999997019767761, 0.4999915063381195, 0.16667652130126953, 0.04189782217144966, 0.008289290592074394];
const CUTOFF = -87.33654022216797;

// Locals after the params (numbered from `base`): J, END (i32), the constants in v128 (a
// v128.const in a loop costs V8 several instructions per use), then UNROLL working sets of
// six v128 (G, SIG, D, N, R, E).
const L = { J: 0, END: 1, LOG2E: 2, HI: 3, LO: 4, CUTLO: 5, CUTHI: 6, MAGIC: 7, ONE: 8, C: 9, WORK: 14 } as const;
/** Vectors per loop iteration: their independent chains overlap (~5% faster than one at a time, 4 no better). */
const UNROLL = 2;
const localTypes = (unroll: number): WasmValueType[] => [WasmType.i32, WasmType.i32, ...new Array<WasmValueType>(L.WORK - 2 + 6 * unroll).fill(WasmType.v128)];

/** The locals of working set k (absolute indices). */
function work(base: number, k: number): { G: number; SIG: number; D: number; N: number; R: number; E: number } {
  const w = base + L.WORK + 6 * k;
  return { G: w, SIG: w + 1, D: w + 2, N: w + 3, R: w + 4, E: w + 5 };
}

/** Set the constant locals. */
function constants(base: number): Code {
  const consts: [number, number][] = [
    [L.LOG2E, LOG2E], [L.HI, MINUS_LN2_HI], [L.LO, MINUS_LN2_LO], [L.CUTLO, CUTOFF], [L.CUTHI, -CUTOFF], [L.MAGIC, MAGIC], [L.ONE, 1],
    ...C.map((c, k): [number, number] => [L.C + k, c]),
  ];
  return consts.flatMap(([local, value]) => [...op.f4Const(value), ...op.set(base + local)]);
}

/** σ(g) = 1 / (1 + exp(−g)) into w.SIG (w.G set by the caller); a·b + c fused with `fma`. */
function sigmoid(base: number, w: ReturnType<typeof work>, fma: boolean): Code {
  const k = (c: number): Code => op.get(base + c);
  const get = op.get;
  const muladd = (a: Code, b: Code, c: Code): Code => (fma ? [...a, ...b, ...c, ...op.f4Madd] : [...a, ...b, ...op.f4Mul, ...c, ...op.f4Add]);
  let p = k(L.C + 4);
  for (let i = 3; i >= 0; i--) {
    p = muladd(p, get(w.R), k(L.C + i)); // p·r + c_i
  }
  return [
    ...get(w.G), ...op.f4Neg, ...k(L.CUTLO), ...op.f4Pmax, ...k(L.CUTHI), ...op.f4Pmin, ...op.set(w.D), // d = −g within ±87.34
    ...get(w.D), ...k(L.LOG2E), ...op.f4Mul, ...k(L.MAGIC), ...op.f4Add, ...op.tee(w.N),
    ...op.i32(23), ...op.i4Shl, ...op.set(w.E), // s = 2ⁿ (in E for now), n in [−126, 126]
    ...get(w.N), ...k(L.MAGIC), ...op.f4Sub, ...op.set(w.N),
    ...muladd(get(w.N), k(L.LO), muladd(get(w.N), k(L.HI), get(w.D))), ...op.set(w.R), // r = d − n·ln2
    ...k(L.ONE), ...p, ...get(w.R), ...get(w.E), ...op.f4Mul, ...op.f4Mul, ...get(w.E), ...op.f4Add, // e = (r·s)·p + s
    ...k(L.ONE), ...op.f4Add, ...op.f4Div, ...op.set(w.SIG), // 1 / (1 + e)
  ];
}

/** The code of one vector at byte offset J + off, in working set k. */
type Body = (k: number, off: number) => Code;

/**
 * A function over ROWS rows of I: `body` at each byte offset J of a row, UNROLL vectors per
 * iteration, then one at a time; `advance` pointers move on by STRIDE a row, `dense` ones by I·4.
 */
function overRows(name: string, nParams: number, ROWS: number, I: number, STRIDE: number, body: Body, advance: number[], dense: number[], unroll: number): WasmFunction {
  const J = nParams + L.J;
  const END = nParams + L.END;
  const move = (ps: number[], by: number): Code => ps.flatMap((p) => [...op.get(p), ...op.get(by), ...op.add, ...op.set(p)]);
  const loop = (step: number, code: Code): Code =>
    op.block(op.loop([...op.get(J), ...op.i32(step - 16), ...op.add, ...op.get(END), ...op.geS, ...op.brIf(1), ...code, ...op.get(J), ...op.i32(step), ...op.add, ...op.set(J), ...op.br(0)]));
  return {
    name,
    params: new Array<WasmValueType>(nParams).fill(WasmType.i32),
    locals: localTypes(unroll),
    body: [
      ...constants(nParams),
      ...op.get(I), ...op.i32(4), ...op.mul, ...op.set(END),
      ...op.block(
        op.loop([
          ...op.get(ROWS), ...op.eqz, ...op.brIf(1),
          ...op.i32(0), ...op.set(J),
          ...loop(16 * unroll, Array.from({ length: unroll }, (_, k) => body(k, 16 * k)).flat()),
          ...loop(16, body(0, 0)),
          ...move(advance, STRIDE),
          ...move(dense, END),
          ...op.get(ROWS), ...op.i32(1), ...op.sub, ...op.set(ROWS),
          ...op.br(0),
        ]),
      ),
    ],
  };
}

function forward(unroll: number, fma: boolean): WasmFunction {
  const [G, U, OUT, ROWS, I, STRIDE] = [0, 1, 2, 3, 4, 5];
  const base = 6;
  const at = (p: number): Code => [...op.get(p), ...op.get(base + L.J), ...op.add];
  const body: Body = (k, off) => {
    const w = work(base, k);
    return [
      ...at(G), ...op.vLoad(off), ...op.set(w.G),
      ...sigmoid(base, w, fma),
      ...at(OUT), ...op.get(w.G), ...op.get(w.SIG), ...op.f4Mul, ...at(U), ...op.vLoad(off), ...op.f4Mul, ...op.vStore(off),
    ];
  };
  return overRows("forward", 6, ROWS, I, STRIDE, body, [G, U], [OUT], unroll);
}

function backward(unroll: number, fma: boolean): WasmFunction {
  const [DY, G, U, DG, DU, ROWS, I, STRIDE] = [0, 1, 2, 3, 4, 5, 6, 7];
  const base = 8;
  const at = (p: number): Code => [...op.get(p), ...op.get(base + L.J), ...op.add];
  const one = op.get(base + L.ONE);
  const body: Body = (k, off) => {
    const w = work(base, k);
    const get = op.get;
    return [
      ...at(G), ...op.vLoad(off), ...op.set(w.G),
      ...sigmoid(base, w, fma),
      ...at(DY), ...op.vLoad(off), ...op.set(w.N), // dy (N is free again)
      ...at(DU), ...get(w.N), ...get(w.G), ...get(w.SIG), ...op.f4Mul, ...op.f4Mul, ...op.vStore(off),
      // dg = (dy·u)·σ·(1 + g·(1 − σ))
      ...at(DG), ...get(w.N), ...at(U), ...op.vLoad(off), ...op.f4Mul, ...get(w.SIG), ...op.f4Mul,
      ...one, ...get(w.G), ...one, ...get(w.SIG), ...op.f4Sub, ...op.f4Mul, ...op.f4Add, ...op.f4Mul, ...op.vStore(off),
    ];
  };
  return overRows("backward", 8, ROWS, I, STRIDE, body, [G, U, DG, DU], [DY], unroll);
}

/** forward(g, u, out, rows, I, stride) and backward(dy, g, u, dg, du, rows, I, stride): byte addresses and strides. */
export function swigluModuleBytes(unroll = UNROLL, fma = false): Uint8Array {
  return wasmModule([forward(unroll, fma), backward(unroll, fma)]);
}

type ForwardFn = (g: number, u: number, out: number, rows: number, I: number, stride: number) => void;
type BackwardFn = (dy: number, g: number, u: number, dg: number, du: number, rows: number, I: number, stride: number) => void;

/** The two functions bound to a heap (one instance per WebAssembly.Memory). */
const simdSwiglu = perMemory(() => swigluModuleBytes(UNROLL, fmaAvailable()), (e) => ({ forward: e.forward as ForwardFn, backward: e.backward as BackwardFn }));

/**
 * silu(g)·u: `gate` and `up` two tensors of one shape (up ≠ null), or `up` null and `gate`
 * gate_up (…, 2I) whose halves are g and u. I (of the output's last axis) mod 4 = 0.
 */
export function wasmSwiglu(b: WasmBackendLike, gate: TensorInfo, up: TensorInfo | null, outShape: number[], useNative = true): TensorInfo {
  const I = outShape[outShape.length - 1] as number;
  const rows = outShape.reduce((a, c) => a * c, 1) / I;
  const out = b.makeOutput(outShape, "float32"); // first: addresses are read after the last allocation
  const g = heapAddress(b, gate);
  const [u, stride] = up ? [heapAddress(b, up), I * 4] : [g + I * 4, I * 8];
  const native = useNative ? nativeKernels()?.swiglu : undefined;
  if (native) {
    native(heapF32(b), g, u, heapAddress(b, out), rows, I, stride);
  } else {
    simdSwiglu(b.wasm.asm.memory).forward(g, u, heapAddress(b, out), rows, I, stride);
  }
  return out;
}

/** [dg, du] (two tensors) or [d gate_up] (up null), as wasmSwiglu lays them out. */
export function wasmSwigluGrad(b: WasmBackendLike, dy: TensorInfo, gate: TensorInfo, up: TensorInfo | null, useNative = true): TensorInfo[] {
  const I = dy.shape[dy.shape.length - 1] as number;
  const rows = dy.shape.reduce((a, c) => a * c, 1) / I;
  const outs = up ? [b.makeOutput(gate.shape, "float32"), b.makeOutput(up.shape, "float32")] : [b.makeOutput(gate.shape, "float32")];
  const g = heapAddress(b, gate);
  const dg = heapAddress(b, outs[0] as TensorInfo);
  const [u, du, stride] = up ? [heapAddress(b, up), heapAddress(b, outs[1] as TensorInfo), I * 4] : [g + I * 4, dg + I * 4, I * 8];
  const native = useNative ? nativeKernels()?.swigluGrad : undefined;
  if (native) {
    native(heapF32(b), heapAddress(b, dy), g, u, dg, du, rows, I, stride);
  } else {
    simdSwiglu(b.wasm.asm.memory).backward(heapAddress(b, dy), g, u, dg, du, rows, I, stride);
  }
  return outs;
}
