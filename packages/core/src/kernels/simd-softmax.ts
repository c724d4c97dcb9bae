/**
 * The biased softmax of attention (biased-softmax.ts) and its gradient in WebAssembly SIMD,
 * in place in the tfjs wasm heap, row by row over the last axis (S keys), in float32:
 *   forward   z = x·scale + bias[t]   (each rounded, as tf.mul then tf.add round)
 *             m = max z;  e = exp(z − m);  probs = e · (1 / Σ e)
 *   backward  g = dy·p;  dx = (g − (Σ g)·p) · scale   (tfjs's Softmax gradient, then tf.mul's)
 * Sums run in four lanes, then across them (0 + 2, 1 + 3, then the two); exp is XNNPACK's
 * "rr2-p5": n = round(d·log2 e), r = d − n·ln2 in two parts, e = 2ⁿ·(1 + r·p(r)) with a
 * degree-5 minimax p: at most 1.8e-7 (1.5 ulp) from exp in float32. Below d = −87.34
 * (2⁻¹²⁶) it gives exactly 0, as XNNPACK does, so a masked score (bias −1e9) gets
 * probability 0, and a fully masked row still has e = 1 at its maximum: no 0/0.
 * The S mod 4 last columns of a row: one more vector ending at the row's end, its first
 * lanes recomputed and not counted twice (no scalar exp per column); rows narrower than 4
 * (a decode's first keys) go column by column through lane 0.
 * Per-row work is what limits rows of 17–64 keys, hence the shuffles for the lane
 * reductions, pmax, the constants held in locals and the skipped exp of masked vectors.
 */
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { op, simdOp, wasmModule, WasmType, type Code, type WasmFunction } from "./wasm-encoder.js";
import { heapAddress, perMemory, type WasmBackendLike } from "./wasm-heap.js";

/** The opcodes this kernel needs beyond wasm-encoder's `op`. */
const simd = simdOp;
const v = {
  f4Ge: simd(0x46),
  and: simd(0x4e),
  i4Splat: simd(0x11),
  i4GeS: simd(0x3f),
  anyTrue: simd(0x53),
  /** if … else … end with a v128 result */
  ifV128: (then: Code, otherwise: Code): Code => [0x04, WasmType.v128, ...then, 0x05, ...otherwise, 0x0b],
  /** i32x4 lanes 0, 1, 2, 3 */
  i4Lanes: [...simd(0x0c), ...new Uint8Array(new Int32Array([0, 1, 2, 3]).buffer)],
  /** i8x16.shuffle of a v128 with itself, by f32 lanes */
  f4Shuffle: (l: [number, number, number, number]): Code => [...simd(0x0d), ...l.flatMap((k) => [4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3])],
};

/** XNNPACK's f32 exp constants (src/f32-raddstoreexpminusmax, wasmsimd-rr2-p5). */
const LOG2E = 1.44269502; // 0x1.715476p+0
/** 1.5·2²³ + 127: z·log2e + MAGIC rounds to an integer n, with n + 127 in the low mantissa bits */
const MAGIC = 12583039; // 0x1.8000FEp23
const MINUS_LN2_HI = -0.693145751953125; // −0x1.62E400p−1
const MINUS_LN2_LO = -1.428606765330187e-6; // −0x1.7F7D1Cp−20
const C = [0.9999997019767761, 0.4999915063381195, 0.16667652130126953, 0.04189782217144966, 0.008289290592074394]; // c1 … c5
const DENORM_CUTOFF = -87.33654022216797; // −0x1.5D589Ep6: below it exp is flushed to 0

// params of both functions: X (scores; dy), BIAS (bias; probs), OUT (byte addresses),
// ROWS, T (bias rows; unused backward), S (row width), SCALE (f32)
const X = 0;
const BIAS = 1;
const OUT = 2;
const ROWS = 3;
const T = 4;
const S = 5;
const SCALE = 6;
// i32 locals
const TT = 7; // the row's query index t (its bias row), wraps at T
const J = 8; // byte offset in the row
const VEND = 9; // (S & ~3)·4
const END = 10; // S·4
const PB = 11; // bias row address
// f32 locals
const ACC = 12; // max, then Σ e (forward); Σ dy·p (backward)
const E = 13; // Σ of a scalar tail (rows narrower than 4)
const INV = 14;
// v128 locals: working registers, then constants (a v128.const in a loop costs V8 several instructions per use)
const VSC = 15;
const VACC = 16;
const VK = 17; // splat of max, of 1/Σ e (forward) or of Σ dy·p (backward)
const VD = 18;
const VM = 19;
const VN = 20;
const VR = 21;
const VS = 22;
const VTAIL = 23; // lanes of the row's last, overlapping vector not yet counted: l ≥ 4 − S mod 4
const KLOG2E = 24;
const KHI = 25;
const KLO = 26;
const KCUT = 27;
const KMAGIC = 28;
const KC = 29; // c1 … c5
const LOCALS = [...new Array(5).fill(WasmType.i32), ...new Array(3).fill(WasmType.f32), ...new Array(19).fill(WasmType.v128)];

