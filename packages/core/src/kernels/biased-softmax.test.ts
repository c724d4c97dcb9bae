import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { attentionBias, MASKED } from "../model/attention.js";
import { maxScaledError } from "../train/gradient-check.js";
import { biasedSoftmax, biasedSoftmaxChain, biasedSoftmaxValues } from "./biased-softmax.js";

/** One attention shape: batch, kv heads, nrep, new tokens T, keys S, bias batch (B or 1). */
interface Case {
  B: number;
  H: number;
  nrep: number;
  T: number;
  S: number;
  Bb: number;
}

const CASES: Case[] = [
  { B: 2, H: 4, nrep: 2, T: 5, S: 5, Bb: 2 }, // prefill, S mod 4 = 1
  { B: 3, H: 2, nrep: 1, T: 1, S: 9, Bb: 3 }, // decode: 1 query, 8 cached keys
  { B: 2, H: 4, nrep: 2, T: 1, S: 1, Bb: 1 }, // decode of the first token: rows of one key
  { B: 2, H: 1, nrep: 3, T: 3, S: 3, Bb: 1 }, // rows narrower than a vector
  { B: 1, H: 3, nrep: 2, T: 7, S: 64, Bb: 1 }, // 57 cached keys, no mask
  { B: 4, H: 4, nrep: 2, T: 30, S: 30, Bb: 4 }, // stories260K's check, S mod 4 = 2
  { B: 2, H: 2, nrep: 2, T: 16, S: 20, Bb: 2 }, // S mod 4 = 0
];

/** Scores ~N(0, 3²) and attention's bias: causal, with 0–2 left-padded keys per row when Bb = B. */
function inputs(c: Case, seed: number): { scores: tf.Tensor4D; bias: tf.Tensor4D } {
  const scores = tf.randomNormal([c.B, c.H, c.nrep * c.T, c.S], 0, 3, "float32", seed) as tf.Tensor4D;
  if (c.Bb === 1) {
    return { scores, bias: attentionBias(c.T, c.S) };
  }
  const mask = tf.tensor2d(Array.from({ length: c.B * c.S }, (_, i) => (i % c.S < Math.floor(i / c.S) % 3 ? 0 : 1)), [c.B, c.S], "int32");
  const bias = attentionBias(c.T, c.S, mask);
  mask.dispose();
  return { scores, bias };
}

const name = (c: Case): string => `B ${c.B}, kv heads ${c.H}, nrep ${c.nrep}, T ${c.T}, S ${c.S}, bias batch ${c.Bb}`;

test("biasedSoftmaxValues by hand: scale, bias row t = r mod T, a masked key", () => {
  // B = H = 1, R = 2 rows (nrep 2, T 1), S = 2; bias (1, 1, 1, 2) masks key 1
  const out = new Float32Array(4);
  biasedSoftmaxValues(Float32Array.from([2, 0, Math.log(3) * 2, 0]), Float32Array.from([0, MASKED]), { B: 1, H: 1, R: 2, S: 2, T: 1, Bb: 1 }, 0.5, out);
  expect(Array.from(out)).toEqual([1, 0, 1, 0]);
  // no mask: softmax([1, 0]) and softmax([ln 3, 0]) = [3/4, 1/4]
  biasedSoftmaxValues(Float32Array.from([2, 0, Math.log(3) * 2, 0]), Float32Array.from([0, 0]), { B: 1, H: 1, R: 2, S: 2, T: 1, Bb: 1 }, 0.5, out);
  expect(out[0]).toBeCloseTo(Math.E / (Math.E + 1), 6);
  expect(out[2]).toBeCloseTo(0.75, 6);
});

for (const backend of ["wasm", "cpu"] as const) {
  describe(`biasedSoftmax on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test.each(CASES.map((c) => [name(c), c] as const))("values as the op chain: %s", (_, c) => {
      tf.tidy(() => {
        const { scores, bias } = inputs(c, 7);
        const got = biasedSoftmax(scores, bias, 0.35);
        const want = biasedSoftmaxChain(scores, bias, 0.35);
        expect(got.shape).toEqual(scores.shape);
        const [g, w] = [got.dataSync(), want.dataSync()];
        expect(maxScaledError(g, w)).toBeLessThan(2e-7); // a float32 rounding or two
        // masked keys: exactly 0, wherever the chain has 0
        expect(Array.from(g, (p, i) => (p === 0) === (w[i] === 0)).every(Boolean)).toBe(true);
      });
    });

    test.each(CASES.map((c) => [name(c), c] as const))("gradient as the op chain's: %s", (_, c) => {
      tf.tidy(() => {
        const { scores, bias } = inputs(c, 11);
        const w = tf.randomNormal(scores.shape, 0, 1, "float32", 13);
        const loss = (f: typeof biasedSoftmax) => (s: tf.Tensor) => tf.sum(tf.mul(f(s as tf.Tensor4D, bias, 0.35), w));
        const got = tf.grad(loss(biasedSoftmax))(scores);
        const want = tf.grad(loss(biasedSoftmaxChain))(scores);
        expect(maxScaledError(got.dataSync(), want.dataSync())).toBeLessThan(2e-7);
      });
    });

    test("a fully masked row: the chain's finite probabilities, no NaN; softcap's scale 1", () => {
      tf.tidy(() => {
        const scores = tf.randomNormal([2, 2, 4, 6], 0, 1, "float32", 5) as tf.Tensor4D;
        const bias = tf.concat([tf.fill([1, 1, 2, 6], MASKED), tf.zeros([1, 1, 2, 6])]) as tf.Tensor4D; // batch row 0: every key masked
        const got = biasedSoftmax(scores, bias, 1);
        const g = got.dataSync();
        expect(g.every(Number.isFinite)).toBe(true);
        expect(maxScaledError(g, biasedSoftmaxChain(scores, bias, 1).dataSync())).toBeLessThan(2e-7);
        const rowSums = tf.sum(got, -1).dataSync();
        expect(Math.max(...Array.from(rowSums, (s) => Math.abs(s - 1)))).toBeLessThan(1e-6);
      });
    });

    test("the bias gets a zero gradient (a mask needs none), so tf.grads over both works", () => {
      tf.tidy(() => {
        const { scores, bias } = inputs(CASES[0] as Case, 3);
        const [, db] = tf.grads((s: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(biasedSoftmax(s as tf.Tensor4D, b as tf.Tensor4D, 0.35))))([scores, bias]);
        expect(db?.shape).toEqual(bias.shape);
        expect(Array.from((db as tf.Tensor).dataSync()).every((x) => x === 0)).toBe(true);
      });
    });

    test("a bias that is not attention's is refused", () => {
      tf.tidy(() => {
        const scores = tf.zeros([2, 2, 6, 4]) as tf.Tensor4D;
        expect(() => biasedSoftmax(scores, tf.zeros([2, 1, 4, 4]) as tf.Tensor4D, 1)).toThrow(/bias \(B or 1, 1, T, S\)/); // 6 rows, T 4
        expect(() => biasedSoftmax(scores, tf.zeros([3, 1, 3, 4]) as tf.Tensor4D, 1)).toThrow(/bias \(B or 1, 1, T, S\)/);
      });
    });
  });
}
