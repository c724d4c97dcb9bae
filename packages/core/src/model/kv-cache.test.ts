import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { initBackend } from "../backend.js";
import { joinShared, type SharedKv } from "../kernels/attend.js";
import { createKvCache, disposeKvCache, kvCacheLength, mergePrefixCaches, planSharedPrefixes, sharedKvOf } from "./kv-cache.js";

describe("planSharedPrefixes", () => {
  const sys = [1, 50, 51, 52, 53, 54]; // a 6-token "template"
  test("groups rows by the longest prefix they share, keeping one token per row", () => {
    const prompts = [[...sys, 9, 8], [1, 7, 7], [...sys, 3], [...sys, 9, 9, 9], [...sys, 2, 2], [1, 7, 8, 8]];
    expect(planSharedPrefixes(prompts)).toEqual({ prefixes: [sys], groupOf: [0, -1, 0, 0, 0, -1] });
  });

  test("the prefix stops one token short of the shortest prompt of the group", () => {
    const p = [1, 2, 3, 4, 5];
    expect(planSharedPrefixes([p, p, p, [...p, 6]])).toEqual({ prefixes: [[1, 2, 3, 4]], groupOf: [0, 0, 0, 0] });
  });

  test("too few rows or too short a prefix: no group", () => {
    expect(planSharedPrefixes([[...sys, 1], [...sys, 2], [...sys, 3]]).prefixes).toEqual([]); // 3 rows < 4
    expect(planSharedPrefixes([[1, 2, 3, 9], [1, 2, 3, 8], [1, 2, 3, 7], [1, 2, 3, 6]]).prefixes).toEqual([]); // 3 tokens < 4
  });

  test("two templates make two groups", () => {
    const a = [1, 10, 11, 12, 13];
    const b = [1, 20, 21, 22, 23, 24, 25];
    const prompts = [5, 6, 7, 8].flatMap((k) => [[...a, k], [...b, k, k]]);
    const plan = planSharedPrefixes(prompts);
    expect(plan.prefixes).toEqual([a, b]);
    expect(plan.groupOf).toEqual([0, 1, 0, 1, 0, 1, 0, 1]);
  });
});

describe("mergePrefixCaches", () => {
  test("keeps each group's cache once, right-aligned; rows pick theirs (zeros for none); frees the inputs", async () => {
    await initBackend("wasm");
    const before = tf.memory().numTensors;
    const cache = (P: number, v: number) => {
      const c = createKvCache(1);
      c.layers[0] = { k: tf.fill([1, 1, P, 2], v) as tf.Tensor4D, v: tf.fill([1, 1, P, 2], -v) as tf.Tensor4D };
      return c;
    };
    const merged = mergePrefixCaches([cache(1, 7), cache(3, 5)], [1, -1, 0], 1);
    expect(kvCacheLength(merged)).toBe(3);
    expect(merged.layers[0]).toBeUndefined(); // no row keys yet: only the prefixes
    expect(merged.prefix?.layers[0]?.k.shape).toEqual([3, 1, 3, 2]); // G + 1 = 3, not B
    const shared = sharedKvOf(merged, 0) as SharedKv;
    const rows = tf.tidy(() => joinShared(tf.zeros([3, 1, 0, 2]), tf.zeros([3, 1, 0, 2]), shared).k.arraySync() as number[][][][]);
    expect(rows.map((row) => (row[0] as number[][]).map((t) => t[0]))).toEqual([[5, 5, 5], [0, 0, 0], [0, 0, 7]]);
    const vRow0 = tf.tidy(() => (joinShared(tf.zeros([3, 1, 0, 2]), tf.zeros([3, 1, 0, 2]), shared).v.arraySync() as number[][][][])[0]?.[0]?.[1]);
    expect(vRow0).toEqual([-5, -5]);
    disposeKvCache(merged);
    expect(merged.prefix).toBeUndefined();
    expect(tf.memory().numTensors).toBe(before);
  });
});
