/**
 * Fused attention forward (attend.ts) in WebAssembly SIMD, in place in the tfjs wasm heap, for
 * inference (no gradient). One call per (batch b, kv head g) serves the R = nrep·T query rows
 * of the group's nrep query heads (transformers' repeat_kv grouping: query head h uses kv head
 * ⌊h / nrep⌋); one module per head size hs (mod 4 = 0), so every offset inside a row of q, k,
 * v or y is a constant in the code; S ≥ 4. Per query row r (head g·nrep + ⌊r / T⌋, t = r mod T):
 *   scores, 4 keys a block: z = (q·k)·scale + bias[t] (rounded as tf.mul, tf.add round) → a
 *     scratch row Z of ⌈S/4⌉·4 floats, running max (pmax). When S mod 4 ≠ 0 the last block
 *     is keys S−4 … S−1, overlapping the one before (no scalar columns). Two ways to the dot
 *     products, picked per call (isDirect):
 *     - Kt (hs ≤ 8 and R > 8): K's (S, hs) block transposed once per group into blocks of
 *       (hs, 4) (4×4 shuffles); a block's scores are Σ_d splat(q[d])·Kt[d], q's hs splats held
 *       in locals for the whole row, one sum in index order (as the chain's GEMM adds).
 *     - direct (hs > 8 or R ≤ 8: decode): no transpose; four sums of nv = hs/4 products
 *       q[4i…]·k_l[4i…], one per key l, added across lanes by a 4×4 shuffle transpose.
 *   e = exp(z − max) in place in Z with simd-softmax.ts's exp (the rr2-p5 code, its constants
 *     in locals, its skip of all-masked vectors; relaxed_madd for its a·b + c when the GEMM uses
 *     FMA), Σ e in lanes; the overlapping last block counts only its new lanes (VTAIL) and is
 *     merged into Z by bitselect, so Z holds e[0 … S−1] in key order. LO … HI: the keys from
 *     the first to the last block with an e > 0 (left padding, causal tail skipped below).
 *   y[d … d+4w) = (Σ_{s in LO…HI} e[s]·V[s][d …]) · (1/Σ e), w ≤ 4 vectors of hs at a time,
 *     U keys a step into U·w separate sums (U = 4 for w ≤ 2, else 2: one sum over the keys is
 *     bound by the madd's latency), written straight into y (B, T, nh·hs) at
 *     ((b·T + t)·nh + h)·hs: no probabilities, no head merge transpose.
 * Products use f32x4.relaxed_madd when simd-gemm's fmaAvailable() says so, else a multiply
 * then an add. Against the chain: probabilities are not rounded before ·v, 1/Σ e multiplies
 * the sum, hs > 8 sums the scores in 4 (or 2) interleaved parts, and the exp with FMA rounds
 * differently: at most 5e-6 relative (attend.test.ts, 162 shapes; 1e-6 with one sum).
 *
 * Measured: min ms of 30, the op chain (attendChain: matMul, biasedSoftmax, matMul,
 * transpose) and attend interleaved, three runs in one process (2-core AMD EPYC Zen 3 shared
 * with other jobs, OML_GEMM_THREADS=0, FMA; bias per batch row, causal over the last T keys):
 *                                              run 1          run 2          run 3
 *                                              chain  fused   chain  fused   chain  fused
 *   B 256, nh 8, nkv 4, T 16, S 53, hs 8        7.10   5.38    6.93   5.42    6.33   4.87   (×1.3)
 *   B 256, nh 8, nkv 4, T 17, S 17, hs 8        4.70   2.97    2.66   2.12    2.63   2.12   (×1.25)
 *   B 64, nh 8, nkv 4, T 1, S 200, hs 64       13.22   4.19   10.70   3.93   10.94   3.93   (×2.8)
 * Where the time goes on the first (parts left out in turn): scores ~1.5 ms, exp ~2.0, ·v
 * ~1.4; the exp alone is most of biasedSoftmax's 2.8 ms in the chain, so ×1.3 is near what
 * this design can give there. Larger heads (15 runs each, S = T + 32, B·T = 512, causal):
 *   nrep·T →          2       8       16      32      128
 *   hs 16           ×3.6    ×1.8    ×1.3    ×1.1    ×0.94
 *   hs 32           ×3.0    ×1.2    ×0.89   ×0.77   ×0.56
 *   hs 64           ×3.0    ×1.2    ×0.85   ×0.66   ×0.47
 * The kernel reads each key's and value's row once per query row (one load per madd), where
 * the GEMM's 4×8 register blocks load a quarter as much, so attend() (kernelPays) takes the
 * chain for large heads with many rows per kv head. Kt against direct for hs 8, R 32 and 34
 * (the first two shapes): Kt 2–3% ahead; direct wins decode (hs 64, R 2: 3.4–3.8 ms against
 * 4.6 with Kt, whose transpose is then ~20% of the call).
 * Tried and dropped: e and ·v in one pass per block (no Z store and reload of e; its 4 lanes
 * shuffled into splats): 5.8 ms against 5.3 at T 16 × S 53 (the exp's ten constants, the
 * accumulators and the exp's registers no longer fit: spills); the score and exp loops tested
 * at their end: no change within the noise; the scores in two interleaved sums for hs 8:
 * 5.9 against 5.3.
 */
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { fmaAvailable } from "./simd-gemm.js";
import { aboveCutoffCode, expCode, expConstantsCode, type ExpLocals } from "./simd-softmax.js";
import { op, simdOp, wasmModule, WasmType, type Code } from "./wasm-encoder.js";
import { nativeKernels } from "./native.js";
import { heapAddress, heapF32, heapMalloc, perMemory, type WasmBackendLike, type WasmMemory } from "./wasm-heap.js";

