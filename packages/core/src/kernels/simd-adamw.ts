/**
 * The AdamW update in WebAssembly SIMD, in float32 with PyTorch's operation order
 * (torch.optim.AdamW, single-tensor path, CPU kernels):
 *   m ← m + (g − m)·(1 − β1)                     exp_avg.lerp_(grad, 1 − β1)
 *   v ← v·β2 + ((1 − β2)·g)·g                    exp_avg_sq.mul_(β2).addcmul_(grad, grad, 1 − β2)
 *   d ← √v / √(1 − β2ᵗ) + eps                    (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
 *   w ← w·(1 − lr·wd) + ((−lr / (1 − β1ᵗ))·m) / d  param.mul_(…); param.addcdiv_(exp_avg, d, −step_size)
 * (g first multiplied by `gradScale`, as clip_grad_norm_ multiplies it in place.)
 * w and g are read in place in the tfjs heap and the new weights written there, over w
 * itself when only the variable holds it; m and v live outside the heap (train/adamw.ts)
 * and pass through a scratch in chunks.
 * ~1 ns per parameter against 10–16 for the float64 JS loop (adamw-update.ts), which cpu
 * keeps.
 */
import { op, wasmModule, WasmType, type Code } from "./wasm-encoder.js";
import { heapAddress, heapF32, perMemory, type WasmBackendLike, heapMalloc } from "./wasm-heap.js";
import type { TensorInfo } from "@tensorflow/tfjs-core";
import type { AdamWUpdateAttrs } from "./adamw-update.js";

// params: addresses (i32), count (i32), then the f32 hyper-parameters
const W = 0;
const G = 1;
const M = 2;
const V = 3;
const OUT = 4;
const N = 5;
const C1 = 6; // 1 − β1
const B2 = 7; // β2
const C2 = 8; // 1 − β2
const EPS = 9;
const DECAY = 10;
const NEG_STEP = 11; // −lr / (1 − β1ᵗ)
const BC2 = 12; // √(1 − β2ᵗ)
const GS = 13; // gradient scale (clipping, accumulation)
// locals: i (byte offset), end, then one v128 per constant and two temporaries
const I = 14;
const END = 15;
const VC1 = 16;
const VB2 = 17;
const VC2 = 18;
const VEPS = 19;
const VDECAY = 20;
const VSTEP = 21;
const VBC2 = 22;
const VG = 23;
const VM = 24;
const VGS = 25;

const SG = 26; // f32 temporaries of the scalar tail
const SM = 27;

const s4 = (i: number): Code => [...op.get(i), ...op.f4Splat];
const at = (base: number): Code => [...op.get(base), ...op.get(I), ...op.add];

/** The update of four elements (vector) or one (the tail) at byte offset I. */
function update(vector: boolean): Code {
  const [load, store] = vector ? [op.vLoad(0), op.vStore(0)] : [op.f32Load(0), op.f32Store(0)];
  const [sub, mul, add, div, sqrt] = vector ? [op.f4Sub, op.f4Mul, op.f4Add, op.f4Div, op.f4Sqrt] : [op.fsub, op.fmul, op.fadd, op.fdiv, op.fsqrt];
  const k = (v: number, s: number): Code => op.get(vector ? v : s); // a constant
  const [tg, tm] = vector ? [VG, VM] : [SG, SM];
  return [
    ...at(G), ...load, ...k(VGS, GS), ...mul, ...op.set(tg), // g·scale (exact when the scale is 1)
    ...at(M), ...load, ...op.set(tm),
    // m ← m + (g − m)·c1
    ...at(M), ...op.get(tm), ...op.get(tg), ...op.get(tm), ...sub, ...k(VC1, C1), ...mul, ...add, ...op.tee(tm), ...store,
    // v ← v·β2 + (c2·g)·g   (tg holds v afterwards)
    ...at(V), ...at(V), ...load, ...k(VB2, B2), ...mul, ...k(VC2, C2), ...op.get(tg), ...mul, ...op.get(tg), ...mul, ...add, ...op.tee(tg), ...store,
    // out ← w·decay + ((−step)·m) / (√v / bc2 + eps)
    ...at(OUT),
    ...at(W), ...load, ...k(VDECAY, DECAY), ...mul,
    ...k(VSTEP, NEG_STEP), ...op.get(tm), ...mul,
    ...op.get(tg), ...sqrt, ...k(VBC2, BC2), ...div, ...k(VEPS, EPS), ...add,
    ...div, ...add, ...store,
  ];
}

