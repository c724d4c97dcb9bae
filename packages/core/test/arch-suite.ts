/**
 * Test helper: the behaviour every architecture must show on a tiny random model: logits equal
 * a direct scalar computation written from transformers' modeling code (arch-reference.ts),
 * padding invariance, KV-cache decoding = a full forward,
 * batched = one-at-a-time greedy generation, save → load bit-identical, tied/untied heads,
 * a fixed batch memorised by AdamW through tf.variableGrads, no leaked tensors; and loading
 * end to end with a real tokenizer.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { forward } from "../src/model/forward.js";
import { generate } from "../src/model/generate.js";
import { createKvCache, disposeKvCache } from "../src/model/kv-cache.js";
import { disposeModel, loadModel, type Model } from "../src/model/load-model.js";
import { saveModel } from "../src/model/save-model.js";
import { loadTokenizer } from "../src/tokenizer/load-tokenizer.js";
import { AdamW } from "../src/train/adamw.js";
import { IGNORE_INDEX, maskedCrossEntropy } from "../src/train/loss.js";
import { trainStep } from "../src/train/train-step.js";
import { referenceLogits } from "./arch-reference.js";
import { copyTokenizerFiles, logitsOf, maxAbsDiff, writeTinyModel } from "./arch-tiny-model.js";

export interface ArchSuiteOptions {
  /** describe() title */
  title: string;
  /** tiny config.json for the byte-level tokenizer (vocab_size 320, pad 3) */
  config: Record<string, unknown>;
  /** the lm head's tensor name (lm_head.weight; embed_out.weight for gpt_neox) */
  headName: string;
  seed?: number;
  /** AdamW steps of the memorisation test (default 100) and learning rate (default 3e-3) */
  trainSteps?: number;
  lr?: number;
}

const PAD = 3;
const A = [1, 40, 41, 42, 43, 44, 45, 46];
const B = [1, 60, 61, 62, 63];

/** Tolerance for logits that should be equal up to float32 rounding. */
const close = (a: unknown, b: unknown, scale: unknown): void => {
  const m = ((scale as unknown[]).flat(Infinity) as number[]).reduce((x, v) => Math.max(x, Math.abs(v)), 1);
  expect(maxAbsDiff(a, b)).toBeLessThan(2e-5 * m);
};

