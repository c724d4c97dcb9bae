/**
 * Our optional native kernels: native/*.c (addon.c says what), AVX2 + FMA GEMM, attention and SwiGLU loops built into
 * dist/native/oml-native.node by scripts/build-native.mjs where a C compiler is found. They
 * run on the same WebAssembly heaps as our wasm kernels (tfjs-wasm's, the GEMM pool's shared
 * one, the cpu backend's private one) and compute the same bits as our wasm kernels with FMA,
 * so they are used whenever they load, and the rest of the code never knows.
 *
 * Used when all hold: OML_NATIVE is not "0"; the addon was built and loads; the CPU has AVX2
 * and FMA; our wasm GEMM uses FMA too (fmaAvailable: else the two would round differently,
 * and a product would depend on which one ran it).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { corePackageRoot } from "../util/package-root.js";
import { fmaAvailable } from "./simd-gemm.js";

/**
 * gemm(heap, a, panels, c, M, N, K, rsA, csA, ldc, accumulate): simd-gemm.ts's `gemm` with the
 * heap as a Float32Array over the memory (addresses in bytes from its start). Throws a
 * RangeError for operands outside the heap.
 */
export type NativeGemmFn = (heap: Float32Array, a: number, panels: number, c: number, M: number, N: number, K: number, rsA: number, csA: number, ldc: number, accumulate: number) => void;

/**
 * attend8(heap, q, k, v, bias, out, B, nh, nkv, T, S, Bb, kShared, vShared, rows, P, G, scale):
 * simd-attend.ts's wasmAttend for head size 8 (both of its score paths), S ≤ 2048, every batch
 * row and kv head in one call; the same bits. With P > 0, batch row b's first P keys and values
 * are those of row rows[b] (int32 (B) in the heap) of kShared, vShared (G, nkv, P, 8): a shared
 * prompt prefix, read in place instead of copied into every row; k and v hold the other S − P.
 */
export type NativeAttend8Fn = (heap: Float32Array, q: number, k: number, v: number, bias: number, out: number, B: number, nh: number, nkv: number, T: number, S: number, Bb: number, kShared: number, vShared: number, rows: number, P: number, G: number, scale: number) => void;

/** swiglu(heap, g, u, out, rows, I, stride): simd-swiglu.ts's forward (I mod 4 = 0), the same bits. */
export type NativeSwigluFn = (heap: Float32Array, g: number, u: number, out: number, rows: number, I: number, stride: number) => void;
/** swigluGrad(heap, dy, g, u, dg, du, rows, I, stride): simd-swiglu.ts's backward, the same bits. */
export type NativeSwigluGradFn = (heap: Float32Array, dy: number, g: number, u: number, dg: number, du: number, rows: number, I: number, stride: number) => void;

/**
 * gemmBatch(heap, a, b, c, batch, M, N, K, rsA, csA, rsB, csB, sA, sB, sC, scratch): simd-gemm.ts's
 * gemmBatch (many one-block products in one call), byte addresses and strides; the same bits.
 */
export type NativeGemmBatchFn = (heap: Float32Array, a: number, b: number, c: number, batch: number, M: number, N: number, K: number, rsA: number, csA: number, rsB: number, csB: number, sA: number, sB: number, sC: number, scratch: number) => void;

/** pack(heap, src, rs, cs, k0, kc, j0, nc, dst): simd-gemm.ts's packPanels, float indices. */
export type NativePackFn = (heap: Float32Array, src: number, rs: number, cs: number, k0: number, kc: number, j0: number, nc: number, dst: number) => void;

export interface NativeKernels {
  gemm: NativeGemmFn;
  gemmBatch: NativeGemmBatchFn;
  pack: NativePackFn;
  attend8: NativeAttend8Fn;
  swiglu: NativeSwigluFn;
  swigluGrad: NativeSwigluGradFn;
}

interface Addon extends NativeKernels {
  available(): boolean;
}

/** Where the build puts the addon. */
export function nativeAddonPath(): string {
  return path.join(corePackageRoot(), "dist", "native", "oml-native.node");
}

let loaded: { kernels?: NativeKernels; status: string } | undefined;

function load(): { kernels?: NativeKernels; status: string } {
  if (process.env.OML_NATIVE === "0") {
    return { status: "off (OML_NATIVE=0)" };
  }
  const file = nativeAddonPath();
  if (!existsSync(file)) {
    return { status: `not built (no ${path.relative(corePackageRoot(), file)}: \`pnpm build\` makes it where a C compiler is found)` };
  }
  let addon: Addon;
  try {
    addon = createRequire(import.meta.url)(file) as Addon;
  } catch (err) {
    return { status: `failed to load ${file}: ${(err as Error).message.split("\n")[0] ?? ""}` };
  }
  if (!addon.available()) {
    return { status: "unused: this CPU lacks AVX2 or FMA" };
  }
  if (!fmaAvailable()) {
    return { status: "unused: the WebAssembly kernels run without FMA here, and the two must round alike" };
  }
  const { gemm, gemmBatch, pack, attend8, swiglu, swigluGrad } = addon;
  return { kernels: { gemm, gemmBatch, pack, attend8, swiglu, swigluGrad }, status: "AVX2 + FMA GEMM, attention and SwiGLU" };
}

/** The native kernels, or undefined when they cannot serve here (nativeStatus says why). */
export function nativeKernels(): NativeKernels | undefined {
  loaded ??= load();
  return loaded.kernels;
}

/** One line on the native kernels: what serves, or why they do not. */
export function nativeStatus(): string {
  loaded ??= load();
  return loaded.status;
}
