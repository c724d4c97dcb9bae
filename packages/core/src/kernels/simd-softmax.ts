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
 *
 * The forward makes three passes over a row: max (z → out), exp (z read back, e → out),
 * scale (e → probs). The exp dominates, and TurboFan compiles it as one dependent chain per
 * vector (two vectors' chains written interleaved come out one after the other), so what
 * paid was fewer instructions around it, with the same bits out (biased-softmax.test.ts
 * compares them with the module before). Forward ms per call, min of 30 runs, before and
 * after interleaved in one process (2-core AMD EPYC Zen 3; scores N(0, 3²), causal bias;
 * the biased-softmax op adds ~0.1 ms of output allocation and calls):
 *                                               before   after
 *   (256, 4, 32, 53), bias (256, 1, 16, 53)       3.35    2.79   (stories260K's batched check)
 *   (256, 4, 34, 17), bias (256, 1, 17, 17)       1.29    1.07
 * Step by step (rows of 53, of 17): z stored by the max pass instead of recomputed by the exp
 * pass −9%, −3%; i32x4.bitmask for the masked-vector test (V8 turns v128.any_true into a flag
 * it tests again) and that branch storing 0 itself (no v128 to merge) −2%, −3%; the last
 * vector kept out of `out` until the scale pass −0%, −1%; max and scale passes by pairs of
 * vectors −3%, −0%; the row loop tested at its end −6%, −11% (overRows). Tried and dropped:
 * the exp pass by pairs (+0%, +1%; interleaved under one masked-vector test per pair, +0%,
 * +16%); no masked-vector test (+5%, +20%); the constants made opaque to TurboFan, so kept and
 * spilled (+0%, +3%); VTAIL hoisted out of the row loop (+3%, +2%) or replaced by a pblendw
 * per S mod 4 (+1%, +2%); the pass loops tested at their end too (+6%, +5%: their bodies no
 * longer dominate the row loop's exit, so the constants are rebuilt per row).
 */
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { op, simdOp, wasmModule, WasmType, type Code, type WasmFunction } from "./wasm-encoder.js";
import { heapAddress, perMemory, type WasmBackendLike } from "./wasm-heap.js";

/** The opcodes this kernel needs beyond wasm-encoder's `op`. */
const simd = simdOp;
const v = {
  f4Ge: simd(0x46),
  /** i32x4.bitmask: lane sign bits → i32 (a mask of f4Ge is 0 iff all four lanes are false) */
  i4Bitmask: simd(0xa4),
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
const VTE = 24; // forward: e of that vector, from the exp pass to the scale pass
const KLOG2E = 25;
const KHI = 26;
const KLO = 27;
const KCUT = 28;
const KMAGIC = 29;
const KC = 30; // c1 … c5
const LOCALS = [...new Array(5).fill(WasmType.i32), ...new Array(3).fill(WasmType.f32), ...new Array(20).fill(WasmType.v128)];

/**
 * The v128 locals the exp code uses (simd-attend.ts shares it): working registers VD (in:
 * d; cleared below the cutoff), VM (in: d ≥ cutoff), VN, VR, VS; constants KLOG2E, KHI, KLO,
 * KCUT, KMAGIC and c1 … c5 at KC … KC + 4.
 */
export interface ExpLocals {
  VD: number;
  VM: number;
  VN: number;
  VR: number;
  VS: number;
  KLOG2E: number;
  KHI: number;
  KLO: number;
  KCUT: number;
  KMAGIC: number;
  KC: number;
}

const SOFTMAX_EXP_LOCALS: ExpLocals = { VD, VM, VN, VR, VS, KLOG2E, KHI, KLO, KCUT, KMAGIC, KC };

/** Set the exp's constant locals (once, at function entry). */
export function expConstantsCode(l: ExpLocals): Code {
  const consts: [number, Code][] = [
    [l.KLOG2E, op.f4Const(LOG2E)], [l.KHI, op.f4Const(MINUS_LN2_HI)], [l.KLO, op.f4Const(MINUS_LN2_LO)],
    [l.KCUT, op.f4Const(DENORM_CUTOFF)], [l.KMAGIC, op.f4Const(MAGIC)], ...C.map((c, k): [number, Code] => [l.KC + k, op.f4Const(c)]),
  ];
  return consts.flatMap(([local, value]) => [...value, ...op.set(local)]);
}

/** Set the constant locals, VSC and VTAIL (at function entry). */
function constants(): Code {
  return [
    ...expConstantsCode(SOFTMAX_EXP_LOCALS),
    ...op.get(SCALE), ...op.f4Splat, ...op.set(VSC),
    ...op.i4Lanes, ...op.i32(4), ...op.get(S), ...op.i32(3), ...op.and, ...op.sub, ...op.i4Splat, ...op.i4GeS, ...op.set(VTAIL),
  ];
}

/**
 * exp of VD, with VM = (VD ≥ cutoff) set, lanes below the cutoff 0: the v128 it pushes (locals
 * `l`). `fma`: every a·b + c as one f32x4.relaxed_madd (XNNPACK's rr2-p5 FMA variant, fewer
 * instructions, bits a little different; only where relaxed SIMD validates); else mul, add.
 */
export function expCode(l: ExpLocals, fma = false): Code {
  const { VD, VM, VN, VR, VS, KLOG2E, KMAGIC, KHI, KLO, KC } = l;
  const muladd = (a: Code, b: Code, c: Code): Code => (fma ? [...a, ...b, ...c, ...op.f4Madd] : [...a, ...b, ...op.f4Mul, ...c, ...op.f4Add]);
  let p = op.get(KC + 4);
  for (let k = 3; k >= 0; k--) {
    p = muladd(p, op.get(VR), op.get(KC + k)); // p·r + c_k
  }
  return [
    ...op.get(VD), ...op.get(VM), ...op.vAnd, ...op.set(VD), // d = 0 in the others: no denormal arithmetic (~100× slower), n ≥ −126
    ...op.get(VD), ...op.get(KLOG2E), ...op.f4Mul, ...op.get(KMAGIC), ...op.f4Add, ...op.tee(VN), // n + MAGIC
    ...op.i32(23), ...op.i4Shl, ...op.set(VS), // s = 2ⁿ: n + 127 shifted into the exponent, the rest shifted out
    ...op.get(VN), ...op.get(KMAGIC), ...op.f4Sub, ...op.set(VN), // n
    ...muladd(op.get(VN), op.get(KLO), muladd(op.get(VN), op.get(KHI), op.get(VD))), ...op.set(VR), // r = d − n·ln2
    ...muladd(p, [...op.get(VR), ...op.get(VS), ...op.f4Mul], op.get(VS)), // (r·s)·p + s
    ...op.get(VM), ...op.vAnd,
  ];
}

/** exp of VD, with VM = (VD ≥ cutoff) set, lanes below the cutoff 0: the v128 it pushes. */
function expBody(): Code {
  return expCode(SOFTMAX_EXP_LOCALS);
}

/**
 * VD ← the v128 on the stack, VM ← its lanes that stay above 0; then the i32 "any lane
 * does" (i32x4.bitmask), for the exp code's locals `l`.
 */
export function aboveCutoffCode(l: ExpLocals): Code {
  return [...op.tee(l.VD), ...op.get(l.KCUT), ...v.f4Ge, ...op.tee(l.VM), ...v.i4Bitmask];
}

/** VD ← the v128 on the stack, VM ← its lanes that stay above 0; then the i32 "any lane does" (bitmask: one movmskps, no setcc). */
const aboveCutoff = aboveCutoffCode(SOFTMAX_EXP_LOCALS);

/** exp of the v128 on the stack, lane by lane, in place of it. */
function exp4(): Code {
  return [...aboveCutoff, ...op.ifV128(expBody(), op.vZero)]; // all four masked (a causal row is half masked): 20–25% less time on prefill
}

/** exp of the v128 on the stack into VD, then `then`; `masked` instead when all four lanes are below the cutoff (no v128 to merge). */
function expThen(then: Code, masked: Code): Code {
  return [...aboveCutoff, ...op.if([...expBody(), ...op.set(VD), ...then], masked)];
}

/**
 * One pass over the row: `vec(o)` at each 16 bytes J + o < (S & ~3)·4 (by pairs, o = 0
 * and 16, if `pairs`), then the S mod 4 last columns: with `overlap` (at J = S·4 − 16, whose
 * first lanes are done already: VTAIL marks the new ones) when S ≥ 4 and it is given, else
 * `scalar` at each 4 bytes.
 */
function rowPass(vec: (o: number) => Code, overlap: Code | null, scalar: Code, pairs = false): Code {
  const loop = (ahead: number, body: Code, end: number, step: number): Code =>
    op.block(op.loop([...op.get(J), ...(ahead ? [...op.i32(ahead), ...op.add] : []), ...op.get(end), ...op.geS, ...op.brIf(1), ...body, ...op.get(J), ...op.i32(step), ...op.add, ...op.set(J), ...op.br(0)]));
  const scalarTail = [...op.get(VEND), ...op.set(J), ...loop(0, scalar, END, 4)];
  const tail = overlap ? [...op.get(S), ...op.i32(4), ...op.geS, ...op.if([...op.get(END), ...op.i32(16), ...op.sub, ...op.set(J), ...overlap], scalarTail)] : scalarTail;
  return [
    ...op.i32(0), ...op.set(J),
    ...(pairs ? loop(16, [...vec(0), ...vec(16)], VEND, 32) : []), // while J + 16 < VEND: J and J + 16 share an address
    ...loop(0, vec(0), VEND, 16),
    ...op.get(END), ...op.get(VEND), ...op.gtS, ...op.if(tail),
  ];
}

const at = (base: number): Code => [...op.get(base), ...op.get(J), ...op.add];
/** The v128 at base + J + o (o: the memarg's offset, folded into the address). */
const vAt = (base: number, o = 0): Code => [...at(base), ...op.vLoad(o)];
const sAt = (base: number): Code => [...at(base), ...op.f32Load(0)];
/** VACC reduced over its lanes with a lane-wise op, into all four lanes (two shuffles, no scalar code). */
const allLanes = (f: Code): Code => [
  ...op.get(VACC), ...op.get(VACC), ...op.get(VACC), ...v.f4Shuffle([2, 3, 0, 1]), ...f, ...op.tee(VACC),
  ...op.get(VACC), ...op.get(VACC), ...v.f4Shuffle([1, 0, 3, 2]), ...f,
];
/** VACC ← VACC ∘ (the v128 that `value` pushes). */
const accumulate = (value: Code, f: Code): Code => [...op.get(VACC), ...value, ...f, ...op.set(VACC)];

/**
 * One row of the forward: X (scores), PB (its bias row) → OUT. The max pass leaves z in OUT
 * for the exp pass. The row's overlapping last vector stays out of OUT until the scale pass
 * (its z recomputed from X and the bias, its e held in VTE): every load of OUT then reads
 * what one whole store wrote (a load across two stores cannot be forwarded from them), the
 * exp pass never finds an e where it reads z, and the scale pass needs no scalar columns.
 * Sums and maxima run in the same order as ever: vectors in column order, the last
 * vector's new lanes last.
 */
function forwardRow(): Code {
  const z = (o = 0): Code => [...vAt(X, o), ...op.get(VSC), ...op.f4Mul, ...vAt(PB, o), ...op.f4Add]; // x·scale + bias
  const zScalar = [...sAt(X), ...op.get(SCALE), ...op.fmul, ...sAt(PB), ...op.fadd];
  const minusMax = [...op.get(VK), ...op.f4Sub];
  return [
    // max z; z → out
    ...op.f4Const(-Infinity), ...op.set(VACC),
    ...rowPass(
      (o) => [...at(OUT), ...z(o), ...op.tee(VD), ...op.vStore(o), ...accumulate(op.get(VD), op.f4Pmax)],
      accumulate(z(), op.f4Pmax),
      [...at(OUT), ...zScalar, ...op.tee(INV), ...op.f32Store(0), ...accumulate([...op.get(INV), ...op.f4Splat], op.f4Pmax)],
      true,
    ),
    ...allLanes(op.f4Pmax), ...op.set(VK),
    // e = exp(z − max) → out; Σ e (lanes; E: rows narrower than 4). A masked vector adds nothing: Σ is never −0, so + 0 would change no bit
    ...op.vZero, ...op.set(VACC), ...op.f32(0), ...op.set(E),
    ...rowPass(
      (o) => [...vAt(OUT, o), ...minusMax, ...expThen([...at(OUT), ...op.get(VD), ...op.vStore(o), ...accumulate(op.get(VD), op.f4Add)], [...at(OUT), ...op.vZero, ...op.vStore(o)])],
      [...z(), ...minusMax, ...exp4(), ...op.tee(VTE), ...op.get(VTAIL), ...op.vAnd, ...op.set(VD), ...accumulate(op.get(VD), op.f4Add)],
      [...at(OUT), ...sAt(OUT), ...op.f4Splat, ...minusMax, ...exp4(), ...op.f4Lane(0), ...op.tee(INV), ...op.f32Store(0), ...op.get(E), ...op.get(INV), ...op.fadd, ...op.set(E)],
    ),
    // probs = e · (1 / Σ e)
    ...op.f32(1), ...op.f4Splat, ...allLanes(op.f4Add), ...op.get(E), ...op.f4Splat, ...op.f4Add, ...op.f4Div, ...op.tee(VK), ...op.f4Lane(0), ...op.set(INV),
    ...rowPass(
      (o) => [...at(OUT), ...vAt(OUT, o), ...op.get(VK), ...op.f4Mul, ...op.vStore(o)],
      [...at(OUT), ...op.get(VTE), ...op.get(VK), ...op.f4Mul, ...op.vStore(0)],
      [...at(OUT), ...sAt(OUT), ...op.get(INV), ...op.fmul, ...op.f32Store(0)],
      true,
    ),
  ];
}

/** One row of the backward: X (dy), BIAS (probs) → OUT = (dy·p − (Σ dy·p)·p)·scale. */
function backwardRow(): Code {
  const g = [...vAt(X), ...vAt(BIAS), ...op.f4Mul];
  const dx = [...at(OUT), ...vAt(BIAS), ...op.set(VD), ...vAt(X), ...op.get(VD), ...op.f4Mul, ...op.get(VK), ...op.get(VD), ...op.f4Mul, ...op.f4Sub, ...op.get(VSC), ...op.f4Mul, ...op.vStore(0)];
  return [
    ...op.vZero, ...op.set(VACC), ...op.f32(0), ...op.set(E),
    ...rowPass(() => accumulate(g, op.f4Add), accumulate([...g, ...op.get(VTAIL), ...op.vAnd], op.f4Add), [...op.get(E), ...sAt(X), ...sAt(BIAS), ...op.fmul, ...op.fadd, ...op.set(E)]),
    ...allLanes(op.f4Add), ...op.get(E), ...op.f4Splat, ...op.f4Add, ...op.tee(VK), ...op.f4Lane(0), ...op.set(ACC),
    ...rowPass(() => dx, dx, [...at(OUT), ...sAt(BIAS), ...op.set(E), ...sAt(X), ...op.get(E), ...op.fmul, ...op.get(ACC), ...op.get(E), ...op.fmul, ...op.fsub, ...op.get(SCALE), ...op.fmul, ...op.f32Store(0)]),
  ];
}

/**
 * A function over ROWS rows: `row` for each, then the addresses move on by a row. The loop
 * tests at its end (ROWS ≥ 1 checked once before it): TurboFan hoists a loop-invariant value
 * (the exp's ten v128 constants) out of a loop only from a block on every path to the
 * loop's exit, which the exp pass is not when the exit is a test at the top; else it builds
 * them again for every row (three instructions each).
 */
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
      ...op.get(ROWS), ...op.i32(0), ...op.gtS,
      ...op.if(
        op.loop([
          ...row,
          ...[X, OUT].flatMap((p) => [...op.get(p), ...op.get(END), ...op.add, ...op.set(p)]),
          ...nextRow,
          ...op.get(ROWS), ...op.i32(1), ...op.sub, ...op.tee(ROWS), ...op.brIf(0),
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
