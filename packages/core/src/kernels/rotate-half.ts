/**
 * RoPE's rotate_half as one kernel: for each run of the last dimension (size rd),
 *   out[…, :rd/2] = −s · x[…, rd/2:]     out[…, rd/2:] = s · x[…, :rd/2]
 * with s = `sign` (1: transformers' rotate_half; −1: its transpose, i.e. the gradient).
 * Replaces two Slices, a Neg and a Concat per query/key tensor: with small heads (stories260K:
 * hs = 8, runs of 4 floats) those copies cost as much as the attention's matMuls. Registered
 * on wasm and cpu; `rotateHalf()` falls back to the op chain on any other backend
 * (tfjs-node). The values are the op chain's bit for bit (a negation is exact).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, TensorInfo } from "@tensorflow/tfjs-core";
import { readValues, zeroOutput, type DataBackend } from "./backend-data.js";

export const ROTATE_HALF = "OmlRotateHalf";

export interface RotateHalfAttrs {
  /** 1: rotate_half; −1: its transpose (the gradient) */
  sign: number;
}

/** out = rotate_half(x) · sign over runs of `rd` (the last dimension). */
export function rotateHalfValues(x: Float32Array, rd: number, sign: number, out: Float32Array): void {
  const h = rd / 2;
  const neg = -sign;
  for (let o = 0; o < x.length; o += rd) {
    for (let j = 0; j < h; j++) {
      out[o + j] = neg * (x[o + h + j] as number);
      out[o + h + j] = sign * (x[o + j] as number);
    }
  }
}

function kernelFunc({ inputs, backend, attrs }: Parameters<KernelConfig["kernelFunc"]>[0]): TensorInfo {
  const { x } = inputs as { x: TensorInfo };
  const b = backend as unknown as DataBackend;
  const out = zeroOutput(b, x.shape, "float32"); // allocate first: heap views go stale when it grows
  rotateHalfValues(readValues(b, x) as Float32Array, x.shape[x.shape.length - 1] as number, (attrs as unknown as RotateHalfAttrs).sign, out.values as Float32Array);
  return out.finish();
}

export function rotateHalfConfig(backendName: string): KernelConfig {
  return { kernelName: ROTATE_HALF, backendName, kernelFunc };
}

/** d rotate_half(x) = rotate_half with the opposite sign, applied to dy. */
export const rotateHalfGradConfig: tf.GradConfig = {
  kernelName: ROTATE_HALF,
  gradFunc: (dy, _saved, attrs) => ({ x: () => rotateHalfOp(dy as tf.Tensor, -(attrs as unknown as RotateHalfAttrs).sign) }),
};

function rotateHalfOp(x: tf.Tensor, sign: number): tf.Tensor {
  if (x.dtype === "float32" && tf.getKernel(ROTATE_HALF, tf.getBackend())) {
    return tf.engine().runKernel(ROTATE_HALF, { x }, { sign } as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  // Any other backend: the op chain transformers writes.
  return tf.tidy(() => {
    const rd = x.shape[x.shape.length - 1] as number;
    const [x1, x2] = tf.split(x, [rd / 2, rd / 2], -1) as [tf.Tensor, tf.Tensor];
    const r = tf.concat([tf.neg(x2), x1], -1);
    return sign === 1 ? r : tf.neg(r);
  });
}

/**
 * rotate_half([x1, x2]) = [−x2, x1] over the last dimension (even), differentiable.
 * @param x (…, rd) float32
 */
export function rotateHalf<T extends tf.Tensor>(x: T): T {
  return rotateHalfOp(x, 1) as T;
}
