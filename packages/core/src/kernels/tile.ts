/**
 * Tile on wasm and cpu as row copies. tfjs-wasm's own maps every output element back
 * to its source in C++: repeating a (1, 4, 37, 8) prompt-prefix cache 256 times (300k
 * floats) took ~10 ms per tensor, i.e. 0.6 s for checking 1024 fingerprints; one copy per
 * output row takes well under 1 ms.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { rawMemory } from "./raw-memory.js";


/** out = x repeated reps[d] times along each dim d (row-major). */
export function tileValues(x: TypedArray, shape: number[], reps: number[], out: TypedArray): void {
  const rank = shape.length;
  if (rank === 0) {
    out.fill(x[0] as number);
    return;
  }
  const outShape = shape.map((d, i) => d * (reps[i] as number));
  const strides = new Array<number>(rank);
  for (let d = rank - 1, s = 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d] as number;
  }
  const row = shape[rank - 1] as number;
  const idx = new Array<number>(rank - 1).fill(0); // output index over the leading dims
  let src = 0; // source row start
  for (let o = 0; o < out.length; ) {
    for (let r = 0; r < (reps[rank - 1] as number); r++, o += row) {
      if (row >= 16) {
        out.set(x.subarray(src, src + row), o);
      } else {
        for (let j = 0; j < row; j++) {
          out[o + j] = x[src + j] as number;
        }
      }
    }
    for (let d = rank - 2; d >= 0; d--) {
      idx[d] = (idx[d] as number) + 1;
      const dim = shape[d] as number;
      // the source index along d is idx mod dim
      src += (idx[d] as number) % dim === 0 ? -(dim - 1) * (strides[d] as number) : (strides[d] as number);
      if ((idx[d] as number) < (outShape[d] as number)) {
        break;
      }
      idx[d] = 0; // wrapped: (outShape[d] is a multiple of dim, so src is back at index 0 along d)
    }
  }
}

/** The Tile kernel of `backendName` (wasm or cpu); `stock` serves strings. */
export function tileConfig(backendName: string, stock?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { reps } = args.attrs as unknown as { reps: number[] };
    const mem = rawMemory(args.backend);
    if ((x.dtype !== "float32" && x.dtype !== "int32" && x.dtype !== "bool") || !mem) {
      if (!stock) {
        throw new Error(`Tile of ${x.dtype} is not supported`);
      }
      return stock.kernelFunc(args);
    }
    const out = mem.output(
      x.shape.map((d, i) => d * (reps[i] as number)),
      x.dtype,
    );
    const values = out.values;
    tileValues(mem.input(x), x.shape, reps, values);
    return out.info;
  };
  return { kernelName: tf.Tile, backendName, kernelFunc, setupFunc: stock?.setupFunc };
}
