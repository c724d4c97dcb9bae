/**
 * Raw element access for the copy kernels (slice-concat.ts, gather.ts, tile.ts) on both
 * backends: a tensor's memory as an Int32Array (float32 and int32 alike: copying the bits
 * copies the value) or a Uint8Array (bool). One array type for the 4-byte dtypes keeps the
 * copy loops monomorphic (2–3× faster than Float32Array and Int32Array calls mixed).
 * - wasm: views of the heap; allocate every output first (views go stale when it grows).
 * - cpu: the JS arrays the backend keeps (readSync returns them without a copy).
 */
import type { DataType, TensorInfo, TypedArray } from "@tensorflow/tfjs-core";

export type RawArray = Int32Array | Uint8Array;

/** A new output: write into `values`, then hand `info` to tfjs. */
export interface RawOutput {
  values: RawArray;
  info: TensorInfo;
}

export interface RawMemory {
  /** Allocate an output (before taking input views). */
  output(shape: number[], dtype: DataType): RawOutput;
  /** An input's elements (read only). */
  input(t: TensorInfo): RawArray;
}

interface WasmLike {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): TypedArray;
}

interface CpuLike {
  readSync(dataId: object): unknown;
  makeTensorInfo(shape: number[], dtype: DataType, values: TypedArray): TensorInfo;
}

const raw = (v: TypedArray): RawArray => (v instanceof Uint8Array ? v : new Int32Array(v.buffer, v.byteOffset, v.length));

/** Raw access to a wasm or cpu backend; undefined for any other. */
export function rawMemory(backend: unknown): RawMemory | undefined {
  const w = backend as Partial<WasmLike>;
  if (typeof w.makeOutput === "function" && typeof w.typedArrayFromHeap === "function") {
    const b = w as WasmLike;
    return {
      output(shape, dtype) {
        const info = b.makeOutput(shape, dtype);
        return {
          info,
          get values() {
            return raw(b.typedArrayFromHeap(info)); // fresh view: valid until the next allocation
          },
        };
      },
      input: (t) => raw(b.typedArrayFromHeap(t)),
    };
  }
  const c = backend as Partial<CpuLike>;
  if (typeof c.makeTensorInfo === "function" && typeof c.readSync === "function") {
    const b = c as CpuLike;
    return {
      output(shape, dtype) {
        const n = shape.reduce((p, d) => p * d, 1);
        const values = dtype === "bool" ? new Uint8Array(n) : dtype === "int32" ? new Int32Array(n) : new Float32Array(n);
        return { info: b.makeTensorInfo(shape, dtype, values), values: raw(values) };
      },
      input: (t) => raw(b.readSync(t.dataId) as TypedArray),
    };
  }
  return undefined;
}
