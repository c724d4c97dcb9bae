import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, expect, test } from "vitest";
import { initBackend } from "../backend.js";
import { attentionBias, MASKED, positionIdsFromMask } from "./attention.js";

beforeAll(async () => {
  await initBackend("cpu");
});

const M = MASKED;

test("attentionBias: causal over the last T of S keys, plus padded keys masked", () => {
  const n = tf.memory().numTensors;
  // T = 2 new tokens after P = 2 cached: query 0 sits at index 2 (sees keys 0..2), query 1 at 3
  const causal = attentionBias(2, 4);
  expect(causal.shape).toEqual([1, 1, 2, 4]);
  expect(causal.arraySync()).toEqual([[[[0, 0, 0, M], [0, 0, 0, 0]]]]);
  // row 0: key 0 is padding
  const mask = tf.tensor2d([[0, 1, 1, 1], [1, 1, 1, 1]], undefined, "int32");
  const padded = attentionBias(2, 4, mask);
  expect(padded.shape).toEqual([2, 1, 2, 4]);
  expect(padded.arraySync()).toEqual([[[[M, 0, 0, M], [M, 0, 0, 0]]], [[[0, 0, 0, M], [0, 0, 0, 0]]]]);
  tf.dispose([causal, mask, padded]);
  expect(tf.memory().numTensors).toBe(n);
});

test("positionIdsFromMask: cumsum − 1 from the first real token, 1 on padding", () => {
  const n = tf.memory().numTensors;
  const mask = tf.tensor2d([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], undefined, "int32");
  const all = positionIdsFromMask(mask, 5);
  expect(all.arraySync()).toEqual([[1, 1, 0, 1, 2], [0, 1, 2, 3, 4], [0, 1, 2, 1, 1]]);
  const last = positionIdsFromMask(mask, 1);
  expect(last.arraySync()).toEqual([[2], [4], [1]]);
  tf.dispose([mask, all, last]);
  expect(tf.memory().numTensors).toBe(n);
});