/** The native attend8 (native.ts: AVX2, the same bits) takes rows of at most this many keys. */
const NATIVE_MAX_KEYS = 2048;

const simd = simdOp;
const v = {
  bitselect: simd(0x52),
  /** i8x16.shuffle of two v128s by f32 lanes (0–3: the first, 4–7: the second) */
  shuffle: (l: number[]): Code => [...simd(0x0d), ...l.flatMap((k) => [4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3])],
  select: [0x1b],
};

// params: byte addresses Q (the group's first query row), K, V (the group's blocks), BIAS (row 0 of
// the batch's bias), OUT (y at t = 0, head g·nrep), KT, Z (scratch); ROWS = nrep·T, T, S,
// OSTRIDE (bytes between y's rows t: nh·hs·4); SCALE (f32). hs is the module's constant.
const [Q, K, V, BIAS, OUT, KT, Z, ROWS, T, S, OSTRIDE, SCALE] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] as const;
const NUM_PARAMS = 12;
// i32 locals
const [SB, FB4, ZEND, J, PK, PQ, PB, PO, PH, TT, PV, SRC, DST, LO, HI] = Array.from({ length: 15 }, (_, i) => NUM_PARAMS + i) as number[] as [number, number, number, number, number, number, number, number, number, number, number, number, number, number, number];
const NUM_I32 = 15;
// v128 locals
const V0 = NUM_PARAMS + NUM_I32;
const [ACC, VSC, VTAIL, VK, VSUM, VE] = [V0, V0 + 1, V0 + 2, V0 + 3, V0 + 4, V0 + 5];
const EXP: ExpLocals = { VD: V0 + 6, VM: V0 + 7, VN: V0 + 8, VR: V0 + 9, VS: V0 + 10, KLOG2E: V0 + 11, KHI: V0 + 12, KLO: V0 + 13, KCUT: V0 + 14, KMAGIC: V0 + 15, KC: V0 + 16 }; // KC … KC + 4
const A = V0 + 21; // A … A + 7: ·v accumulators (U·w ≤ 8); the transpose's rows and pairs; q's splats (hs ≤ 8) or vectors (direct, nv ≤ 4) and the direct sums
const NUM_V128 = 21 + 8;