export function archBehaviourSuite(o: ArchSuiteOptions): void {
  describe(o.title, () => {
    let tmp = "";
    let model: Model;
    let tensors: Map<string, { shape: number[]; data: Float32Array }>;
    let before = 0;
    const tied = o.config.tie_word_embeddings === true;

    beforeAll(async () => {
      await initBackend("wasm");
      before = tf.memory().numTensors;
      tmp = await mkdtemp(path.join(os.tmpdir(), "oml-arch-"));
      ({ tensors } = await writeTinyModel(path.join(tmp, "model"), { config: o.config, seed: o.seed ?? 1 }));
      model = await loadModel(path.join(tmp, "model"));
    });
    afterAll(async () => {
      disposeModel(model);
      await rm(tmp, { recursive: true, force: true });
      expect(tf.memory().numTensors).toBe(before);
    });

    test("logits = a direct float64 computation from the HF modeling code (all positions)", () => {
      const n = tf.memory().numTensors;
      const want = referenceLogits(o.config, tensors, A);
      const [got] = logitsOf(model, [A]);
      const scale = want.flat().reduce((m, v) => Math.max(m, Math.abs(v)), 1);
      expect(maxAbsDiff(got, want)).toBeLessThan(1e-4 * scale);
      expect(tf.memory().numTensors).toBe(n);
    });

    test("left, right and inner padding leave real tokens' logits unchanged", () => {
      const n = tf.memory().numTensors;
      const [a] = logitsOf(model, [A]);
      const [b] = logitsOf(model, [B]);
      const k = A.length - B.length;
      const left = logitsOf(model, [A, [...new Array<number>(k).fill(PAD), ...B]], [A.map(() => 1), [...new Array<number>(k).fill(0), ...B.map(() => 1)]]);
      close(left[0], a, a);
      close((left[1] as number[][]).slice(k), b, b);
      const right = logitsOf(model, [A, [...B, ...new Array<number>(k).fill(PAD)]], [A.map(() => 1), [...B.map(() => 1), ...new Array<number>(k).fill(0)]]);
      close((right[1] as number[][]).slice(0, B.length), b, b);
      // padding after a shared first token (generate's shared-prefix layout)
      const mid = logitsOf(model, [A, [B[0] as number, ...new Array<number>(k).fill(PAD), ...B.slice(1)]], [A.map(() => 1), [1, ...new Array<number>(k).fill(0), ...B.slice(1).map(() => 1)]]);
      close([(mid[1] as number[][])[0], ...(mid[1] as number[][]).slice(k + 1)], b, b);
      expect(tf.memory().numTensors).toBe(n);
    });

    test("prefill + one token at a time through the KV cache = one full forward (left-padded batch)", () => {
      const n = tf.memory().numTensors;
      const k = A.length - B.length;
      const ids = [A, [...new Array<number>(k).fill(PAD), ...B]];
      const mask = [A.map(() => 1), [...new Array<number>(k).fill(0), ...B.map(() => 1)]];
      const full = logitsOf(model, ids, mask);
      const cache = createKvCache(model.config.nLayers);
      const steps: number[][][][] = [];
      const run = (from: number, to: number): void => {
        const input = tf.tensor2d(ids.map((r) => r.slice(from, to)), undefined, "int32");
        const m = tf.tensor2d(mask.map((r) => r.slice(0, to)), undefined, "int32");
        const out = forward(model, input, { attentionMask: m, cache });
        steps.push(out.arraySync());
        tf.dispose([input, m, out]);
      };
      const prefill = k + 2;
      run(0, prefill);
      for (let t = prefill; t < A.length; t++) {
        run(t, t + 1);
      }
      disposeKvCache(cache);
      const stitched = [0, 1].map((b) => steps.flatMap((s) => s[b] as number[][]));
      close(stitched[0], full[0], full[0]);
      close((stitched[1] as number[][]).slice(k), (full[1] as number[][]).slice(k), full[1]);
      expect(tf.memory().numTensors).toBe(n);
    });

    test("lastOnly (last layer at the last position only) = the last row of a full forward, padded and after a cache", () => {
      const n = tf.memory().numTensors;
      const k = A.length - B.length;
      const ids = [A, [...new Array<number>(k).fill(PAD), ...B]];
      const mask = [A.map(() => 1), [...new Array<number>(k).fill(0), ...B.map(() => 1)]];
      const full = logitsOf(model, ids, mask).map((r) => (r as number[][]).at(-1) as number[]);
      const want = referenceLogits(o.config, tensors, A).at(-1) as number[];
      const lastOnly = (cacheFrom: number): number[][] => {
        const cache = createKvCache(model.config.nLayers);
        const run = (from: number, to: number): number[][] => {
          const input = tf.tensor2d(ids.map((r) => r.slice(from, to)), undefined, "int32");
          const m = tf.tensor2d(mask.map((r) => r.slice(0, to)), undefined, "int32");
          const out = forward(model, input, { attentionMask: m, cache, lastOnly: true }); // (2, 1, V)
          const rows = (out.arraySync() as number[][][]).map((r) => r[0] as number[]);
          tf.dispose([input, m, out]);
          return rows;
        };
        if (cacheFrom > 0) {
          run(0, cacheFrom);
        }
        const rows = run(cacheFrom, A.length);
        disposeKvCache(cache);
        return rows;
      };
      for (const from of [0, k + 2]) {
        const got = lastOnly(from);
        close(got, full, full);
        expect(maxAbsDiff(got[0], want)).toBeLessThan(1e-4 * want.reduce((m, v) => Math.max(m, Math.abs(v)), 1));
      }
      expect(tf.memory().numTensors).toBe(n);
    });

    test("batched greedy generation equals one prompt at a time", async () => {
      const n = tf.memory().numTensors;
      const prompts = [A, B, [1, 70]];
      const batched = await generate(model, prompts, { maxNewTokens: 6, eosIds: [] });
      const alone = [];
      for (const p of prompts) {
        alone.push(...(await generate(model, [p], { maxNewTokens: 6, eosIds: [] })));
      }
      expect(batched).toEqual(alone);
      expect(batched.every((r) => r.length === 6)).toBe(true);
      expect(tf.memory().numTensors).toBe(n);
    });

    test(`save → load: config.json written back unchanged, bit-identical logits; ${tied ? "tied head (no stored copy)" : "untied head"}`, async () => {
      const n = tf.memory().numTensors;
      const out = path.join(tmp, "saved");
      await saveModel(model, out);
      expect(JSON.parse(readFileSync(path.join(out, "config.json"), "utf8"))).toEqual(o.config);
      const copy = await loadModel(out);
      expect(maxAbsDiff(logitsOf(copy, [A, B.concat([PAD, PAD, PAD])]), logitsOf(model, [A, B.concat([PAD, PAD, PAD])]))).toBe(0);
      expect(copy.weights.has(o.headName)).toBe(!tied);
      if (!tied) {
        // the head is read: zeroing it zeroes the logits
        const zero = new Map([[o.headName, tf.zerosLike(copy.weights.get(o.headName) as tf.Tensor)]]);
        expect(logitsOf(copy, [B], undefined, zero).flat(2).every((v) => v === 0)).toBe(true);
        tf.dispose([...zero.values()]);
      }
      disposeModel(copy);
      expect(existsSync(path.join(out, "tokenizer.json"))).toBe(true);
      expect(tf.memory().numTensors).toBe(n);
    });

    test(`AdamW memorises a fixed batch (${o.trainSteps ?? 100} steps, loss on the continuation only)`, () => {
      const n = tf.memory().numTensors;
      const k = A.length - B.length;
      const ids = tf.tensor2d([A, [...new Array<number>(k).fill(PAD), ...B]], undefined, "int32");
      const mask = tf.tensor2d([A.map(() => 1), [...new Array<number>(k).fill(0), ...B.map(() => 1)]], undefined, "int32");
      // labels: the last 3 tokens of each row
      const labels = tf.tensor2d(
        [A.map((id, t) => (t >= A.length - 3 ? id : IGNORE_INDEX)), [...new Array<number>(k).fill(IGNORE_INDEX), ...B.map((id, t) => (t >= B.length - 3 ? id : IGNORE_INDEX))]],
        undefined,
        "int32",
      );
      const params = new Map([...model.weights].map(([name, t]) => [name, tf.variable(t, true, `${o.title}-${name}`)]));
      const optimizer = new AdamW({ weightDecay: 0 });
      const lossFn = (): tf.Scalar => tf.tidy(() => maskedCrossEntropy(forward(model, ids, { attentionMask: mask, weights: params }), labels));
      const losses: number[] = [];
      let final = Infinity;
      try {
        for (let step = 0; step < (o.trainSteps ?? 100); step++) {
          losses.push(trainStep({ lossFn, params, optimizer, lr: o.lr ?? 3e-3, clipNorm: 1 }).loss);
        }
        final = tf.tidy(() => lossFn().dataSync()[0] as number);
      } finally {
        tf.dispose([ids, mask, labels, ...params.values()]);
      }
      expect(losses[0]).toBeGreaterThan(1);
      expect(final).toBeLessThan(0.01);
      expect(tf.memory().numTensors).toBe(n);
    });
  });
}

