/**
 * KV cache for incremental decoding: per layer, the keys (RoPE applied) and values of every
 * token seen so far. `forward` with a cache reads it, appends the new tokens and replaces the
 * tensors (disposing the old ones). Pair createKvCache / disposeKvCache.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LayerKv } from "./attention.js";

export interface KvCache {
  /** one entry per layer, undefined before the first forward */
  layers: (LayerKv | undefined)[];
}

/** An empty cache for a model of nLayers layers. */
export function createKvCache(nLayers: number): KvCache {
  return { layers: Array.from({ length: nLayers }, () => undefined) };
}

/** Number of cached tokens P (the key length of layer 0). */
export function kvCacheLength(cache: KvCache): number {
  return cache.layers[0]?.k.shape[2] ?? 0;
}

/** Release every cached tensor; the cache is empty afterwards. */
export function disposeKvCache(cache: KvCache): void {
  for (let i = 0; i < cache.layers.length; i++) {
    const l = cache.layers[i];
    if (l) {
      tf.dispose([l.k, l.v]);
    }
    cache.layers[i] = undefined;
  }
}
