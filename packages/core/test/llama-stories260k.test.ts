/**
 * Golden test of the Llama forward pass on a real trained model: stories260K (llama2.c's
 * TinyStories model, 5 layers, GQA 8/4 heads, tied embeddings), against float32 numpy
 * references of transformers' LlamaForCausalLM (/work/shared/models/stories260K/README.md).
 */
import path from "node:path";
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { forward } from "../src/model/forward.js";
import { createKvCache, disposeKvCache, kvCacheLength } from "../src/model/kv-cache.js";
import { disposeModel, loadModel, type Model } from "../src/model/load-model.js";

const DIR = path.resolve(__dirname, "../../../../shared/models/stories260K");

interface Reference {
  logits: { input_ids: number[]; logits: number[][]; argmax: number[] }[];
  loss: { input_ids: number[]; mean_next_token_cross_entropy: number }[];
}
const ref = JSON.parse(readFileSync(path.join(DIR, "reference_outputs.json"), "utf8")) as Reference;

/** Mean next-token cross-entropy: labels = ids shifted left, log-softmax over the vocabulary. */
function meanCrossEntropy(logits: number[][], ids: number[]): number {
  let total = 0;
  for (let t = 0; t + 1 < ids.length; t++) {
    const row = logits[t] as number[];
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
    total += lse - (row[ids[t + 1] as number] as number);
  }
  return total / (ids.length - 1);
}

function logitsOf(model: Model, ids: number[][], mask?: number[][]): number[][][] {
  const input = tf.tensor2d(ids, undefined, "int32");
  const m = mask ? tf.tensor2d(mask, undefined, "int32") : undefined;
  const out = forward(model, input, { attentionMask: m });
  const arr = out.arraySync();
  tf.dispose([input, out, ...(m ? [m] : [])]);
  return arr;
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  let d = 0;
  a.forEach((row, i) => row.forEach((v, j) => (d = Math.max(d, Math.abs(v - (b[i]?.[j] ?? NaN))))));
  return d;
}

for (const backend of ["cpu", "wasm"] as const) {
  describe(`stories260K forward (${backend})`, () => {
    let model: Model;
    let before = 0;
    beforeAll(async () => {
      await initBackend(backend);
      before = tf.memory().numTensors;
      model = await loadModel(DIR);
    });
    afterAll(() => {
      disposeModel(model);
      expect(tf.memory().numTensors).toBe(before);
    });

    test("config is normalised from config.json", () => {
      expect(model.config).toMatchObject({ vocabSize: 512, hidden: 64, nLayers: 5, nHeads: 8, nKvHeads: 4, headDim: 8, intermediate: 172, tieEmbeddings: true, eosIds: [2, 1] });
      expect(model.weights.has("lm_head.weight")).toBe(false);
    });

    test("logits match the reference within 1e-4 at every position", () => {
      const n = tf.memory().numTensors;
      for (const r of ref.logits) {
        const [got] = logitsOf(model, [r.input_ids]);
        expect(maxAbsDiff(got as number[][], r.logits)).toBeLessThan(1e-4);
        expect((got as number[][]).map((row) => row.indexOf(Math.max(...row)))).toEqual(r.argmax);
      }
      expect(tf.memory().numTensors).toBe(n);
    });

    test("mean cross-entropies match the reference within 1e-4", () => {
      for (const r of ref.loss) {
        const [got] = logitsOf(model, [r.input_ids]);
        expect(Math.abs(meanCrossEntropy(got as number[][], r.input_ids) - r.mean_next_token_cross_entropy)).toBeLessThan(1e-4);
      }
    });

    // 2e-5: the cached forward attends through the fused kernel (kernels/attend.ts), the full
    // forward through the op chain; they round differently (measured 1.1e-5 on logits up to ~20)
    test("prefill + one token at a time through the KV cache = one full forward (2e-5)", () => {
      const n = tf.memory().numTensors;
      const ids = [
        [0, 0, 1, 403, 407, 261, 378],
        [1, 317, 269, 274, 287, 265, 282],
      ];
      const mask = [
        [0, 0, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1, 1],
      ];
      const full = logitsOf(model, ids, mask);
      const cache = createKvCache(model.config.nLayers);
      const step = (from: number, to: number): number[][][] => {
        const input = tf.tensor2d(ids.map((r) => r.slice(from, to)), undefined, "int32");
        const m = tf.tensor2d(mask.map((r) => r.slice(0, to)), undefined, "int32");
        const out = forward(model, input, { attentionMask: m, cache });
        const arr = out.arraySync();
        tf.dispose([input, m, out]);
        return arr;
      };
      const parts = [step(0, 4), step(4, 5), step(5, 6), step(6, 7)];
      expect(kvCacheLength(cache)).toBe(7);
      for (const b of [0, 1]) {
        const pieced = parts.flatMap((p) => p[b] as number[][]);
        const real = (full[b] as number[][]).map((row, t) => (mask[b]?.[t] ? row : null));
        expect(maxAbsDiff(pieced.filter((_, t) => real[t]), real.filter((r): r is number[] => r !== null))).toBeLessThan(2e-5);
      }
      disposeKvCache(cache);
      expect(tf.memory().numTensors).toBe(n);
    });

    test("left and right padding leave real tokens' logits unchanged (1e-5)", () => {
      const [a, b] = ref.logits.map((r) => r.input_ids) as [number[], number[]];
      const long = [...a, 432, 383, 286]; // 8 tokens
      const short = b; // 5 tokens, padded with 3 pads
      const [alone] = logitsOf(model, [short]);
      const pad = 0;
      const left = logitsOf(model, [long, [pad, pad, pad, ...short]], [long.map(() => 1), [0, 0, 0, 1, 1, 1, 1, 1]]);
      const right = logitsOf(model, [long, [...short, pad, pad, pad]], [long.map(() => 1), [1, 1, 1, 1, 1, 0, 0, 0]]);
      const [longAlone] = logitsOf(model, [long]);
      expect(maxAbsDiff((left[1] as number[][]).slice(3), alone as number[][])).toBeLessThan(1e-5);
      expect(maxAbsDiff((right[1] as number[][]).slice(0, 5), alone as number[][])).toBeLessThan(1e-5);
      expect(maxAbsDiff(left[0] as number[][], longAlone as number[][])).toBeLessThan(1e-5);
      expect(maxAbsDiff(right[0] as number[][], longAlone as number[][])).toBeLessThan(1e-5);
    });
  });
}