/** adamw(w, g, m, v, out, n, c1, β2, c2, eps, decay, −step, bc2, gradScale): addresses in bytes. */
export function adamwModuleBytes(): Uint8Array {
  const loop = (end: Code, vector: boolean): Code =>
    op.block(op.loop([...op.get(I), ...end, ...op.geS, ...op.brIf(1), ...update(vector), ...op.get(I), ...op.i32(vector ? 16 : 4), ...op.add, ...op.set(I), ...op.br(0)]));
  const splats = ([[C1, VC1], [B2, VB2], [C2, VC2], [EPS, VEPS], [DECAY, VDECAY], [NEG_STEP, VSTEP], [BC2, VBC2], [GS, VGS]] as const).flatMap(([p, l]) => [...s4(p), ...op.set(l)]);
  return wasmModule([
    {
      name: "adamw",
      params: [...new Array(6).fill(WasmType.i32), ...new Array(8).fill(WasmType.f32)],
      locals: [WasmType.i32, WasmType.i32, ...new Array(10).fill(WasmType.v128), WasmType.f32, WasmType.f32],
      body: [
        ...splats,
        ...op.i32(0), ...op.set(I),
        ...op.get(N), ...op.i32(-4), ...op.and, ...op.i32(4), ...op.mul, ...op.set(END), // (n & ~3)·4 bytes
        ...loop(op.get(END), true),
        ...loop([...op.get(N), ...op.i32(4), ...op.mul], false),
      ],
    },
  ]);
}

type AdamwFn = (w: number, g: number, m: number, v: number, out: number, n: number, c1: number, b2: number, c2: number, eps: number, decay: number, negStep: number, bc2: number, gradScale: number) => void;

const simdAdamw = perMemory(adamwModuleBytes, (e) => e.adamw as AdamwFn);

/** Moments pass through the heap this many floats at a time. */
const CHUNK = 1 << 18;

/** What the in-place update needs of the wasm backend besides WasmBackendLike. */
interface RefCounts {
  refCount(dataId: object): number;
  incRef(dataId: object): void;
}

/**
 * New weights from w and g (heap tensors) and the moments in `a` (updated in place). When
 * nothing but the variable holds w's memory (reference count 1), the new weights overwrite
 * it and the result shares it, as assign() then expects: no second copy of the tensor and
 * no allocation per step. Otherwise (a clone still shares it) they go to a new tensor.
 */
export function wasmAdamwUpdate(b: WasmBackendLike, w: TensorInfo, g: TensorInfo, a: AdamWUpdateAttrs): TensorInfo {
  const n = a.m.length;
  const rc = b as unknown as RefCounts;
  const inPlace = typeof rc.refCount === "function" && rc.refCount(w.dataId) === 1;
  let out: TensorInfo;
  if (inPlace) {
    rc.incRef(w.dataId);
    out = { dataId: w.dataId, shape: w.shape, dtype: "float32" };
  } else {
    out = b.makeOutput(w.shape, "float32");
  }
  const chunk = Math.min(CHUNK, n);
  const scratch = heapMalloc(b, Math.max(1, 2 * chunk) * 4);
  try {
    const fn = simdAdamw(b.wasm.asm.memory);
    const heap = heapF32(b); // after the last allocation
    const [wA, gA, oA] = [heapAddress(b, w), heapAddress(b, g), heapAddress(b, out)];
    const mS = scratch >>> 2; // >>>: addresses past 2 GiB are unsigned
    const vS = mS + chunk;
    for (let s = 0; s < n; s += chunk) {
      const len = Math.min(chunk, n - s);
      heap.set(a.m.subarray(s, s + len), mS);
      heap.set(a.v.subarray(s, s + len), vS);
      fn(wA + 4 * s, gA + 4 * s, scratch, scratch + 4 * chunk, oA + 4 * s, len, 1 - a.beta1, a.beta2, 1 - a.beta2, a.eps, a.decay, -a.stepSize, a.bc2Sqrt, a.gradScale ?? 1);
      a.m.set(heap.subarray(mS, mS + len), s);
      a.v.set(heap.subarray(vS, vS + len), s);
    }
  } finally {
    b.wasm._free(scratch);
  }
  return out;
}
