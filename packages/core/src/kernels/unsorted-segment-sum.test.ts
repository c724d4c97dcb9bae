import * as tf from "@tensorflow/tfjs-core";
import { test, expect } from "vitest";
import { initBackend } from "../backend.js";
for (const be of ["cpu", "wasm"] as const) test(be, async () => {
  await initBackend(be);
  expect(tf.getBackend()).toBe(be);
  const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.gather(x, [0, 0, 1, 3]), tf.tensor2d([[1,2],[3,4],[5,6],[7,8]]))))(tf.ones([4, 2]));
  expect(g.arraySync()).toEqual([[4, 6], [5, 6], [0, 0], [7, 8]]);
});