/** Set the constant locals, VSC and VTAIL (at function entry). */
function constants(): Code {
  const consts: [number, Code][] = [
    [KLOG2E, op.f4Const(LOG2E)], [KHI, op.f4Const(MINUS_LN2_HI)], [KLO, op.f4Const(MINUS_LN2_LO)],
    [KCUT, op.f4Const(DENORM_CUTOFF)], [KMAGIC, op.f4Const(MAGIC)], ...C.map((c, k): [number, Code] => [KC + k, op.f4Const(c)]),
  ];
  return [
    ...consts.flatMap(([local, value]) => [...value, ...op.set(local)]),
    ...op.get(SCALE), ...op.f4Splat, ...op.set(VSC),
    ...v.i4Lanes, ...op.i32(4), ...op.get(S), ...op.i32(3), ...op.and, ...op.sub, ...v.i4Splat, ...v.i4GeS, ...op.set(VTAIL),
  ];
}

/** exp of the v128 on the stack, lane by lane, in place of it. */
function exp4(): Code {
  const muladd = (a: Code, b: Code, c: Code): Code => [...a, ...b, ...op.f4Mul, ...c, ...op.f4Add];
  let p = op.get(KC + 4);
  for (let k = 3; k >= 0; k--) {
    p = muladd(p, op.get(VR), op.get(KC + k)); // p·r + c_k
  }
  return [
    ...op.tee(VD), ...op.get(KCUT), ...v.f4Ge, ...op.tee(VM), // lanes that stay above 0
    ...v.anyTrue,
    ...v.ifV128([
      ...op.get(VD), ...op.get(VM), ...v.and, ...op.set(VD), // d = 0 in the others: no denormal arithmetic (~100× slower), n ≥ −126
      ...op.get(VD), ...op.get(KLOG2E), ...op.f4Mul, ...op.get(KMAGIC), ...op.f4Add, ...op.tee(VN), // n + MAGIC
      ...op.i32(23), ...op.i4Shl, ...op.set(VS), // s = 2ⁿ: n + 127 shifted into the exponent, the rest shifted out
      ...op.get(VN), ...op.get(KMAGIC), ...op.f4Sub, ...op.set(VN), // n
      ...muladd(op.get(VN), op.get(KLO), muladd(op.get(VN), op.get(KHI), op.get(VD))), ...op.set(VR), // r = d − n·ln2
      ...p, ...op.get(VR), ...op.get(VS), ...op.f4Mul, ...op.f4Mul, ...op.get(VS), ...op.f4Add, // (r·s)·p + s
      ...op.get(VM), ...v.and,
    ], op.vZero), // all four masked (a causal row is half masked): 20–25% less time on prefill
  ];
}

/**
 * One pass over the row: `vec` at each 16 bytes J < (S & ~3)·4, then the S mod 4 last
 * columns: with `overlap` (`vec` again at J = S·4 − 16, whose first lanes are done already:
 * VTAIL marks the new ones) when S ≥ 4 and it is given, else `scalar` at each 4 bytes.
 */
function rowPass(vec: Code, overlap: Code | null, scalar: Code): Code {
  const loop = (end: number, body: Code, step: number): Code =>
    op.block(op.loop([...op.get(J), ...op.get(end), ...op.geS, ...op.brIf(1), ...body, ...op.get(J), ...op.i32(step), ...op.add, ...op.set(J), ...op.br(0)]));
  const scalarTail = [...op.get(VEND), ...op.set(J), ...loop(END, scalar, 4)];
  const tail = overlap ? [...op.get(S), ...op.i32(4), ...op.geS, ...op.if([...op.get(END), ...op.i32(16), ...op.sub, ...op.set(J), ...overlap], scalarTail)] : scalarTail;
  return [...op.i32(0), ...op.set(J), ...loop(VEND, vec, 16), ...op.get(END), ...op.get(VEND), ...op.gtS, ...op.if(tail)];
}

