/**
 * A fast Transpose kernel for the cpu backend. cpu's own allocates two arrays per element
 * (indexToLoc / locToIndex): ~60 ns per element, so 0.5 s for the identity "transpose" of a
 * 32000 × 256 embedding gradient that gather's gradient performs. This one walks the output
 * in order with an odometer over the input strides (a few ns per element) and copies when
 * the permutation keeps the order. wasm's kernel is native and is left alone.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { readValues, type DataBackend } from "./backend-data.js";

/** out = x transposed by perm (row-major); out has x's size. */
export function transposeValues(x: TypedArray, shape: number[], perm: number[], out: TypedArray): void {
  const rank = shape.length;
  // Dims of size 1 do not move anything: drop them, then check for a no-op.
  const kept = perm.filter((p) => (shape[p] as number) !== 1);
  if (kept.every((p, i) => i === 0 || p > (kept[i - 1] as number)) || rank < 2) {
    out.set(x);
    return;
  }
  const inStrides = new Array<number>(rank);
  for (let d = rank - 1, s = 1; d >= 0; d--) {
    inStrides[d] = s;
    s *= shape[d] as number;
  }
  const outShape = perm.map((p) => shape[p] as number);
  const srcStride = perm.map((p) => inStrides[p] as number); // input step per output dim
  const inner = outShape[rank - 1] as number;
  const innerStride = srcStride[rank - 1] as number;
  const idx = new Array<number>(rank).fill(0);
  let base = 0;
  for (let o = 0; o < out.length; ) {
    for (let j = 0, s = base; j < inner; j++, s += innerStride) {
      out[o++] = x[s] as number;
    }
    for (let d = rank - 2; d >= 0; d--) {
      idx[d] = (idx[d] as number) + 1;
      base += srcStride[d] as number;
      if ((idx[d] as number) < (outShape[d] as number)) {
        break;
      }
      base -= (srcStride[d] as number) * (outShape[d] as number);
      idx[d] = 0;
    }
  }
}

/** The kernel, delegating the dtypes it does not handle (complex64, string) to `stock`. */
export function transposeConfig(backendName: string, stock?: KernelFunc): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend, attrs } = args;
    const { x } = inputs as { x: TensorInfo };
    const { perm } = attrs as unknown as { perm: number[] };
    const b = backend as unknown as DataBackend;
    if ((x.dtype !== "float32" && x.dtype !== "int32" && x.dtype !== "bool") || !b.makeTensorInfo) {
      if (!stock) {
        throw new Error(`Transpose of ${x.dtype} is not supported`);
      }
      return stock(args);
    }
    const xVals = readValues(b, x);
    const out = x.dtype === "float32" ? new Float32Array(xVals.length) : x.dtype === "int32" ? new Int32Array(xVals.length) : new Uint8Array(xVals.length);
    transposeValues(xVals, x.shape, perm, out);
    return b.makeTensorInfo(
      perm.map((p) => x.shape[p] as number),
      x.dtype,
      out,
    );
  };
  return { kernelName: tf.Transpose, backendName, kernelFunc };
}
