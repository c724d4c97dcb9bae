/**
 * What our in-heap kernels use of tfjs's wasm backend: tensor addresses, the exported
 * `WebAssembly.Memory`, malloc/free for scratch space, and makeOutput.
 * Addresses stay valid when the heap grows; typed-array views do not, so take `heapF32`
 * after the last allocation of a kernel. The heap reaches 4 GiB: an address past 2 GiB is an
 * unsigned 32-bit number, so element indices are `addr >>> 2`, never `addr >> 2` (negative),
 * and a malloc result is read as `>>> 0`.
 */
import type { DataType, TensorInfo } from "@tensorflow/tfjs-core";

/** A `WebAssembly.Memory` (our tsconfig has no DOM lib, which declares the WebAssembly API). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

/** The parts of the global `WebAssembly` object we use. */
export interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  validate(bytes: Uint8Array): boolean;
}

export const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The parts of tfjs-backend-wasm's BackendWasm we rely on. */
export interface WasmBackendLike {
  wasm: {
    asm: { memory: WasmMemory };
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    HEAPF32: Float32Array;
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
}

/** True for tfjs's wasm backend (the only one whose tensors live in a WebAssembly.Memory). */
export function isWasmBackend(backend: unknown): backend is WasmBackendLike {
  const b = backend as Partial<WasmBackendLike> | undefined;
  return typeof b?.wasm?._malloc === "function" && b.wasm.asm?.memory instanceof WebAssemblyApi.Memory && typeof b.makeOutput === "function";
}

/** Byte address of a tensor's first element in the heap. */
export function heapAddress(b: WasmBackendLike, t: TensorInfo): number {
  const data = b.dataIdMap.get(t.dataId);
  if (!data) {
    throw new Error("tensor not in the wasm heap");
  }
  return data.memoryOffset >>> 0;
}

/** `bytes` of scratch in the heap, as an unsigned byte address; free with `b.wasm._free`. */
export function heapMalloc(b: WasmBackendLike, bytes: number): number {
  return b.wasm._malloc(bytes) >>> 0;
}

/** The heap as float32, as of now (re-read after any allocation). */
export function heapF32(b: WasmBackendLike): Float32Array {
  return b.wasm.HEAPF32;
}

/**
 * A module of ours bound to each memory it runs on (tfjs-wasm's heap, or the cpu GEMM's
 * private memory): compiled once on first use, one instance per WebAssembly.Memory.
 * @param bytes the module's bytes (called once, at the first use)
 * @param bind picks and types the exports
 */
export function perMemory<T>(bytes: () => Uint8Array, bind: (exports: Record<string, unknown>) => T): (memory: WasmMemory) => T {
  let compiled: object | undefined;
  const instances = new WeakMap<WasmMemory, T>();
  return (memory) => {
    let fns = instances.get(memory);
    if (!fns) {
      compiled ??= new WebAssemblyApi.Module(bytes());
      fns = bind(new WebAssemblyApi.Instance(compiled, { env: { memory } }).exports as Record<string, unknown>);
      instances.set(memory, fns);
    }
    return fns;
  };
}
