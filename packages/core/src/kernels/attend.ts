/**
 * Attention's core as one op, for inference (forward only: no gradient is registered, so
 * tf.grad through `attend` fails; training keeps model/attention.ts's op chain):
 *   y (B, T, nh·hs) = merge_heads(softmax(scale·q·kᵀ + bias) · v)
 * with grouped query heads (query head h uses kv head ⌊h / (nh/nkv)⌋, transformers'
 * repeat_kv grouping), the values attendHeads computes without a softcap. It replaces the
 * scores matMul, the biased softmax, the ·v matMul and the head merge's transpose: the
 * scores and probabilities never leave a scratch row of S floats (simd-attend.ts).
 *
 * Runs the OmlAttend kernel on the wasm backend when hs mod 4 = 0 and S ≥ 4 and the kernel is
 * the faster (kernelPays); anywhere else (cpu, tfjs-node, other shapes) the op chain
 * attendChain, attendHeads' own. The kernel reads every row of K and V once per query row, so
 * for a large head with many query rows per kv head the chain's register-blocked GEMMs win:
 * measured (simd-attend.ts) it pays for hs ≤ 8, for nrep·T ≤ 8 (decode) whatever hs, and for
 * hs ≤ 16 up to nrep·T = 32; hs 32 with nrep·T 16 ran at 0.89×, hs 64 prefill at 0.47–0.66×.
 * With the native addon (native.ts) head size 8 runs in AVX2 (the same bits), which can also
 * read a shared prompt prefix where the KV cache keeps it once (attendShared; joinShared makes
 * each row's keys for every other path).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, TensorInfo } from "@tensorflow/tfjs-core";
import { biasedSoftmax } from "./biased-softmax.js";
import { nativeAttendServes, wasmAttend } from "./simd-attend.js";
import { isWasmBackend } from "./wasm-heap.js";

export const ATTEND = "OmlAttend";

export interface AttendAttrs {
  /** multiplies q·kᵀ before the bias is added */
  scale: number;
}

/**
 * A shared prompt prefix's keys and values, kept once per prefix instead of copied into every
 * batch row (kv-cache.ts): row b's first P keys are row rows[b] of k and v.
 */
export interface SharedKv {
  /** (G, nkv, P, hs), RoPE applied */
  k: tf.Tensor4D;
  /** (G, nkv, P, hs) */
  v: tf.Tensor4D;
  /** (B) int32, each < G */
  rows: tf.Tensor1D;
}

/** Whether the kernel takes these shapes (else the chain); k, v: the keys after the shared prefix when there is one. */
function kernelShapes(q: TensorInfo, k: TensorInfo, v: TensorInfo, bias: TensorInfo, shared?: { k: TensorInfo; v: TensorInfo; rows: TensorInfo }): boolean {
  const [B, nh, T, hs] = q.shape as [number, number, number, number];
  const [Bk, nkv, L, hsk] = k.shape as [number, number, number, number];
  const [Bb, one, Tb, Sb] = bias.shape as [number, number, number, number];
  const [, nkvS, P, hsS] = shared ? (shared.k.shape as [number, number, number, number]) : [0, nkv, 0, hs];
  const S = P + L;
  return (
    q.shape.length === 4 && k.shape.length === 4 && bias.shape.length === 4 && v.shape.join() === k.shape.join() &&
    Bk === B && hsk === hs && nkv > 0 && nh % nkv === 0 && one === 1 && Tb === T && Sb === S && (Bb === 1 || Bb === B) &&
    hs % 4 === 0 && S >= 4 && L >= T &&
    [q, k, v, bias].every((t) => t.dtype === "float32") &&
    (!shared || (shared.k.shape.length === 4 && shared.v.shape.join() === shared.k.shape.join() && nkvS === nkv && hsS === hs && shared.k.dtype === "float32" && shared.v.dtype === "float32" && shared.rows.dtype === "int32" && shared.rows.shape.join() === `${B}`))
  );
}

/** Where the kernel measured faster than the chain (see the header); hs: head size, rows: nrep·T. */
export function kernelPays(hs: number, rows: number): boolean {
  return hs <= 8 || rows <= 8 || (hs <= 16 && rows <= 32);
}

