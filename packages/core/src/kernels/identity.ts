/**
 * Identity on wasm without a copy: the output shares the input's heap memory (a reference
 * count, as wasm's Reshape and cpu's Identity already do). tfjs tensors are immutable and
 * none of our kernels writes into an input, so sharing is safe. tfjs clones every tensor a
 * custom gradient saves: for the cross-entropy's (512, 32000) probabilities that was a 65 MB
 * copy per training step (~20 ms), plus the weights each linear() saves.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { swapView, wasmSwapTranspose } from "./simd-transpose.js";
import type { WasmBackendLike } from "./wasm-heap.js";

interface RefCountingBackend {
  incRef(dataId: object): void;
}

/** The wasm Identity kernel; `stock` serves strings. */
export function identityConfig(stock?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === "string" && stock) {
      return stock.kernelFunc(args);
    }
    (args.backend as unknown as RefCountingBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  return { kernelName: tf.Identity, backendName: "wasm", kernelFunc, setupFunc: stock?.setupFunc };
}

/**
 * The wasm Transpose kernel, sharing memory when the permutation only moves size-1 dims
 * (gather's gradient transposes the (V, C) embedding gradient by [0, 1]: a 33 MB copy per
 * training step at V = 32000, C = 256); attention's head splits and merges (two middle
 * axes swapped, whole runs of the last kept) go to simd-transpose.ts; other permutations
 * to tfjs's kernel.
 */
export function transposeShareConfig(stock?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { perm } = args.attrs as unknown as { perm: number[] };
    const moved = perm.filter((p) => x.shape[p] !== 1);
    if (x.dtype !== "string" && moved.every((p, i) => i === 0 || p > (moved[i - 1] as number))) {
      (args.backend as unknown as RefCountingBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: perm.map((p) => x.shape[p] as number), dtype: x.dtype };
    }
    const view = x.dtype === "float32" || x.dtype === "int32" ? swapView(x.shape, perm) : undefined;
    if (view) {
      return wasmSwapTranspose(args.backend as unknown as WasmBackendLike, x, perm, view);
    }
    if (!stock) {
      throw new Error("Transpose: no stock kernel to delegate to");
    }
    return stock.kernelFunc(args);
  };
  return { kernelName: tf.Transpose, backendName: "wasm", kernelFunc, setupFunc: stock?.setupFunc };
}
