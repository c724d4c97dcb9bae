import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { broadcastBinary } from "./binary-broadcast.js";

describe("broadcastBinary by hand", () => {
  test("(2, 3) + (3), (2, 1) · (1, 3), scalar − (2), (2, 2) / (2, 1)", () => {
    const run = (op: "add" | "sub" | "mul" | "div", a: number[], as: number[], b: number[], bs: number[], os: number[]): number[] => {
      const out = new Float32Array(os.reduce((p, d) => p * d, 1));
      broadcastBinary(op, Float32Array.from(a), as, Float32Array.from(b), bs, os, out);
      return Array.from(out);
    };
    expect(run("add", [1, 2, 3, 4, 5, 6], [2, 3], [10, 20, 30], [3], [2, 3])).toEqual([11, 22, 33, 14, 25, 36]);
    expect(run("mul", [2, 3], [2, 1], [1, 10, 100], [1, 3], [2, 3])).toEqual([2, 20, 200, 3, 30, 300]);
    expect(run("sub", [5], [], [1, 2], [2], [2])).toEqual([4, 3]);
    expect(run("div", [2, 4, 6, 8], [2, 2], [2, 4], [2, 1], [2, 2])).toEqual([1, 2, 1.5, 2]);
  });
});

describe("broadcasting binary ops on cpu", () => {
  expectNoLeakedTensors("cpu");

  test("RoPE's (B, nh, T, hs) · (B, 1, T, hs) and its gradient (a sum over the broadcast axis)", () => {
    tf.tidy(() => {
      const x = tf.tensor(Float32Array.from({ length: 2 * 3 * 4 * 2 }, (_, i) => i), [2, 3, 4, 2]);
      const c = tf.tensor(Float32Array.from({ length: 2 * 4 * 2 }, (_, i) => 1 + i / 10), [2, 1, 4, 2]);
      const y = tf.mul(x, c).arraySync() as number[][][][];
      expect(y[1]?.[2]?.[3]?.[1]).toBeCloseTo((1 * 24 + 2 * 8 + 3 * 2 + 1) * (1 + (8 + 7) / 10), 4);
      const g = tf.grad((cc: tf.Tensor) => tf.sum(tf.mul(x, cc)))(c).arraySync() as number[][][][];
      // d/dc[b, 0, t, k] = Σ_h x[b, h, t, k]
      expect(g[0]?.[0]?.[1]?.[0]).toBeCloseTo(2 + 10 + 18, 5);
    });
  });

  test("same shapes and int32 operands (tfjs's kernel) give the plain results", () => {
    tf.tidy(() => {
      expect(tf.add(tf.tensor1d([1, 2], "int32"), tf.scalar(3, "int32")).arraySync()).toEqual([4, 5]);
      expect(tf.sub(tf.tensor1d([1, 2]), tf.tensor1d([3, 5])).arraySync()).toEqual([-2, -3]);
    });
  });
});