/** while (get(counter) < end) { body; counter += step } */
const whileLt = (counter: number, end: Code, body: Code, step: number): Code =>
  op.block(op.loop([...op.get(counter), ...end, ...op.geS, ...op.brIf(1), ...body, ...op.get(counter), ...op.i32(step), ...op.add, ...op.set(counter), ...op.br(0)]));
const addTo = (local: number, amount: Code): Code => [...op.get(local), ...amount, ...op.add, ...op.set(local)];
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Head sizes up to which q's hs splats stay in locals for a whole row (Kt scores; more would spill). */
const Q_IN_LOCALS_MAX_HS = 8;
const DIRECT_MAX_ROWS = 8;
/** Scores without Kt: for hs > 8 (q's splats would not stay in locals) or few rows per group. */
const isDirect = (hs: number, rows: number): boolean => hs > 8 || rows <= DIRECT_MAX_ROWS;

/**
 * The module's bytes for head size hs (mod 4 = 0; every offset within a row is a constant):
 * group(q, k, v, bias, out, kt, z, rows, T, S, oStride, scale).
 */
export function attendModuleBytes(fma: boolean, hs: number, direct: boolean): Uint8Array {
  const hsB = hs * 4;
  const nv = hs / 4; // vectors per row of q, k, v, y
  /** a·b + c of the v128s the three codes push */
  const madd = (a: Code, b: Code, c: Code): Code => (fma ? [...a, ...b, ...c, ...op.f4Madd] : [...c, ...a, ...b, ...op.f4Mul, ...op.f4Add]);
  const allLanes = (acc: number, f: Code): Code => [
    ...op.get(acc), ...op.get(acc), ...op.get(acc), ...v.shuffle([2, 3, 0, 1]), ...f, ...op.tee(acc),
    ...op.get(acc), ...op.get(acc), ...v.shuffle([1, 0, 3, 2]), ...f,
  ];
  const init = [
    ...op.get(S), ...op.i32(4), ...op.mul, ...op.set(SB),
    ...op.get(S), ...op.i32(-4), ...op.and, ...op.i32(4), ...op.mul, ...op.set(FB4),
    ...op.get(S), ...op.i32(3), ...op.add, ...op.i32(-4), ...op.and, ...op.i32(4), ...op.mul, ...op.set(ZEND),
    ...expConstantsCode(EXP),
    ...op.get(SCALE), ...op.f4Splat, ...op.set(VSC),
    ...op.i4Lanes, ...op.i32(4), ...op.get(S), ...op.i32(3), ...op.and, ...op.sub, ...op.i4Splat, ...op.i4GeS, ...op.set(VTAIL),
  ];
  // 1. Kt: block J/16 (hs·16 bytes at KT + J·hs) from key J/4, or S − 4 for the overlapping last block
  const transposeVector = (d: number): Code => [
    ...range(4).flatMap((l) => [...op.get(SRC), ...op.vLoad(l * hsB + 16 * d), ...op.set(A + l)]),
    ...[[4, 0, 1, [0, 4, 1, 5]], [5, 2, 3, [0, 4, 1, 5]], [6, 0, 1, [2, 6, 3, 7]], [7, 2, 3, [2, 6, 3, 7]]].flatMap(([to, x, y, lanes]) => [
      ...op.get(A + (x as number)), ...op.get(A + (y as number)), ...v.shuffle(lanes as number[]), ...op.set(A + (to as number)),
    ]),
    ...[[4, 5, [0, 1, 4, 5]], [4, 5, [2, 3, 6, 7]], [6, 7, [0, 1, 4, 5]], [6, 7, [2, 3, 6, 7]]].flatMap(([x, y, lanes], k) => [
      ...op.get(DST), ...op.get(A + (x as number)), ...op.get(A + (y as number)), ...v.shuffle(lanes as number[]), ...op.vStore(64 * d + 16 * k),
    ]),
  ];
  const transpose = [
    ...op.i32(0), ...op.set(J),
    ...whileLt(J, op.get(ZEND), [
      ...op.get(K), ...op.get(J), ...op.i32(2), ...op.shrS, ...op.get(S), ...op.i32(4), ...op.sub, ...op.get(J), ...op.get(FB4), ...op.ltS, ...v.select, ...op.i32(hsB), ...op.mul, ...op.add, ...op.set(SRC),
      ...op.get(KT), ...op.get(J), ...op.i32(hs), ...op.mul, ...op.add, ...op.set(DST),
      ...range(nv).flatMap(transposeVector),
    ], 16),
  ];
  // 2a. scores → Z, max → VK. q's splats in locals for hs ≤ 8, else loaded per use.
  const qInLocals = hs <= Q_IN_LOCALS_MAX_HS;
  // independent sums over d (d mod NA) for hs ≥ 12, added at the end: a chain of hs madds per
  // 4 keys is latency-bound there; for hs ≤ 8 one sum in index order (as the GEMM) measured best
  const NA = hs <= 8 ? 1 : hs >= 16 ? 4 : 2;
  const SACC = [ACC, VE, EXP.VN, EXP.VR]; // free during the scores pass
  const qSplat = (d: number): Code => (qInLocals ? op.get(A + d) : [...op.get(PQ), ...op.vLoadSplat(4 * d)]);
  /** z = acc·scale + bias → Z at J, running max in VK, from ACC */
  const zOut = [
    ...op.get(Z), ...op.get(J), ...op.add,
    ...op.get(ACC), ...op.get(VSC), ...op.f4Mul,
    ...op.get(PB), ...op.get(J), ...op.get(SB), ...op.i32(16), ...op.sub, ...op.get(J), ...op.get(FB4), ...op.ltS, ...v.select, ...op.add, ...op.vLoad(0),
    ...op.f4Add, ...op.tee(EXP.VD), ...op.vStore(0),
    ...op.get(VK), ...op.get(EXP.VD), ...op.f4Pmax, ...op.set(VK),
  ];
  const transposedScores = [
    ...(qInLocals ? range(hs).flatMap((d) => [...op.get(PQ), ...op.vLoadSplat(4 * d), ...op.set(A + d)]) : []),
    ...op.f4Const(-Infinity), ...op.set(VK),
    ...op.get(KT), ...op.set(PK),
    ...op.i32(0), ...op.set(J),
    ...whileLt(J, op.get(ZEND), [
      ...range(NA).flatMap((a) => [...op.vZero, ...op.set(SACC[a] as number)]),
      ...range(hs).flatMap((d) => [...madd(qSplat(d), [...op.get(PK), ...op.vLoad(16 * d)], op.get(SACC[d % NA] as number)), ...op.set(SACC[d % NA] as number)]),
      ...(NA === 1 ? [] : NA === 2 ? [...op.get(ACC), ...op.get(SACC[1] as number), ...op.f4Add, ...op.set(ACC)] : [...op.get(ACC), ...op.get(SACC[1] as number), ...op.f4Add, ...op.get(SACC[2] as number), ...op.get(SACC[3] as number), ...op.f4Add, ...op.f4Add, ...op.set(ACC)]),
      ...addTo(PK, op.i32(16 * hs)),
      ...zOut,
    ], 16),
    ...allLanes(VK, op.f4Pmax), ...op.set(VK),
  ];
  // direct (no Kt): 4 keys' dot products with q in four sums of nv products, then their lanes
  // added across (4 × 4 transpose by shuffles); for few rows per group, where the transpose of
  // K would cost more than it saves
  const qVecInLocals = nv <= 4;
  const qVec = (i: number): Code => (qVecInLocals ? op.get(A + i) : [...op.get(PQ), ...op.vLoad(16 * i)]);
  const dacc = (l: number): number => A + 4 + l;
  const hsum = (x: number, y: number): Code => [...op.get(x), ...op.get(y), ...v.shuffle([0, 4, 1, 5]), ...op.get(x), ...op.get(y), ...v.shuffle([2, 6, 3, 7]), ...op.f4Add];
  const directScores = [
    ...(qVecInLocals ? range(nv).flatMap((i) => [...op.get(PQ), ...op.vLoad(16 * i), ...op.set(A + i)]) : []),
    ...op.f4Const(-Infinity), ...op.set(VK),
    ...op.i32(0), ...op.set(J),
    ...whileLt(J, op.get(ZEND), [
      ...op.get(K), ...op.get(J), ...op.i32(2), ...op.shrS, ...op.get(S), ...op.i32(4), ...op.sub, ...op.get(J), ...op.get(FB4), ...op.ltS, ...v.select, ...op.i32(hsB), ...op.mul, ...op.add, ...op.set(PK),
      ...range(4).flatMap((l) => [
        ...op.vZero, ...op.set(dacc(l)),
        ...range(nv).flatMap((i) => [...madd(qVec(i), [...op.get(PK), ...op.vLoad(l * hsB + 16 * i)], op.get(dacc(l))), ...op.set(dacc(l))]),
      ]),
      ...hsum(dacc(0), dacc(1)), ...op.set(SACC[1] as number),
      ...hsum(dacc(2), dacc(3)), ...op.set(SACC[2] as number),
      ...op.get(SACC[1] as number), ...op.get(SACC[2] as number), ...v.shuffle([0, 1, 4, 5]), ...op.get(SACC[1] as number), ...op.get(SACC[2] as number), ...v.shuffle([2, 3, 6, 7]), ...op.f4Add, ...op.set(ACC),
      ...zOut,
    ], 16),
    ...allLanes(VK, op.f4Pmax), ...op.set(VK),
  ];
  const scores = direct ? directScores : transposedScores;
  // 2b. e = exp(z − max) in Z, Σ e → VSUM, then VK = 1/Σ e; keys LO/4 … HI/4 hold every e > 0
  const zAt = (o: Code): Code => [...op.get(Z), ...o, ...op.add];
  const seen = (lo: Code, hi: Code): Code => [...hi, ...op.set(HI), ...op.get(LO), ...lo, ...op.get(LO), ...lo, ...op.ltS, ...v.select, ...op.set(LO)]; // LO = min(LO, lo)
  const softmax = [
    ...op.vZero, ...op.set(VSUM), ...op.get(SB), ...op.set(LO), ...op.i32(0), ...op.set(HI),
    ...op.i32(0), ...op.set(J),
    ...whileLt(J, op.get(FB4), [
      ...zAt(op.get(J)), ...op.vLoad(0), ...op.get(VK), ...op.f4Sub, ...aboveCutoffCode(EXP),
      ...op.if(
        [
          ...zAt(op.get(J)), ...expCode(EXP, fma), ...op.tee(EXP.VD), ...op.vStore(0), ...op.get(VSUM), ...op.get(EXP.VD), ...op.f4Add, ...op.set(VSUM),
          ...seen(op.get(J), [...op.get(J), ...op.i32(16), ...op.add]),
        ],
        [...zAt(op.get(J)), ...op.vZero, ...op.vStore(0)],
      ),
    ], 16),
    ...op.get(ZEND), ...op.get(FB4), ...op.gtS,
    ...op.if([
      ...zAt(op.get(FB4)), ...op.vLoad(0), ...op.get(VK), ...op.f4Sub, ...aboveCutoffCode(EXP),
      ...op.ifV128([...expCode(EXP, fma), ...seen(op.get(FB4), op.get(SB))], op.vZero), ...op.set(VE),
      ...op.get(VSUM), ...op.get(VE), ...op.get(VTAIL), ...op.vAnd, ...op.f4Add, ...op.set(VSUM),
      ...zAt([...op.get(SB), ...op.i32(16), ...op.sub]), ...op.get(VE), ...zAt([...op.get(SB), ...op.i32(16), ...op.sub]), ...op.vLoad(0), ...op.get(VTAIL), ...v.bitselect, ...op.vStore(0),
    ]),
    ...op.f32(1), ...op.f4Splat, ...allLanes(VSUM, op.f4Add), ...op.f4Div, ...op.set(VK),
  ];
  // 2c. y = (Σ e·v)·(1/Σ e) over keys LO/4 … HI/4, w ≤ 4 vectors of hs at a time, U keys a step
  // (U·w independent sums: a madd's latency, not its throughput, bounds one sum over the keys)
  const pv = (d0: number, w: number): Code => {
    const U = w <= 2 ? 4 : 2;
    const acc = (u: number, i: number): number => A + u * w + i;
    const step = (u: number): Code => [
      ...op.get(Z), ...op.get(J), ...op.add, ...op.vLoadSplat(4 * u), ...op.set(VE),
      ...range(w).flatMap((i) => [...madd(op.get(VE), [...op.get(PV), ...op.vLoad(u * hsB + 16 * (d0 + i))], op.get(acc(u, i))), ...op.set(acc(u, i))]),
    ];
    const sumSets = range(w).flatMap((i) => {
      let code = op.get(acc(0, i));
      for (let u = 1; u < U; u++) {
        code = [...code, ...op.get(acc(u, i)), ...op.f4Add];
      }
      return [...op.get(PO), ...code, ...op.get(VK), ...op.f4Mul, ...op.vStore(16 * (d0 + i))];
    });
    return [
      ...range(U * w).flatMap((k) => [...op.vZero, ...op.set(A + k)]),
      ...op.get(V), ...op.get(LO), ...op.i32(hs), ...op.mul, ...op.add, ...op.set(PV),
      ...op.get(LO), ...op.set(J),
      ...whileLt(J, [...op.get(HI), ...op.i32(4 * (U - 1)), ...op.sub], [...range(U).flatMap(step), ...addTo(PV, op.i32(U * hsB))], 4 * U),
      ...whileLt(J, op.get(HI), [...step(0), ...addTo(PV, op.i32(hsB))], 4),
      ...sumSets,
    ];
  };
  const output = range(Math.ceil(nv / 4)).flatMap((c) => pv(4 * c, Math.min(4, nv - 4 * c)));
  const nextRow = [
    ...addTo(PQ, op.i32(hsB)),
    ...op.get(TT), ...op.i32(1), ...op.add, ...op.tee(TT), ...op.get(T), ...op.eq,
    ...op.if(
      [...op.i32(0), ...op.set(TT), ...op.get(BIAS), ...op.set(PB), ...addTo(PH, op.i32(hsB)), ...op.get(PH), ...op.set(PO)],
      [...addTo(PB, op.get(SB)), ...addTo(PO, op.get(OSTRIDE))],
    ),
  ];
  const body = [
    ...init,
    ...(direct ? [] : transpose),
    ...op.get(Q), ...op.set(PQ), ...op.get(BIAS), ...op.set(PB), ...op.get(OUT), ...op.set(PO), ...op.get(OUT), ...op.set(PH), ...op.i32(0), ...op.set(TT),
    ...op.get(ROWS), ...op.i32(0), ...op.gtS,
    ...op.if(op.loop([...scores, ...softmax, ...output, ...nextRow, ...op.get(ROWS), ...op.i32(1), ...op.sub, ...op.tee(ROWS), ...op.brIf(0)])),
  ];
  return wasmModule([
    {
      name: "group",
      params: [...new Array(NUM_PARAMS - 1).fill(WasmType.i32), WasmType.f32],
      locals: [...new Array(NUM_I32).fill(WasmType.i32), ...new Array(NUM_V128).fill(WasmType.v128)],
      body,
    },
  ]);
}

