import * as tf from "@tensorflow/tfjs-core";
import { Buffer } from "node:buffer";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { attentionBias, MASKED } from "../model/attention.js";
import { maxScaledError } from "../train/gradient-check.js";
import { BIASED_SOFTMAX_GRAD, biasedSoftmax, biasedSoftmaxChain, biasedSoftmaxValues } from "./biased-softmax.js";
import { heapAddress, WebAssemblyApi, type WasmBackendLike } from "./wasm-heap.js";

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

/**
 * simd-softmax.ts's module as of commit db848e2, before its forward was reworked for speed
 * (z kept in the output between passes, the row loop tested at its end, …): the kernel now
 * must give its bits, forward and backward. Regenerate: softmaxModuleBytes() of that commit.
 */
const KERNEL_BEFORE = [
  "AGFzbQEAAAABFQJgB39/f39/f30AYAd/f39/f399AAIPAQNlbnYGbWVtb3J5AgAAAwMCAAEHFgIHZm9yd2FyZAAACGJhY2t3YXJkAAEKthIC+AsbAX8BfwF/",
  "AX8BfwF9AX0BfQF7AXsBewF7AXsBewF7AXsBewF7AXsBewF7AXsBewF7AXsBewF7/Qw7qrg/O6q4PzuquD87qrg/IRj9DAByMb8AcjG/AHIxvwByMb8hGf0M",
  "jr6/tY6+v7WOvr+1jr6/tSEa/QxPrK7CT6yuwk+srsJPrK7CIRv9DH8AQEt/AEBLfwBAS38AQEshHP0M+/9/P/v/fz/7/38/+/9/PyEd/Qzj/v8+4/7/PuP+",
  "/z7j/v8+IR79DECtKj5ArSo+QK0qPkCtKj4hH/0MDZ0rPQ2dKz0NnSs9DZ0rPSEg/QzOzwc8zs8HPM7PBzzOzwc8ISEgBv0TIQ/9DAAAAAABAAAAAgAAAAMA",
  "AABBBCAFQQNxa/0R/T8hFyAFQQRsIQogBUF8cUEEbCEJQQAhByABIQsCQANAIANFDQH9DAAAgP8AAID/AACA/wAAgP8hEEEAIQgCQANAIAggCU4NASAQIAAg",
  "CGr9AAAAIA/95gEgCyAIav0AAAD95AH96wEhECAIQRBqIQgMAAsLIAogCUoEQCAFQQROBEAgCkEQayEIIBAgACAIav0AAAAgD/3mASALIAhq/QAAAP3kAf3r",
  "ASEQBSAJIQgCQANAIAggCk4NASAQIAAgCGoqAgAgBpQgCyAIaioCAJL9E/3rASEQIAhBBGohCAwACwsLCyAQIBAgEP0NCAkKCwwNDg8AAQIDBAUGB/3rASIQ",
  "IBAgEP0NBAUGBwABAgMMDQ4PCAkKC/3rASER/QwAAAAAAAAAAAAAAAAAAAAAIRBDAAAAACENQQAhCAJAA0AgCCAJTg0BIAIgCGogACAIav0AAAAgD/3mASAL",
  "IAhq/QAAAP3kASAR/eUBIhIgG/1GIhP9UwR7IBIgE/1OIRIgEiAY/eYBIBz95AEiFEEX/asBIRYgFCAc/eUBIRQgFCAa/eYBIBQgGf3mASAS/eQB/eQBIRUg",
  "ISAV/eYBICD95AEgFf3mASAf/eQBIBX95gEgHv3kASAV/eYBIB395AEgFSAW/eYB/eYBIBb95AEgE/1OBf0MAAAAAAAAAAAAAAAAAAAAAAsiEv0LAAAgECAS",
  "/eQBIRAgCEEQaiEIDAALCyAKIAlKBEAgBUEETgRAIApBEGshCCACIAhqIAAgCGr9AAAAIA/95gEgCyAIav0AAAD95AEgEf3lASISIBv9RiIT/VMEeyASIBP9",
  "TiESIBIgGP3mASAc/eQBIhRBF/2rASEWIBQgHP3lASEUIBQgGv3mASAUIBn95gEgEv3kAf3kASEVICEgFf3mASAg/eQBIBX95gEgH/3kASAV/eYBIB795AEg",
  "Ff3mASAd/eQBIBUgFv3mAf3mASAW/eQBIBP9TgX9DAAAAAAAAAAAAAAAAAAAAAALIhL9CwAAIBAgEiAX/U795AEhEAUgCSEIAkADQCAIIApODQEgAiAIaiAA",
  "IAhqKgIAIAaUIAsgCGoqAgCS/RMgEf3lASISIBv9RiIT/VMEeyASIBP9TiESIBIgGP3mASAc/eQBIhRBF/2rASEWIBQgHP3lASEUIBQgGv3mASAUIBn95gEg",
  "Ev3kAf3kASEVICEgFf3mASAg/eQBIBX95gEgH/3kASAV/eYBIB795AEgFf3mASAd/eQBIBUgFv3mAf3mASAW/eQBIBP9TgX9DAAAAAAAAAAAAAAAAAAAAAAL",
  "/R8AIg44AgAgDSAOkiENIAhBBGohCAwACwsLC0MAAIA//RMgECAQIBD9DQgJCgsMDQ4PAAECAwQFBgf95AEiECAQIBD9DQQFBgcAAQIDDA0ODwgJCgv95AEg",
  "Df0T/eQB/ecBIhH9HwAhDkEAIQgCQANAIAggCU4NASACIAhqIAIgCGr9AAAAIBH95gH9CwAAIAhBEGohCAwACwsgCiAJSgRAIAkhCAJAA0AgCCAKTg0BIAIg",
  "CGogAiAIaioCACAOlDgCACAIQQRqIQgMAAsLCyAAIApqIQAgAiAKaiECIAdBAWoiByAERgRAQQAhBwsgASAHIApsaiELIANBAWshAwwACwsLuQYbAX8BfwF/",
  "AX8BfwF9AX0BfQF7AXsBewF7AXsBewF7AXsBewF7AXsBewF7AXsBewF7AXsBewF7/Qw7qrg/O6q4PzuquD87qrg/IRj9DAByMb8AcjG/AHIxvwByMb8hGf0M",
  "jr6/tY6+v7WOvr+1jr6/tSEa/QxPrK7CT6yuwk+srsJPrK7CIRv9DH8AQEt/AEBLfwBAS38AQEshHP0M+/9/P/v/fz/7/38/+/9/PyEd/Qzj/v8+4/7/PuP+",
  "/z7j/v8+IR79DECtKj5ArSo+QK0qPkCtKj4hH/0MDZ0rPQ2dKz0NnSs9DZ0rPSEg/QzOzwc8zs8HPM7PBzzOzwc8ISEgBv0TIQ/9DAAAAAABAAAAAgAAAAMA",
  "AABBBCAFQQNxa/0R/T8hFyAFQQRsIQogBUF8cUEEbCEJQQAhByABIQsCQANAIANFDQH9DAAAAAAAAAAAAAAAAAAAAAAhEEMAAAAAIQ1BACEIAkADQCAIIAlO",
  "DQEgECAAIAhq/QAAACABIAhq/QAAAP3mAf3kASEQIAhBEGohCAwACwsgCiAJSgRAIAVBBE4EQCAKQRBrIQggECAAIAhq/QAAACABIAhq/QAAAP3mASAX/U79",
  "5AEhEAUgCSEIAkADQCAIIApODQEgDSAAIAhqKgIAIAEgCGoqAgCUkiENIAhBBGohCAwACwsLCyAQIBAgEP0NCAkKCwwNDg8AAQIDBAUGB/3kASIQIBAgEP0N",
  "BAUGBwABAgMMDQ4PCAkKC/3kASAN/RP95AEiEf0fACEMQQAhCAJAA0AgCCAJTg0BIAIgCGogASAIav0AAAAhEiAAIAhq/QAAACAS/eYBIBEgEv3mAf3lASAP",
  "/eYB/QsAACAIQRBqIQgMAAsLIAogCUoEQCAFQQROBEAgCkEQayEIIAIgCGogASAIav0AAAAhEiAAIAhq/QAAACAS/eYBIBEgEv3mAf3lASAP/eYB/QsAAAUg",
  "CSEIAkADQCAIIApODQEgAiAIaiABIAhqKgIAIQ0gACAIaioCACANlCAMIA2UkyAGlDgCACAIQQRqIQgMAAsLCwsgACAKaiEAIAIgCmohAiABIApqIQEgA0EB",
  "ayEDDAALCws=",
].join("");