function kernelFunc({ inputs, backend, attrs }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { q, k, v, bias, kShared, vShared, rows } = inputs as { q: TensorInfo; k: TensorInfo; v: TensorInfo; bias: TensorInfo; kShared?: TensorInfo; vShared?: TensorInfo; rows?: TensorInfo };
  const shared = kShared && vShared && rows ? { k: kShared, v: vShared, rows } : undefined;
  const { scale } = attrs as unknown as AttendAttrs;
  if (!isWasmBackend(backend) || !kernelShapes(q, k, v, bias, shared)) {
    throw new Error(`${ATTEND}: wasm, float32, hs mod 4 = 0 and S ≥ 4 expected, got q [${q.shape}], k [${k.shape}], v [${v.shape}], bias [${bias.shape}]${shared ? `, shared k [${shared.k.shape}]` : ""}`);
  }
  return wasmAttend(backend, q, k, v, bias, scale, true, shared);
}

/** The wasm kernel (forward only). */
export function attendConfig(): KernelConfig {
  return { kernelName: ATTEND, backendName: "wasm", kernelFunc };
}

/**
 * The same as an op chain, with a gradient (training, and every shape or backend the kernel
 * does not take; the tests' reference): grouped scores, optionally soft-capped
 * cap·tanh(scale·s / cap) before the bias (gemma2), biased softmax, · v, heads merged.
 */
export function attendChain(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, scale: number, softcap?: number | null): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, nh, T, hs] = q.shape;
    const nkv = k.shape[1];
    const nrep = nh / nkv;
    const qg = tf.reshape(q, [B, nkv, nrep * T, hs]); // (B, nkv, nrep·T, hs)
    let scores = tf.matMul(qg, k, false, true) as tf.Tensor4D; // (B, nkv, nrep·T, S)
    if (softcap !== undefined && softcap !== null) {
      scores = tf.mul(tf.tanh(tf.div(tf.mul(scores, scale), softcap)), softcap) as tf.Tensor4D;
      scale = 1;
    }
    const probs = biasedSoftmax(scores, bias, scale); // softmax(scale·scores + bias) over keys; bias shared by the nrep heads
    const out = tf.reshape(tf.matMul(probs, v), [B, nh, T, hs]); // (B, nh, T, hs)
    return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [B, T, nh * hs]) as tf.Tensor3D;
  });
}

/**
 * y = merge_heads(softmax(scale·q·kᵀ + bias)·v), forward only (inference).
 * @param q (B, nh, T, hs), RoPE applied
 * @param k (B, nkv, S, hs), cache included, S ≥ T
 * @param v (B, nkv, S, hs)
 * @param bias (B or 1, 1, T, S) additive (MASKED where a query may not see a key)
 * @returns (B, T, nh·hs)
 */
export function attend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, scale: number): tf.Tensor3D {
  const [, nh, T, hs] = q.shape;
  if (tf.getKernel(ATTEND, tf.getBackend()) && kernelShapes(q, k, v, bias) && kernelPays(hs, (nh / k.shape[1]) * T)) {
    return attendKernel(q, k, v, bias, scale);
  }
  return attendChain(q, k, v, bias, scale);
}

/**
 * Whether attendShared takes a shared prefix as it is (the native attend8 on wasm: head size
 * 8); else the caller joins the prefix to each row's keys (joinShared) and calls attend.
 */
export function attendTakesShared(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, shared: SharedKv): boolean {
  return tf.getBackend() === "wasm" && tf.getKernel(ATTEND, "wasm") !== undefined && kernelShapes(q, k, v, bias, shared) && nativeAttendServes(q.shape[3], bias.shape[3]);
}

/**
 * attend() over keys that begin with a shared prefix, read where it is kept (attendTakesShared
 * must hold): the same values as attend() on joinShared's keys.
 * @param k (B, nkv, S − P, hs) each row's own keys after the prefix
 */
export function attendShared(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, scale: number, shared: SharedKv): tf.Tensor3D {
  return tf.engine().runKernel(ATTEND, { q, k, v, bias, kShared: shared.k, vShared: shared.v, rows: shared.rows }, { scale } as unknown as tf.NamedAttrMap) as tf.Tensor3D;
}

/** Each row's keys and values with its shared prefix in front: (B, nkv, P + L, hs). */
export function joinShared(k: tf.Tensor4D, v: tf.Tensor4D, shared: SharedKv): { k: tf.Tensor4D; v: tf.Tensor4D } {
  return tf.tidy(() => ({
    k: tf.concat([tf.gather(shared.k, shared.rows), k], 2) as tf.Tensor4D,
    v: tf.concat([tf.gather(shared.v, shared.rows), v], 2) as tf.Tensor4D,
  }));
}

/** The OmlAttend kernel itself (wasm; hs mod 4 = 0, S ≥ 4), whether it pays or not (tests, benchmarks). */
export function attendKernel(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, scale: number): tf.Tensor3D {
  return tf.engine().runKernel(ATTEND, { q, k, v, bias }, { scale } as unknown as tf.NamedAttrMap) as tf.Tensor3D;
}