type GroupFn = (q: number, k: number, v: number, bias: number, out: number, kt: number, z: number, rows: number, T: number, S: number, oStride: number, scale: number) => void;

/** One module per head size, compiled at its first use, one instance per heap. */
const modules = new Map<string, (memory: WasmMemory) => GroupFn>();
function groupFn(memory: WasmMemory, hs: number, direct: boolean): GroupFn {
  const key = `${hs} ${direct}`;
  let bound = modules.get(key);
  if (!bound) {
    bound = perMemory(
      () => attendModuleBytes(fmaAvailable(), hs, direct),
      (e) => e.group as GroupFn,
    );
    modules.set(key, bound);
  }
  return bound(memory);
}

/** A shared prompt prefix's keys and values, kept once per prefix (kv-cache.ts). */
export interface SharedKvInfo {
  /** (G, nkv, P, hs) */
  k: TensorInfo;
  /** (G, nkv, P, hs) */
  v: TensorInfo;
  /** (B) int32: each batch row's prefix, < G */
  rows: TensorInfo;
}

/** Whether the native attend8 (native.ts) takes these shapes: head size 8, S ≤ 2048 keys, a shared prefix or not. */
export function nativeAttendServes(hs: number, S: number): boolean {
  return hs === 8 && S <= NATIVE_MAX_KEYS && nativeKernels() !== undefined;
}