const at = (base: number): Code => [...op.get(base), ...op.get(J), ...op.add];
const vAt = (base: number): Code => [...at(base), ...op.vLoad(0)];
const sAt = (base: number): Code => [...at(base), ...op.f32Load(0)];
/** VACC reduced over its lanes with a lane-wise op, into all four lanes (two shuffles, no scalar code). */
const allLanes = (f: Code): Code => [
  ...op.get(VACC), ...op.get(VACC), ...op.get(VACC), ...v.f4Shuffle([2, 3, 0, 1]), ...f, ...op.tee(VACC),
  ...op.get(VACC), ...op.get(VACC), ...v.f4Shuffle([1, 0, 3, 2]), ...f,
];
/** VACC ← VACC ∘ (the v128 that `value` pushes). */
const accumulate = (value: Code, f: Code): Code => [...op.get(VACC), ...value, ...f, ...op.set(VACC)];

/** One row of the forward: X (scores), PB (its bias row) → OUT. */
function forwardRow(): Code {
  const z = [...vAt(X), ...op.get(VSC), ...op.f4Mul, ...vAt(PB), ...op.f4Add]; // x·scale + bias
  const zScalar = [...sAt(X), ...op.get(SCALE), ...op.fmul, ...sAt(PB), ...op.fadd];
  const e = [...z, ...op.get(VK), ...op.f4Sub, ...exp4()];
  return [
    // max z (a pass of its own: the overlapping last vector may then be read twice)
    ...op.f4Const(-Infinity), ...op.set(VACC),
    ...rowPass(accumulate(z, op.f4Pmax), accumulate(z, op.f4Pmax), accumulate([...zScalar, ...op.f4Splat], op.f4Pmax)),
    ...allLanes(op.f4Pmax), ...op.set(VK),
    // e = exp(z − max) → out; Σ e (lanes; E: rows narrower than 4)
    ...op.vZero, ...op.set(VACC), ...op.f32(0), ...op.set(E),
    ...rowPass(
      [...at(OUT), ...e, ...op.tee(VD), ...op.vStore(0), ...accumulate(op.get(VD), op.f4Add)],
      [...at(OUT), ...e, ...op.tee(VD), ...op.vStore(0), ...accumulate([...op.get(VD), ...op.get(VTAIL), ...v.and], op.f4Add)],
      [...at(OUT), ...zScalar, ...op.f4Splat, ...op.get(VK), ...op.f4Sub, ...exp4(), ...op.f4Lane(0), ...op.tee(INV), ...op.f32Store(0), ...op.get(E), ...op.get(INV), ...op.fadd, ...op.set(E)],
    ),
    // probs = e · (1 / Σ e)
    ...op.f32(1), ...op.f4Splat, ...allLanes(op.f4Add), ...op.get(E), ...op.f4Splat, ...op.f4Add, ...op.f4Div, ...op.tee(VK), ...op.f4Lane(0), ...op.set(INV),
    ...rowPass([...at(OUT), ...vAt(OUT), ...op.get(VK), ...op.f4Mul, ...op.vStore(0)], null, [...at(OUT), ...sAt(OUT), ...op.get(INV), ...op.fmul, ...op.f32Store(0)]),
  ];
}

/** One row of the backward: X (dy), BIAS (probs) → OUT = (dy·p − (Σ dy·p)·p)·scale. */
function backwardRow(): Code {
  const g = [...vAt(X), ...vAt(BIAS), ...op.f4Mul];
  const dx = [...at(OUT), ...vAt(BIAS), ...op.set(VD), ...vAt(X), ...op.get(VD), ...op.f4Mul, ...op.get(VK), ...op.get(VD), ...op.f4Mul, ...op.f4Sub, ...op.get(VSC), ...op.f4Mul, ...op.vStore(0)];
  return [
    ...op.vZero, ...op.set(VACC), ...op.f32(0), ...op.set(E),
    ...rowPass(accumulate(g, op.f4Add), accumulate([...g, ...op.get(VTAIL), ...v.and], op.f4Add), [...op.get(E), ...sAt(X), ...sAt(BIAS), ...op.fmul, ...op.fadd, ...op.set(E)]),
    ...allLanes(op.f4Add), ...op.get(E), ...op.f4Splat, ...op.f4Add, ...op.tee(VK), ...op.f4Lane(0), ...op.set(ACC),
    ...rowPass(dx, dx, [...at(OUT), ...sAt(BIAS), ...op.set(E), ...sAt(X), ...op.get(E), ...op.fmul, ...op.get(ACC), ...op.get(E), ...op.fmul, ...op.fsub, ...op.get(SCALE), ...op.fmul, ...op.f32Store(0)]),
  ];
}

