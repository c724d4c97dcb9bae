/**
 * Shared-prefix generation on stories260K: rows grouped by prefix (two "templates", rows
 * of no group, different lengths) must generate exactly what each prompt generates alone.
 */
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../backend.js";
import { generate } from "./generate.js";
import { planSharedPrefixes } from "./kv-cache.js";
import { disposeModel, loadModel, type Model } from "./load-model.js";

const DIR = path.resolve(__dirname, "../../../../../shared/models/stories260K");

describe("generate with shared prefixes (wasm)", () => {
  let model: Model;
  let before = 0;
  beforeAll(async () => {
    await initBackend("wasm");
    before = tf.memory().numTensors;
    model = await loadModel(DIR);
  });
  afterAll(() => {
    disposeModel(model);
    expect(tf.memory().numTensors).toBe(before);
  });

  test("batched equals one at a time", async () => {
    const a = [1, 403, 407, 261, 378, 259, 36, 300, 280]; // 9 shared tokens
    const b = [1, 22, 33, 44, 55, 66]; // 6 shared tokens
    const prompts = [
      [...a, 5, 6, 7], [...a, 8], [1, 403, 407, 500], [...a, 9, 10, 11, 12, 13], [...a, 5, 6, 9],
      [...b, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8], [...b, 3], [...b, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4], [...b, 9, 9], [1, 17],
    ];
    const plan = planSharedPrefixes(prompts);
    expect(plan.prefixes).toHaveLength(2); // the test exercises both groups and ungrouped rows
    expect(plan.groupOf.filter((g) => g < 0)).toHaveLength(3);
    const n = tf.memory().numTensors;
    const batched = await generate(model, prompts, { maxNewTokens: 10, eosIds: [] });
    const alone: number[][] = [];
    for (const p of prompts) {
      alone.push((await generate(model, [p], { maxNewTokens: 10, eosIds: [] }))[0] as number[]);
    }
    expect(batched).toEqual(alone);
    expect(tf.memory().numTensors).toBe(n);
  });
});
