import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { rope, ropeValues } from "./rope.js";

/** transformers' apply_rotary_pos_emb as tfjs ops: x·cos + cat(−x2, x1)·sin. */
function ropeChain(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const rd = x.shape[x.shape.length - 1] as number;
  const [x1, x2] = tf.split(x, [rd / 2, rd / 2], -1) as [tf.Tensor, tf.Tensor];
  return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), sin));
}

const values = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.7 + seed) * 3));

test("ropeValues by hand: one row of 4, forward and transpose", () => {
  const x = Float32Array.from([1, 2, 3, 4]);
  const cos = Float32Array.from([1, 0.5, 1, 0.5]);
  const sin = Float32Array.from([2, 3, 4, 5]);
  const out = new Float32Array(4);
  const dims = { B: 1, n: 1, T: 1, rd: 4, cosPerBatch: false };
  ropeValues(x, cos, sin, dims, false, out);
  // [x1·c − x3·s0, x2·c − x4·s1, x3·c + x1·s2, x4·c + x2·s3]
  expect(Array.from(out)).toEqual([1 - 3 * 2, 1 - 4 * 3, 3 + 1 * 4, 2 + 2 * 5]);
  ropeValues(x, cos, sin, dims, true, out);
  // [x1·c + x3·s2, x2·c + x4·s3, x3·c − x1·s0, x4·c − x2·s1]
  expect(Array.from(out)).toEqual([1 + 3 * 4, 1 + 4 * 5, 3 - 1 * 2, 2 - 2 * 3]);
});

for (const backend of ["wasm", "cpu"] as const) {
  describe(`rope on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    for (const [cosBatch, rd] of [[1, 8], [2, 8], [2, 16], [2, 6]] as const) {
      // rd 8 and 16: wasm's SIMD loop (one and two vectors a half); rd 6: the JS loop
      test(`values and gradient equal the op chain's (x (2, 3, 5, ${rd}), cos batch ${cosBatch})`, () => {
        const [x, cos, sin, w] = [values(30 * rd, 1), values(cosBatch * 5 * rd, 2), values(cosBatch * 5 * rd, 3), values(30 * rd, 4)];
        const [ours, chain, a, b] = tf.tidy(() => {
          const xt = tf.tensor4d(x, [2, 3, 5, rd]);
          const ct = tf.tensor4d(cos, [cosBatch, 1, 5, rd]);
          const st = tf.tensor4d(sin, [cosBatch, 1, 5, rd]);
          const wt = tf.tensor4d(w, [2, 3, 5, rd]);
          const g = tf.grad((v: tf.Tensor4D) => tf.sum(tf.mul(rope(v, ct, st), wt)))(xt);
          const gChain = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(ropeChain(v, ct, st), wt)))(xt);
          return [rope(xt, ct, st), ropeChain(xt, ct, st), g, gChain].map((t) => t.dataSync());
        });
        expect(Array.from(ours as Float32Array)).toEqual(Array.from(chain as Float32Array)); // bit for bit
        (a as Float32Array).forEach((v, i) => expect(Math.abs(v - ((b as Float32Array)[i] as number))).toBeLessThanOrEqual(1e-6 * (1 + Math.abs((b as Float32Array)[i] as number))));
      });
    }
  });
}