/** A function over ROWS rows: `row` for each, then the addresses move on by a row. */
function overRows(name: string, row: Code, nextRow: Code): WasmFunction {
  return {
    name,
    params: [...new Array(6).fill(WasmType.i32), WasmType.f32],
    locals: LOCALS,
    body: [
      ...constants(),
      ...op.get(S), ...op.i32(4), ...op.mul, ...op.set(END),
      ...op.get(S), ...op.i32(-4), ...op.and, ...op.i32(4), ...op.mul, ...op.set(VEND),
      ...op.i32(0), ...op.set(TT), ...op.get(BIAS), ...op.set(PB),
      ...op.block(
        op.loop([
          ...op.get(ROWS), ...op.eqz, ...op.brIf(1),
          ...row,
          ...[X, OUT].flatMap((p) => [...op.get(p), ...op.get(END), ...op.add, ...op.set(p)]),
          ...nextRow,
          ...op.get(ROWS), ...op.i32(1), ...op.sub, ...op.set(ROWS),
          ...op.br(0),
        ]),
      ),
    ],
  };
}

/** The module's bytes: forward(scores, bias, out, rows, T, S, scale) and backward(dy, probs, out, rows, 0, S, scale). */
export function softmaxModuleBytes(): Uint8Array {
  const nextBiasRow = [
    ...op.get(TT), ...op.i32(1), ...op.add, ...op.tee(TT), ...op.get(T), ...op.eq,
    ...op.if([...op.i32(0), ...op.set(TT)]),
    ...op.get(BIAS), ...op.get(TT), ...op.get(END), ...op.mul, ...op.add, ...op.set(PB),
  ];
  const nextProbsRow = [...op.get(BIAS), ...op.get(END), ...op.add, ...op.set(BIAS)];
  return wasmModule([overRows("forward", forwardRow(), nextBiasRow), overRows("backward", backwardRow(), nextProbsRow)]);
}

/** forward / backward: byte addresses, counts, the f32 scale. */
type RowsFn = (x: number, bias: number, out: number, rows: number, T: number, S: number, scale: number) => void;

/** The two functions bound to a heap (one instance per WebAssembly.Memory). */
const simdSoftmax = perMemory(softmaxModuleBytes, (e) => ({ forward: e.forward as RowsFn, backward: e.backward as RowsFn }));

/**
 * probs (B, H, R, S) = softmax(scores · scale + bias) over S, bias (B or 1, 1, T, S) read at
 * row t = r mod T of each (b, h) block (R = nrep·T: attention's grouped query heads).
 */
export function wasmBiasedSoftmax(b: WasmBackendLike, scores: TensorInfo, bias: TensorInfo, scale: number): TensorInfo {
  const [B, H, R, S] = scores.shape as [number, number, number, number];
  const [Bb, , T] = bias.shape as [number, number, number, number];
  const out = b.makeOutput(scores.shape, "float32"); // first: addresses are read after the last allocation
  const { forward } = simdSoftmax(b.wasm.asm.memory);
  const [xA, biasA, outA] = [heapAddress(b, scores), heapAddress(b, bias), heapAddress(b, out)];
  if (Bb === 1) {
    forward(xA, biasA, outA, B * H * R, T, S, scale);
  } else {
    const block = H * R * S * 4; // bytes of one batch row
    for (let i = 0; i < B; i++) {
      forward(xA + i * block, biasA + i * T * S * 4, outA + i * block, H * R, T, S, scale);
    }
  }
  return out;
}

/** d scores = (dy·p − (Σ dy·p)·p) · scale over the last axis. */
export function wasmBiasedSoftmaxGrad(b: WasmBackendLike, dy: TensorInfo, probs: TensorInfo, scale: number): TensorInfo {
  const S = probs.shape[probs.shape.length - 1] ?? 1;
  const rows = S === 0 ? 0 : probs.shape.reduce((a, c) => a * c, 1) / S;
  const out = b.makeOutput(probs.shape, "float32");
  simdSoftmax(b.wasm.asm.memory).backward(heapAddress(b, dy), heapAddress(b, probs), heapAddress(b, out), rows, 1, S, scale);
  return out;
}