/**
 * A tiny model whose vocabulary is a real tokenizer's loads with it end to end:
 * loadTokenizer + loadModel + greedy generation of a few tokens that decode to text.
 * @param config tiny config.json without vocab_size (taken from the tokenizer)
 */
export function realTokenizerTest(title: string, config: Record<string, unknown>, tokenizerDir: string): void {
  const available = existsSync(path.join(tokenizerDir, "tokenizer.json"));
  test.skipIf(!available)(title, async () => {
    await initBackend("wasm");
    const n = tf.memory().numTensors;
    const tmp = await mkdtemp(path.join(os.tmpdir(), "oml-arch-tok-"));
    try {
      await copyTokenizerFiles(tokenizerDir, tmp);
      const tok = await loadTokenizer(tmp);
      const vocab = tok.vocabSize; // max id + 1
      const { dir } = await writeTinyModel(tmp, { config: { ...config, vocab_size: vocab }, seed: 5, std: 0.02, tokenizer: "none" });
      const model = await loadModel(dir);
      const ids = tok.encode("The quick brown fox");
      expect(ids.length).toBeGreaterThan(2);
      const [out] = await generate(model, [ids], { maxNewTokens: 4, eosIds: [] });
      expect(out).toHaveLength(4);
      expect(out?.every((id) => id >= 0 && id < vocab)).toBe(true);
      expect(typeof tok.decode(out ?? [])).toBe("string");
      disposeModel(model);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    expect(tf.memory().numTensors).toBe(n);
  });
}

/** One config variant checked against the direct computation only (cheaper than a whole suite). */
export function referenceTest(title: string, config: Record<string, unknown>, seed = 4): void {
  test(title, async () => {
    await initBackend("wasm");
    const n = tf.memory().numTensors;
    const tmp = await mkdtemp(path.join(os.tmpdir(), "oml-arch-ref-"));
    try {
      const { dir, tensors } = await writeTinyModel(tmp, { config, seed, tokenizer: "none" });
      const model = await loadModel(dir);
      const want = referenceLogits(config, tensors, A);
      const [got] = logitsOf(model, [A]);
      const scale = want.flat().reduce((m, v) => Math.max(m, Math.abs(v)), 1);
      expect(maxAbsDiff(got, want)).toBeLessThan(1e-4 * scale);
      disposeModel(model);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    expect(tf.memory().numTensors).toBe(n);
  });
}
