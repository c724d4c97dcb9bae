/**
 * Slice, SplitV and Concat on wasm and cpu, as plain loops over the tensors' memory
 * (raw-memory.ts).
 *
 * tfjs-wasm's own copy one run of the innermost dimension at a time through
 * `subarray` + `set`, i.e. a typed-array view per run. RoPE's rotate_half slices and
 * re-concatenates head halves of 4 floats (stories260K, hs = 8): ~10⁵ runs per call, so a
 * (256, 8, 53, 8) slice took 14 ms and the concat 31 ms; a loop over the elements takes
 * well under 1 ms. tfjs-cpu's slice maps every element through index arrays: the 20M
 * model's forward spent 1.1 s of 2.8 in RoPE's slices. Long runs still go through `set`
 * (memmove). Trailing whole dimensions merge into the run; a contiguous slice is one copy.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";
import { rawMemory } from "./raw-memory.js";

/** Runs at least this long are copied with TypedArray.set. */
const LONG_RUN = 64;

function copyRun(src: TypedArray, s: number, dst: TypedArray, d: number, n: number): void {
  if (n >= LONG_RUN) {
    dst.set(src.subarray(s, s + n), d);
    return;
  }
  for (let i = 0; i < n; i++) {
    dst[d + i] = src[s + i] as number;
  }
}

/**
 * Long runs between views of one buffer (wasm: every tensor is a view of the heap) as
 * copyWithin on one view of the whole buffer: a memmove without the view `subarray` makes
 * per run. A KV-cache append of (256, 4, 37, 8) and (256, 4, 16, 8) is 2048 runs: 0.85 ms
 * with a view per run, against ~0.1 ms.
 */
function runCopier(src: TypedArray, dst: TypedArray): (s: number, d: number, n: number) => void {
  if (src.buffer !== dst.buffer || src.constructor !== dst.constructor) {
    return (s, d, n) => copyRun(src, s, dst, d, n);
  }
  const size = dst.BYTES_PER_ELEMENT;
  const whole = new (dst.constructor as new (b: ArrayBufferLike) => TypedArray)(dst.buffer);
  const [so, dO] = [src.byteOffset / size, dst.byteOffset / size];
  return (s, d, n) => (n >= LONG_RUN ? whole.copyWithin(dO + d, so + s, so + s + n) : copyRun(src, s, dst, d, n));
}

/** out = x[begin … begin + size) (row-major, any rank ≥ 1). */
export function sliceValues(x: TypedArray, shape: number[], begin: number[], size: number[], out: TypedArray): void {
  const rank = shape.length;
  if (rank === 0 || out.length === 0) {
    if (out.length > 0) {
      out[0] = x[0] as number;
    }
    return;
  }
  const strides = new Array<number>(rank);
  for (let d = rank - 1, s = 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d] as number;
  }
  // the run: dim `last` (partial) and every whole dim after it
  let last = rank - 1;
  let run = size[last] as number;
  while (last > 0 && size[last] === shape[last]) {
    last--;
    run *= size[last] as number;
  }
  let base = 0;
  for (let d = 0; d <= last; d++) {
    base += (begin[d] as number) * (strides[d] as number);
  }
  const idx = new Array<number>(last).fill(0);
  const copy = runCopier(x, out);
  for (let o = 0; o < out.length; o += run) {
    copy(base, o, run);
    for (let d = last - 1; d >= 0; d--) {
      idx[d] = (idx[d] as number) + 1;
      base += strides[d] as number;
      if ((idx[d] as number) < (size[d] as number)) {
        break;
      }
      base -= (strides[d] as number) * (size[d] as number);
      idx[d] = 0;
    }
  }
}

/** out = concat(inputs, axis): per outer index, each input's inner block in turn. */
export function concatValues(inputs: { values: TypedArray; shape: number[] }[], axis: number, out: TypedArray): void {
  const first = inputs[0];
  if (!first) {
    return;
  }
  const outer = first.shape.slice(0, axis).reduce((p, d) => p * d, 1);
  const inner = inputs.map((t) => t.shape.slice(axis).reduce((p, d) => p * d, 1));
  const total = inner.reduce((p, n) => p + n, 0);
  for (let i = 0, offset = 0; i < inputs.length; offset += inner[i] as number, i++) {
    const copy = runCopier((inputs[i] as { values: TypedArray }).values, out);
    const n = inner[i] as number;
    for (let r = 0; r < outer; r++) {
      copy(r * n, r * total + offset, n);
    }
  }
}

const numeric = (dtype: string): boolean => dtype === "float32" || dtype === "int32" || dtype === "bool";

/** The Slice kernel of `backendName` (wasm or cpu); `stock` serves strings. */
export function sliceConfig(backendName: string, stock?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size?: number | number[] };
    const mem = rawMemory(args.backend);
    if ((!numeric(x.dtype) || !mem) && stock) {
      return stock.kernelFunc(args);
    }
    if (!mem) {
      throw new Error(`Slice on ${backendName}: no raw memory access`);
    }
    const [begin_, size_] = tf.slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
    const out = mem.output(size_, x.dtype);
    sliceValues(mem.input(x), x.shape, begin_, size_, out.values);
    return out.info;
  };
  return { kernelName: tf.Slice, backendName, kernelFunc, setupFunc: stock?.setupFunc };
}

/** The SplitV kernel (RoPE's gradient splits rotate_half back): slices of sliceValues. */
export function splitVConfig(backendName: string, stock?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const mem = rawMemory(args.backend);
    if ((!numeric(x.dtype) || !mem) && stock) {
      return stock.kernelFunc(args);
    }
    if (!mem) {
      throw new Error(`SplitV on ${backendName}: no raw memory access`);
    }
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0] as number;
    const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, ax);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((n) => {
      const size = x.shape.slice();
      size[ax] = n;
      const out = mem.output(size, x.dtype);
      sliceValues(mem.input(x), x.shape, begin, size, out.values);
      begin[ax] = (begin[ax] as number) + n;
      return out.info;
    });
  };
  return { kernelName: tf.SplitV, backendName, kernelFunc, setupFunc: stock?.setupFunc };
}

/** The Concat kernel of `backendName` (wasm or cpu); `stock` serves strings. */
export function concatConfig(backendName: string, stock?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const inputs = args.inputs as unknown as TensorInfo[];
    const first = inputs[0];
    const mem = rawMemory(args.backend);
    if (!first || !mem || (!numeric(first.dtype) && stock)) {
      if (!stock) {
        throw new Error("Concat needs at least one input");
      }
      return stock.kernelFunc(args);
    }
    const axis = tf.util.parseAxisParam((args.attrs as unknown as { axis: number | number[] }).axis, first.shape)[0] as number;
    const shapes = inputs.map((t) => t.shape);
    tf.backend_util.assertParamsConsistent(shapes, axis);
    const outShape = tf.backend_util.computeOutShape(shapes, axis);
    const out = mem.output(outShape, first.dtype);
    const nonEmpty = inputs.filter((t) => t.shape.reduce((p, d) => p * d, 1) > 0);
    const values = out.values;
    concatValues(
      nonEmpty.map((t) => ({ values: mem.input(t), shape: t.shape })),
      axis,
      values,
    );
    return out.info;
  };
  return { kernelName: tf.Concat, backendName, kernelFunc, setupFunc: stock?.setupFunc };
}
