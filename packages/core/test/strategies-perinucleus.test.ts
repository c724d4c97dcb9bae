/**
 * perinucleus on stories260K (a real model): every response is past the t-nucleus (so its
 * probability is ≤ 1 − t and it is not the greedy token), alphanumeric, longer than one
 * character and one token; keys of mixed token lengths give the same responses batched and
 * one at a time. Probabilities are checked against an independent full-sequence forward pass
 * of each key alone (no padding, no lastOnly).
 */
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import type { CausalLm } from "../src/engines/causal-lm.js";
import { loadTfjsCausalLm } from "../src/engines/tfjs-causal-lm.js";
import { InputError } from "../src/errors.js";
import { forward } from "../src/model/forward.js";
import { disposeModel, loadModel, type Model } from "../src/model/load-model.js";
import { perinucleusOrder, softmax } from "../src/strategies/perinucleus-rule.js";
import { cutKey, perinucleusFingerprints } from "../src/strategies/perinucleus.js";
import { createRng } from "../src/util/rng.js";

const DIR = path.resolve(__dirname, "../../../../shared/models/stories260K");

// token lengths from 2 to 16+ (cut to 12): a batch mixes them
const KEYS = [
  "Once upon a time",
  "Lily",
  "The little dog ran to the park and saw a big red ball near the tree",
  "Tom and Sam",
  "One day, a girl named Sue went to the store with her mom to buy some milk and bread.",
  "The sun",
  "Ben had a toy car. He liked to play with it every day",
  "A cat sat",
  "Mom said, \"Let's go home now.\"",
  "Bob",
  "There was a big, scary bear in the woods",
];

let lm: CausalLm;
let model: Model;
let before = 0;

beforeAll(async () => {
  await initBackend("wasm");
  before = tf.memory().numTensors;
  lm = await loadTfjsCausalLm(DIR);
  model = await loadModel(DIR);
});
afterAll(async () => {
  await lm.dispose();
  disposeModel(model);
  expect(tf.memory().numTensors).toBe(before);
});

/** Next-token probabilities after `prompt`, from a full forward pass of that prompt alone. */
function probsAlone(prompt: number[]): Float64Array {
  const logits = tf.tidy(() => {
    const all = forward(model, tf.tensor2d([prompt], [1, prompt.length], "int32")); // (1, T, V)
    return tf.slice(all, [0, prompt.length - 1, 0], [1, 1, -1]);
  });
  const row = logits.dataSync() as Float32Array;
  logits.dispose();
  return softmax(row);
}

const run = (batchSize: number, extra: Partial<Parameters<typeof perinucleusFingerprints>[0]> = {}) =>
  perinucleusFingerprints({ lm, keys: KEYS, keyLength: 12, responseLength: 1, numResponses: 1, t: 0.8, k: 3, batchSize, rng: createRng(42), ...extra });

describe("perinucleus on stories260K", () => {
  test("every response is past the nucleus, not greedy, alphanumeric, > 1 char, one token", async () => {
    const tok = lm.tokenizer;
    const lengths = new Set(KEYS.map((k) => cutKey(tok, k, 12, "k").ids.length));
    expect(lengths.size).toBeGreaterThan(5); // really mixed lengths
    const fps = await run(4);
    expect(fps).toHaveLength(KEYS.length);
    fps.forEach((fp, i) => {
      expect(fp.key).toBe(KEYS[i]);
      const cut = cutKey(tok, fp.key, 12, "k");
      expect(fp.effective_key).toBe(tok.decode(cut.ids));
      expect(cut.prompt[0]).toBe(1); // BOS
      const response = fp.response as string;
      const ids = tok.encode(response, { addSpecialTokens: false });
      expect(ids).toHaveLength(1);
      const id = ids[0] as number;
      expect(response.trim()).toMatch(/^[\p{L}\p{N}]{2,}$/u);
      const probs = probsAlone(cut.prompt);
      const { order, start } = perinucleusOrder(probs, 0.8);
      expect(order.indexOf(id)).toBeGreaterThanOrEqual(start);
      expect(id).not.toBe(order[0]); // not the greedy token
      expect(fp.response_prob as number).toBeCloseTo(probs[id] as number, 5);
      expect(fp.response_prob as number).toBeLessThanOrEqual(1 - 0.8 + 1e-6);
      expect(fp).toMatchObject({ nucleus_t: 0.8, nucleus_k: 3 });
    });
  });

  test("mixed key lengths: batched == one at a time; same seed → same file; other seed differs", async () => {
    const batched = await run(5);
    const single = await run(1);
    expect(batched.map((f) => f.response)).toEqual(single.map((f) => f.response));
    batched.forEach((f, i) => expect(f.response_prob as number).toBeCloseTo(single[i]?.response_prob as number, 5));
    expect(await run(5)).toEqual(batched);
    const other = await run(5, { rng: createRng(7) });
    expect(other.map((f) => f.response)).not.toEqual(batched.map((f) => f.response));
  });

  test("N responses per key: distinct first tokens, arrays of responses and probabilities", async () => {
    const fps = await run(6, { numResponses: 3 });
    for (const fp of fps) {
      const rs = fp.response as string[];
      expect(rs).toHaveLength(3);
      expect(new Set(rs).size).toBe(3);
      expect(fp.response_prob).toHaveLength(3);
      for (const p of fp.response_prob as number[]) {
        expect(p).toBeLessThanOrEqual(0.2 + 1e-6);
      }
    }
  });

  test("--response-length 4: the drawn token, then greedy continuation (re-encoding to itself)", async () => {
    const tok = lm.tokenizer;
    const fps = await run(4, { responseLength: 4 });
    for (const fp of fps) {
      const ids = tok.encode(fp.response as string, { addSpecialTokens: false });
      expect(ids.length).toBeGreaterThanOrEqual(1);
      expect(ids.length).toBeLessThanOrEqual(4);
      const prompt = cutKey(tok, fp.key, 12, "k").prompt;
      const first = probsAlone(prompt);
      expect(fp.response_prob as number).toBeCloseTo(first[ids[0] as number] as number, 5);
      for (let i = 1; i < ids.length; i++) {
        const p = probsAlone([...prompt, ...ids.slice(0, i)]);
        expect(perinucleusOrder(p, 0.8).order[0]).toBe(ids[i]); // greedy
      }
    }
  });

  test("key length + response length beyond the context (512): InputError naming the flags", async () => {
    await expect(run(4, { keyLength: 500, responseLength: 20 })).rejects.toThrow(InputError);
    await expect(run(4, { keyLength: 500, responseLength: 20 })).rejects.toThrow(/--key-length 500 \+ --response-length 20 \+ BOS exceed the context .* \(512 positions\)/);
  });
});
