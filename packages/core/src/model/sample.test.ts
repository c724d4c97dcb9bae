import { expect, test } from "vitest";
import type { Rng } from "../util/rng.js";
import { argmax, sampleToken } from "./sample.js";

/** An Rng whose nextFloat returns the given values in turn. */
function fixedRng(...floats: number[]): Rng {
  let i = 0;
  const nextFloat = (): number => floats[i++ % floats.length] as number;
  return { nextFloat, nextU32: () => 0, int: () => 0, normal: () => 0 };
}

const row = Float32Array.from([1, 3, 2, 3, 0]);

test("argmax takes the first maximum, within a row of a batch", () => {
  expect(argmax(row)).toBe(1);
  expect(argmax(Float32Array.from([9, 9, 0, 5, 7, 7]), 3, 3)).toBe(1); // row [5, 7, 7]
  expect(sampleToken(row, 0, 5, {}, fixedRng(0.99))).toBe(1); // temperature 0: greedy
});

test("temperature sampling draws from softmax(logits / T) by inverse CDF", () => {
  // logits [0, ln 3] at T = 1: probabilities [1/4, 3/4]; candidates sorted [id 1, id 0]
  const two = Float32Array.from([0, Math.log(3)]);
  expect(sampleToken(two, 0, 2, { temperature: 1 }, fixedRng(0.74))).toBe(1);
  expect(sampleToken(two, 0, 2, { temperature: 1 }, fixedRng(0.76))).toBe(0);
});

test("topK keeps ties at the k-th value; topP keeps the shortest prefix reaching p", () => {
  // topK 1 on [1, 3, 2, 3, 0] keeps both 3s (ids 1 and 3, in id order), each with probability 1/2
  expect(sampleToken(row, 0, 5, { temperature: 1, topK: 1 }, fixedRng(0.49))).toBe(1);
  expect(sampleToken(row, 0, 5, { temperature: 1, topK: 1 }, fixedRng(0.51))).toBe(3);
  // probabilities of [0, ln 3]: 3/4 and 1/4; topP 0.7 keeps only id 1 (0.75 ≥ 0.7)
  const two = Float32Array.from([0, Math.log(3)]);
  expect(sampleToken(two, 0, 2, { temperature: 1, topP: 0.7 }, fixedRng(0.99))).toBe(1);
  expect(sampleToken(two, 0, 2, { temperature: 1, topP: 0.8 }, fixedRng(0.99))).toBe(0);
});
