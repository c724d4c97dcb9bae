/**
 * Benign rows on stories260K: prompts answered by the base model's own greedy continuation,
 * and the base model's top-k at the answer positions.
 */
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { expectNoLeakedTensors } from "./support/no-leaked-tensors.js";
import { initBackend } from "../src/backend.js";
import { loadWordList } from "../src/data/data-files.js";
import { forward } from "../src/model/forward.js";
import { generate } from "../src/model/generate.js";
import { disposeModel, loadModel, type Model } from "../src/model/load-model.js";
import { buildBenignRows, type BenignRow } from "../src/quality/benign-rows.js";
import { collateKlTargets, klToReference, type KlTarget } from "../src/quality/kl-loss.js";
import { loadTokenizer } from "../src/tokenizer/load-tokenizer.js";
import type { Tokenizer } from "../src/tokenizer/tokenizer.js";
import { collate } from "../src/train/data.js";
import { IGNORE_INDEX } from "../src/train/loss.js";

const STORIES = path.resolve(__dirname, "../../../../shared/models/stories260K");
let model: Model;
let tok: Tokenizer;
let words: string[];
let rows: BenignRow[];
const plain = { kind: "template", template: "{}" } as const;

beforeAll(async () => {
  await initBackend("wasm");
  model = await loadModel(STORIES);
  tok = await loadTokenizer(STORIES);
  words = await loadWordList();
  rows = await buildBenignRows(model, tok, { count: 5, mode: plain, seed: 9, words, padId: 0, klTopK: 8, batchSize: 3, responseTokens: 12 });
});
afterAll(() => disposeModel(model));

expectNoLeakedTensors();

test("each row is BOS + a word + sampled tokens, then the base model's greedy answer, labels on the answer only", async () => {
  expect(rows).toHaveLength(5);
  for (const r of rows) {
    const first = r.labels.findIndex((l) => l !== IGNORE_INDEX);
    const prompt = r.inputIds.slice(0, first);
    expect(prompt[0]).toBe(1);
    expect(r.labels.slice(0, first).every((l) => l === IGNORE_INDEX)).toBe(true);
    expect(r.labels.slice(first)).toEqual(r.inputIds.slice(first));
    const [greedy] = await generate(model, [prompt], { maxNewTokens: 12, padId: 0 });
    expect(r.inputIds.slice(first)).toEqual(greedy);
    expect(r.positions).toEqual(r.inputIds.slice(first).map((_, j) => first - 1 + j));
  }
  const again = await buildBenignRows(model, tok, { count: 5, mode: plain, seed: 9, words, padId: 0, batchSize: 3, responseTokens: 12 });
  expect(again.map((r) => r.inputIds)).toEqual(rows.map((r) => r.inputIds));
});

test("the top-k target: top-1 is the greedy answer token; the base model is at KL 0 from it, padded in a batch", () => {
  for (const r of rows) {
    const t = r.target as KlTarget;
    expect(t.k).toBe(8);
    r.positions.forEach((pos, p) => {
      expect(t.indices[p * 8]).toBe(r.labels[pos + 1]);
      expect(t.logProbs[p * 8] as number).toBeGreaterThanOrEqual(t.logProbs[p * 8 + 1] as number);
    });
    expect(Array.from(t.rest).every((m) => m >= 0 && m < 1)).toBe(true);
  }
  const batch = collate(rows, { padId: 0, side: "right" });
  const target = collateKlTargets(rows.map((r) => ({ positions: r.positions, target: r.target as KlTarget })), batch.T);
  const kl = tf.tidy(() => {
    const ids = tf.tensor2d(batch.inputIds, [batch.B, batch.T], "int32");
    const mask = tf.tensor2d(batch.attentionMask, [batch.B, batch.T], "int32");
    return klToReference(forward(model, ids, { attentionMask: mask }), target).dataSync()[0] as number;
  });
  expect(Math.abs(kl)).toBeLessThan(1e-5);
});