type RowsFn = (x: number, bias: number, out: number, rows: number, T: number, S: number, scale: number) => void;

describe("the wasm kernel gives the bits of the kernel before (db848e2)", () => {
  expectNoLeakedTensors("wasm");

  /** The old module's forward and backward on the tfjs heap, into a new tensor's memory: its values. */
  function runBefore(fn: "forward" | "backward", x: tf.Tensor, bias: tf.Tensor, scale: number): Float32Array {
    const b = tf.backend() as unknown as WasmBackendLike;
    const module = new WebAssemblyApi.Module(new Uint8Array(Buffer.from(KERNEL_BEFORE, "base64")));
    const kernel = new WebAssemblyApi.Instance(module, { env: { memory: b.wasm.asm.memory } }).exports[fn] as RowsFn;
    const out = tf.zeros(x.shape);
    const [xA, biasA, outA] = [x, bias, out].map((t) => heapAddress(b, t as unknown as tf.TensorInfo)) as [number, number, number];
    const S = x.shape[x.shape.length - 1] as number;
    if (fn === "backward") {
      kernel(xA, biasA, outA, x.size / S, 1, S, scale);
    } else {
      const [B, H, R] = x.shape as [number, number, number, number];
      const [Bb, , T] = bias.shape as [number, number, number, number];
      if (Bb === 1) {
        kernel(xA, biasA, outA, B * H * R, T, S, scale);
      } else {
        for (let i = 0; i < B; i++) {
          kernel(xA + i * H * R * S * 4, biasA + i * T * S * 4, outA + i * H * R * S * 4, H * R, T, S, scale);
        }
      }
    }
    const values = out.dataSync() as Float32Array;
    out.dispose();
    return values;
  }

  /** The indices (the first 5) where the two differ in any bit. */
  function differingBits(got: tf.TypedArray, want: Float32Array): number[] {
    const [g, w] = [new Uint32Array(Float32Array.from(got).buffer), new Uint32Array(want.buffer, want.byteOffset, want.length)];
    expect(g.length).toBe(w.length);
    return Array.from(g.keys()).filter((i) => g[i] !== w[i]).slice(0, 5);
  }

  // every S mod 4, rows narrower than a vector, one and several pairs of vectors, stories260K's batched check (S 53, T 16; S 17)
  const BIT_CASES: Case[] = [
    ...CASES,
    { B: 2, H: 2, nrep: 2, T: 16, S: 53, Bb: 2 },
    { B: 2, H: 2, nrep: 2, T: 17, S: 17, Bb: 1 },
    { B: 2, H: 1, nrep: 1, T: 2, S: 2, Bb: 2 },
    ...[4, 6, 7, 8, 11, 12, 67].map((S) => ({ B: 2, H: 2, nrep: 2, T: 3, S, Bb: 2 })),
  ];

  test.each(BIT_CASES.map((c) => [name(c), c] as const))("forward and backward: %s", (_, c) => {
    tf.tidy(() => {
      for (const [seed, spread, scale] of [[7, 1, 0.35], [8, 100, 0.35], [9, 1, 1]] as const) {
        const { scores: base, bias } = inputs(c, seed);
        const scores = tf.mul(base, spread) as tf.Tensor4D; // × 100: unmasked scores far below the max too (exp's cutoff)
        const probs = biasedSoftmax(scores, bias, scale);
        expect(differingBits(probs.dataSync(), runBefore("forward", scores, bias, scale))).toEqual([]);
        const dy = tf.randomNormal(scores.shape, 0, 1, "float32", seed + 100);
        const dx = tf.engine().runKernel(BIASED_SOFTMAX_GRAD, { dy, probs }, { scale } as unknown as tf.NamedAttrMap) as tf.Tensor;
        expect(differingBits(dx.dataSync(), runBefore("backward", dy, probs, scale))).toEqual([]);
      }
    });
  });

  test("exp's cutoff to the bit, ±0, denormals, NaN, a fully masked row; every S mod 4, rows narrower than 4", () => {
    tf.tidy(() => {
      const cut = new Float32Array([-87.33654022216797, 0]); // the cutoff, then the float32 just below it
      cut[1] = -87.33654022216797;
      new Int32Array(cut.buffer, 4)[0]! += 1;
      const row = [...cut, -87.3, -87.5, -88, -0, 1e-40, -1e-40, -103, -150, NaN, -0.5, 2e-7, -3, -44];
      for (const S of [3, 5, 6, 7, 8, 13, 16]) {
        // 2 batch rows of 8 rows, a 0 first in each: the max is 0 (or 2e-7, under half an ulp of the cutoff), so d = z to the bit
        const at = (i: number): [number, number, number] => [Math.floor(i / (8 * S)), Math.floor(i / S) % 8, i % S]; // batch row, row, key
        const values = Array.from({ length: 16 * S }, (_, i) => {
          const [, r, j] = at(i);
          return j === 0 ? 0 : (row[(j - 1 + 2 * r) % row.length] as number);
        });
        const masked = (i: number): boolean => {
          const [b, r, j] = at(i);
          return (b === 0 && r === 0) || (j > 0 && (j + r) % 5 === 4); // batch row 0's first row fully masked, a few keys of the others
        };
        const scores = tf.tensor4d(values, [2, 1, 8, S]);
        const bias = tf.tensor4d(Array.from({ length: 16 * S }, (_, i) => (masked(i) ? MASKED : 0)), [2, 1, 8, S]);
        expect(differingBits(biasedSoftmax(scores, bias, 1).dataSync(), runBefore("forward", scores, bias, 1))).toEqual([]);
      }
    });
  });
});
