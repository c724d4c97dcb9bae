/**
 * The transposes attention makes, in WebAssembly SIMD: (B, D1, D2, R) → (B, D2, D1, R), two
 * middle axes swapped under a contiguous run of R floats (splitHeads' and the head merge's
 * [0, 2, 1, 3] on (B, T, n, hs) and (B, n, T, hs), and their gradients). The run is copied
 * as v128 loads and stores (R mod 4 = 0); the output is written in order.
 *
 * tfjs-wasm's own kernel moves one element at a time through index arithmetic: 0.48 ms for
 * a (256, 17, 8, 8) split of a stories260K check batch, ~58 ms of a 1024-fingerprint check
 * in all (four per layer and batch). Measured (min ms of 50, 2-core AMD EPYC, three runs):
 *                               tfjs-wasm   this
 *   (256, 17, 8, 8) [0,2,1,3]   0.47–0.48   0.08–0.13
 *   (256, 17, 4, 8) [0,2,1,3]   0.25–0.27   0.05–0.08
 * A check's generate() (stories260K, 2048 prompts) went from 778–865 to 678–738 ms (min of 7).
 */
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { op, wasmModule, WasmType, type Code } from "./wasm-encoder.js";
import { heapAddress, perMemory, type WasmBackendLike } from "./wasm-heap.js";

// params: SRC, DST (byte addresses), B, D1, D2, RUN (bytes, a multiple of 16)
const [SRC, DST, NB, D1, D2, RUN] = [0, 1, 2, 3, 4, 5] as const;
// i32 locals: loop counters, the source address of the current run, byte strides
const [BI, J, I, K, PS, BASE, STEP] = [6, 7, 8, 9, 10, 11, 12] as const;

const loop = (v: number, end: Code, body: Code, step: Code = op.i32(1)): Code => [
  ...op.i32(0), ...op.set(v),
  ...op.block(op.loop([...op.get(v), ...end, ...op.geS, ...op.brIf(1), ...body, ...op.get(v), ...step, ...op.add, ...op.set(v), ...op.br(0)])),
];

/** The module's bytes: swap(src, dst, B, D1, D2, runBytes). */
export function transposeModuleBytes(): Uint8Array {
  const copyRun = loop(
    K,
    op.get(RUN),
    [...op.get(DST), ...op.get(K), ...op.add, ...op.get(PS), ...op.get(K), ...op.add, ...op.vLoad(0), ...op.vStore(0)],
    op.i32(16),
  );
  const perI = [
    ...copyRun,
    ...op.get(DST), ...op.get(RUN), ...op.add, ...op.set(DST), // the output in order
    ...op.get(PS), ...op.get(STEP), ...op.add, ...op.set(PS), // the next i: D2 runs further on
  ];
  const perJ = [...op.get(BASE), ...op.get(J), ...op.get(RUN), ...op.mul, ...op.add, ...op.set(PS), ...loop(I, op.get(D1), perI)];
  const perB = [...loop(J, op.get(D2), perJ), ...op.get(BASE), ...op.get(D1), ...op.get(STEP), ...op.mul, ...op.add, ...op.set(BASE)];
  return wasmModule([
    {
      name: "swap",
      params: new Array(6).fill(WasmType.i32),
      locals: new Array(7).fill(WasmType.i32),
      body: [...op.get(SRC), ...op.set(BASE), ...op.get(D2), ...op.get(RUN), ...op.mul, ...op.set(STEP), ...loop(BI, op.get(NB), perB)],
    },
  ]);
}

type SwapFn = (src: number, dst: number, B: number, D1: number, D2: number, runBytes: number) => void;
const simdTranspose = perMemory(transposeModuleBytes, (e) => e.swap as SwapFn);

/**
 * The (B, D1, D2, R) view of a transpose by `perm` that swaps two middle groups of axes and
 * keeps a trailing run of R mod 4 = 0 elements in place, after dropping size-1 axes and
 * merging axes that stay neighbours; undefined for any other permutation.
 */
export function swapView(shape: readonly number[], perm: readonly number[]): [number, number, number, number] | undefined {
  const kept = perm.filter((p) => (shape[p] as number) !== 1);
  // groups of input axes that stay consecutive in the output
  const groups: number[][] = [];
  for (const p of kept) {
    const last = groups.at(-1);
    if (last && p === (last.at(-1) as number) + 1) {
      last.push(p);
    } else {
      groups.push([p]);
    }
  }
  const size = (g: number[]): number => g.reduce((a, p) => a * (shape[p] as number), 1);
  const byInput = groups.slice().sort((a, b) => (a[0] as number) - (b[0] as number));
  const order = groups.map((g) => byInput.indexOf(g)); // the permutation of the groups
  let view: [number, number, number, number] | undefined;
  if (order.length === 4 && order.join() === "0,2,1,3") {
    view = [size(byInput[0] as number[]), size(byInput[1] as number[]), size(byInput[2] as number[]), size(byInput[3] as number[])];
  } else if (order.length === 3 && order.join() === "1,0,2") {
    view = [1, size(byInput[0] as number[]), size(byInput[1] as number[]), size(byInput[2] as number[])];
  }
  return view && view[3] % 4 === 0 ? view : undefined;
}

/** x transposed by a permutation of swapView's kind (float32 or int32), into a new output. */
export function wasmSwapTranspose(b: WasmBackendLike, x: TensorInfo, perm: readonly number[], view: [number, number, number, number]): TensorInfo {
  const out = b.makeOutput(
    perm.map((p) => x.shape[p] as number),
    x.dtype,
  ); // first: addresses are read after the last allocation
  const [B, D1, D2, R] = view;
  simdTranspose(b.wasm.asm.memory)(heapAddress(b, x), heapAddress(b, out), B, D1, D2, R * 4);
  return out;
}
