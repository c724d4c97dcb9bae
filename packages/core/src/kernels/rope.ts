/**
 * RoPE as one kernel, OmlRope: for each head row of x (B, n, T, rd) and its position's
 * cos/sin rows (B or 1, 1, T, rd), with h = rd/2 and j < h,
 *   forward:    y[j]   = x[j]·cos[j]     − x[h+j]·sin[j]        (x·cos + rotate_half(x)·sin)
 *               y[h+j] = x[h+j]·cos[h+j] + x[j]·sin[h+j]
 *   transpose:  y[j]   = x[j]·cos[j]     + x[h+j]·sin[h+j]      (its gradient: dy·cos + rotate_halfᵀ(dy·sin))
 *               y[h+j] = x[h+j]·cos[h+j] − x[j]·sin[j]
 * Replaces rotate_half's kernel plus two broadcasting Muls and an Add per query/key tensor
 * (four passes and three temporaries); each product and the sum are rounded to float32 as the
 * op chain rounds them (Math.fround of a double product or sum of float32s is the float32
 * operation), so the values are the chain's bit for bit. Registered on wasm and cpu; on any
 * other backend (tfjs-node) `rope()` runs the op chain.
 *
 * On wasm with rd/2 mod 4 = 0 the loop is wasm SIMD (simd-rope.ts); elsewhere the JS loop below.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, TensorInfo } from "@tensorflow/tfjs-core";
import { readValues, zeroOutput, type DataBackend } from "./backend-data.js";
import { wasmRope } from "./simd-rope.js";
import { isWasmBackend } from "./wasm-heap.js";

export const ROPE = "OmlRope";

export interface RopeAttrs {
  /** false: RoPE; true: its transpose (the gradient with respect to x) */
  transpose: boolean;
}

const f = Math.fround;

/**
 * y = RoPE(x) (or its transpose) over rows of rd; x has `rowsPerCosRow`·(cos rows) rows when
 * cos is per batch, and cos/sin rows repeat every T rows per head.
 * @param x (B, n, T, rd) values
 * @param cos (Bc, 1, T, rd) values, Bc = B or 1
 */
export function ropeValues(x: Float32Array, cos: Float32Array, sin: Float32Array, dims: { B: number; n: number; T: number; rd: number; cosPerBatch: boolean }, transpose: boolean, out: Float32Array): void {
  const { B, n, T, rd, cosPerBatch } = dims;
  const h = rd / 2;
  const s = transpose ? -1 : 1;
  for (let b = 0; b < B; b++) {
    const cb = cosPerBatch ? b * T * rd : 0;
    for (let head = 0; head < n; head++) {
      for (let t = 0; t < T; t++) {
        const o = ((b * n + head) * T + t) * rd;
        const c = cb + t * rd;
        for (let j = 0; j < h; j++) {
          const x1 = x[o + j] as number;
          const x2 = x[o + h + j] as number;
          const c1 = cos[c + j] as number;
          const c2 = cos[c + h + j] as number;
          // forward: sin[j] with x2, sin[h+j] with x1; transpose: the other way round
          const s1 = sin[c + (transpose ? h + j : j)] as number;
          const s2 = sin[c + (transpose ? j : h + j)] as number;
          out[o + j] = f(f(x1 * c1) - s * f(x2 * s1));
          out[o + h + j] = f(f(x2 * c2) + s * f(x1 * s2));
        }
      }
    }
  }
}

function kernelFunc({ inputs, backend, attrs }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { x, cos, sin } = inputs as { x: TensorInfo; cos: TensorInfo; sin: TensorInfo };
  const [B, n, T, rd] = x.shape as [number, number, number, number];
  const { transpose } = attrs as unknown as RopeAttrs;
  if (isWasmBackend(backend) && (rd / 2) % 4 === 0) {
    return wasmRope(backend, x, cos, sin, transpose);
  }
  const b = backend as unknown as DataBackend;
  const out = zeroOutput(b, x.shape, "float32"); // allocate first: heap views go stale when it grows
  const dims = { B, n, T, rd, cosPerBatch: cos.shape[0] === B && B > 1 };
  ropeValues(readValues(b, x) as Float32Array, readValues(b, cos) as Float32Array, readValues(b, sin) as Float32Array, dims, transpose, out.values as Float32Array);
  return out.finish();
}

export function ropeConfig(backendName: string): KernelConfig {
  return { kernelName: ROPE, backendName, kernelFunc };
}

/** dx = RoPEᵀ(dy); cos and sin are functions of positions only: zero gradients. */
export const ropeGradConfig: tf.GradConfig = {
  kernelName: ROPE,
  inputsToSave: ["cos", "sin"],
  gradFunc: (dy, saved, attrs) => {
    const [cos, sin] = saved as [tf.Tensor4D, tf.Tensor4D];
    const transpose = !(attrs as unknown as RopeAttrs).transpose;
    return { x: () => ropeOp(dy as tf.Tensor4D, cos, sin, transpose), cos: () => tf.zerosLike(cos), sin: () => tf.zerosLike(sin) };
  },
};

/** transformers' rotate_half: cat(−x2, x1) over the last dimension. */
function rotateHalfChain(x: tf.Tensor): tf.Tensor {
  const rd = x.shape[x.shape.length - 1] as number;
  const [x1, x2] = tf.split(x, [rd / 2, rd / 2], -1) as [tf.Tensor, tf.Tensor];
  return tf.concat([tf.neg(x2), x1], -1);
}

function ropeOp(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D, transpose: boolean): tf.Tensor4D {
  if (x.dtype === "float32" && tf.getKernel(ROPE, tf.getBackend())) {
    return tf.engine().runKernel(ROPE, { x, cos, sin }, { transpose } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  }
  // Any other backend: the op chain transformers writes (tfjs differentiates it itself).
  return tf.tidy(() => {
    if (!transpose) {
      return tf.add(tf.mul(x, cos), tf.mul(rotateHalfChain(x), sin)) as tf.Tensor4D;
    }
    return tf.sub(tf.mul(x, cos), rotateHalfChain(tf.mul(x, sin))) as tf.Tensor4D; // rotate_halfᵀ = −rotate_half
  });
}

/**
 * x·cos + rotate_half(x)·sin, differentiable in x.
 * @param x (B, n, T, rd) float32
 * @param cos (B or 1, 1, T, rd)
 * @param sin (B or 1, 1, T, rd)
 */
export function rope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  return ropeOp(x, cos, sin, false);
}
