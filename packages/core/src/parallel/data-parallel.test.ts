/**
 * Data parallelism against one thread, on a small random Llama (wasm): the same loss and
 * gradients, and the same weights after AdamW steps, within float32 rounding.
 * The worker runs dist/parallel/data-parallel-worker.js: build first (`pnpm test` does).
 */
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../backend.js";
import { normalizeLlamaConfig } from "../model/config.js";
import { llamaExpectedTensors } from "../model/llama.js";
import type { Model } from "../model/load-model.js";
import { AdamW } from "../train/adamw.js";
import type { Batch } from "../train/data.js";
import { maxScaledError } from "../train/gradient-check.js";
import { IGNORE_INDEX } from "../train/loss.js";
import { createRng } from "../util/rng.js";
import { assignJobs, createDataParallel, disposeDataParallel, type DataParallel } from "./data-parallel.js";
import { countedTokens, jobGradients, splitBatch, type GradientJob } from "./gradient-job.js";

const config = normalizeLlamaConfig(
  { model_type: "llama", vocab_size: 97, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, hidden_act: "silu" },
  "test/config.json",
);

/** Random weights (seeded) as plain arrays, so each side builds its own variables. */
function randomWeights(): Map<string, { shape: number[]; data: Float32Array }> {
  const rng = createRng(7);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of llamaExpectedTensors(config)) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    out.set(e.name, { shape: e.shape, data: Float32Array.from({ length: n }, () => (e.shape.length === 1 ? 1 : rng.normal() * 0.1)) });
  }
  return out;
}

/** A right-padded batch: rows of different lengths, prompt tokens ignored by the loss. */
function batch(B: number, T: number, seed: number): Batch {
  const rng = createRng(seed);
  const inputIds = new Int32Array(B * T);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  const attentionMask = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const len = T - (b % 3);
    for (let t = 0; t < len; t++) {
      const id = 3 + rng.int(90);
      inputIds[b * T + t] = id;
      attentionMask[b * T + t] = 1;
      if (t >= 3) {
        labels[b * T + t] = id; // the first 3 tokens are the "prompt"
      }
    }
  }
  return { inputIds, labels, attentionMask, B, T };
}

let serial = 0;
function variables(w: Map<string, { shape: number[]; data: Float32Array }>): Map<string, tf.Variable> {
  const side = serial++;
  return new Map([...w].map(([name, t]) => [name, tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), true, `dp-test-${side}/${name}`))]));
}

const modelOf = (vars: Map<string, tf.Variable>): Model => ({ config, weights: new Map<string, tf.Tensor>(vars), dir: "", generationConfig: null });

describe("data parallelism (main thread + 1 worker, wasm)", () => {
  const weights = randomWeights();
  let single: Map<string, tf.Variable>;
  let parallel: Map<string, tf.Variable>;
  let dp: DataParallel;
  let before = 0;
  beforeAll(async () => {
    await initBackend("wasm");
    before = tf.memory().numTensors;
    single = variables(weights);
    parallel = variables(weights);
    dp = await createDataParallel({ model: modelOf(parallel), vars: parallel, workers: 1 });
  });
  afterAll(async () => {
    await disposeDataParallel(dp);
    tf.dispose([...single.values(), ...parallel.values()]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test("splitBatch: the parts' losses sum to the batch's mean loss", () => {
    const b = batch(5, 9, 1);
    const parts = splitBatch(b, 2);
    expect(parts.map((p) => p.batch.B)).toEqual([3, 2]);
    expect(parts.map((p) => p.denominator)).toEqual([countedTokens(b), countedTokens(b)]);
    const whole = jobGradients(modelOf(single), single, [{ batch: b }]);
    const split = jobGradients(modelOf(single), single, parts);
    expect(split.loss).toBeCloseTo(whole.loss, 5);
    for (const [name, g] of whole.grads) {
      expect(maxScaledError(split.grads.get(name)?.dataSync() ?? [], g.dataSync())).toBeLessThan(1e-5);
    }
    tf.dispose([...whole.grads.values(), ...split.grads.values()]);
  });

  test("assignJobs deals the largest jobs first, to the least loaded thread", () => {
    const jobs: GradientJob[] = [batch(1, 8, 1), batch(4, 8, 2), batch(2, 8, 3), batch(3, 8, 4)].map((b) => ({ batch: b }));
    // costs ~ counted tokens: job 1 (4 rows) → thread 0, job 3 (3 rows) → 1, job 2 (2 rows) → 1, job 0 → 0
    expect(assignJobs(jobs, 2)).toEqual([[0, 1], [2, 3]]);
  });

  test("one split micro-batch, then two accumulated ones: loss, gradients and AdamW steps equal one thread's", async () => {
    const optSingle = new AdamW({ weightDecay: 0.1 });
    const optParallel = new AdamW({ weightDecay: 0.1 });
    const steps: GradientJob[][] = [
      splitBatch(batch(6, 10, 11), 2),
      [batch(3, 10, 12), batch(4, 9, 13)].map((b) => ({ batch: b, weight: 0.5 })),
    ];
    for (const jobs of steps) {
      const ref = jobGradients(modelOf(single), single, jobs);
      const got = await dp.gradients(jobs);
      expect(got.losses).toHaveLength(jobs.length);
      expect(Math.abs(got.loss - ref.loss)).toBeLessThan(1e-6 * Math.abs(ref.loss));
      expect([...got.grads.keys()].sort()).toEqual([...ref.grads.keys()].sort());
      for (const [name, g] of ref.grads) {
        expect(maxScaledError(got.grads.get(name)?.dataSync() ?? [], g.dataSync())).toBeLessThan(1e-5);
      }
      tf.tidy(() => {
        optSingle.step(single, ref.grads, 1e-2);
        optParallel.step(parallel, got.grads, 1e-2);
      });
      tf.dispose([...ref.grads.values(), ...got.grads.values()]);
      dp.setWeights();
    }
    for (const [name, v] of single) {
      expect(maxScaledError(parallel.get(name)?.dataSync() ?? [], v.dataSync())).toBeLessThan(1e-5);
    }
    // the worker trains from the updated weights: a third step still agrees
    const jobs = splitBatch(batch(4, 8, 14), 2);
    const ref = jobGradients(modelOf(single), single, jobs);
    const got = await dp.gradients(jobs);
    expect(Math.abs(got.loss - ref.loss)).toBeLessThan(1e-5 * Math.abs(ref.loss));
    tf.dispose([...ref.grads.values(), ...got.grads.values()]);
    optSingle.dispose();
    optParallel.dispose();
  });
});