/**
 * y (B, T, nh·hs) = merge_heads(softmax(scale·q·kᵀ + bias)·v) on the wasm heap; hs mod 4 = 0, S ≥ 4.
 * The native attend8 computes it where it serves (nativeAttendServes: the same bits), else
 * this module.
 * @param q (B, nh, T, hs)
 * @param k (B, nkv, S − P, hs): every key, or those after the shared prefix
 * @param v (B, nkv, S − P, hs)
 * @param bias (B or 1, 1, T, S)
 * @param useNative false: the wasm module even where the native attend8 would serve (tests)
 * @param shared the first P keys and values of each row, kept once per prefix (native only)
 */
export function wasmAttend(b: WasmBackendLike, q: TensorInfo, k: TensorInfo, v: TensorInfo, bias: TensorInfo, scale: number, useNative = true, shared?: SharedKvInfo): TensorInfo {
  const [B, nh, T, hs] = q.shape as [number, number, number, number];
  const [, nkv, L] = k.shape as [number, number, number, number];
  const [G, , P] = shared ? (shared.k.shape as [number, number, number, number]) : [0, 0, 0];
  const S = P + L;
  const Bb = bias.shape[0] as number;
  const nrep = nh / nkv;
  const native = useNative && nativeAttendServes(hs, S) ? nativeKernels()?.attend8 : undefined;
  if (shared && !native) {
    throw new Error("wasmAttend: keys of a shared prefix need the native attend8 (nativeAttendServes)");
  }
  const out = b.makeOutput([B, T, nh * hs], "float32"); // first: addresses are read after the last allocation
  if (B * T * nh * hs === 0) {
    return out;
  }
  if (native) {
    const [kSh, vSh, rows] = shared ? [heapAddress(b, shared.k), heapAddress(b, shared.v), heapAddress(b, shared.rows)] : [0, 0, 0];
    native(heapF32(b), heapAddress(b, q), heapAddress(b, k), heapAddress(b, v), heapAddress(b, bias), heapAddress(b, out), B, nh, nkv, T, S, Bb, kSh, vSh, rows, P, G, scale);
    return out;
  }
  const blocks = Math.ceil(S / 4);
  const ktBytes = isDirect(hs, nrep * T) ? 0 : blocks * hs * 16;
  const scratch = heapMalloc(b, ktBytes + blocks * 16);
  try {
    const direct = isDirect(hs, nrep * T);
    const group = groupFn(b.wasm.asm.memory, hs, direct);
    const [qA, kA, vA, biasA, outA] = [heapAddress(b, q), heapAddress(b, k), heapAddress(b, v), heapAddress(b, bias), heapAddress(b, out)];
    const hsB = hs * 4;
    for (let i = 0; i < B; i++) {
      const biasRow = biasA + (Bb === 1 ? 0 : i * T * S * 4);
      for (let g = 0; g < nkv; g++) {
        const kv = (i * nkv + g) * S * hsB;
        group(qA + (i * nh + g * nrep) * T * hsB, kA + kv, vA + kv, biasRow, outA + (i * T * nh + g * nrep) * hsB, scratch, scratch + ktBytes, nrep * T, T, S, nh * hsB, scale);
      }
    }
  } finally {
    b.wasm._free(scratch);
  }
  return out;
}
