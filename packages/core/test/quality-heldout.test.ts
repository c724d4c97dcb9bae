/**
 * Held-out quality measurement: cross-entropy against the stories260K reference numbers,
 * KL against a direct one-sequence-at-a-time computation, self-generated samples and
 * --eval-text files.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "./support/no-leaked-tensors.js";
import { initBackend } from "../src/backend.js";
import { InputError } from "../src/errors.js";
import { createTinyModel } from "../src/model/create-tiny-model.js";
import { forward } from "../src/model/forward.js";
import { disposeModel, loadModel, type Model } from "../src/model/load-model.js";
import { evaluateHeldout } from "../src/quality/heldout-eval.js";
import { readEvalText, sampleHeldoutText } from "../src/quality/heldout-text.js";
import { loadTokenizer } from "../src/tokenizer/load-tokenizer.js";
import type { Tokenizer } from "../src/tokenizer/tokenizer.js";

const STORIES = path.resolve(__dirname, "../../../../shared/models/stories260K");
interface LossRef {
  text: string;
  input_ids: number[];
  mean_next_token_cross_entropy: number;
}

let stories: Model;
let tok: Tokenizer;
let tiny: Model;
let refs: LossRef[];
let root: string;
beforeAll(async () => {
  await initBackend("wasm");
  root = await mkdtemp(path.join(os.tmpdir(), "oml-quality-"));
  stories = await loadModel(STORIES);
  tok = await loadTokenizer(STORIES);
  tiny = await loadModel((await createTinyModel(path.join(root, "tiny"), { seed: 5, hidden: 16, layers: 2 })).dir);
  refs = (JSON.parse(await readFile(path.join(STORIES, "reference_outputs.json"), "utf8")) as { loss: LossRef[] }).loss;
});
afterAll(() => {
  disposeModel(stories);
  disposeModel(tiny);
});

expectNoLeakedTensors();

describe("evaluateHeldout", () => {
  test("the base against itself: the reference cross-entropies (token-weighted), KL 0, batched or not", async () => {
    const seqs = refs.map((r) => r.input_ids);
    const tokens = seqs.reduce((s, x) => s + x.length - 1, 0);
    const want = refs.reduce((s, r) => s + r.mean_next_token_cross_entropy * (r.input_ids.length - 1), 0) / tokens;
    for (const batchSize of [1, 2]) {
      const m = await evaluateHeldout({ model: stories, tuned: stories.weights, sequences: seqs, padId: 0, batchSize });
      expect(m.sequences).toBe(2);
      expect(m.tokens).toBe(tokens);
      expect(m.ce_before).toBeCloseTo(want, 4);
      expect(m.ce_after).toBeCloseTo(want, 4);
      expect(m.ce_relative_change).toBeCloseTo(0, 6);
      expect(Math.abs(m.kl)).toBeLessThan(1e-6);
    }
  });

  test("changed weights: CE and KL equal a direct computation one sequence at a time", async () => {
    const tuned = new Map<string, tf.Tensor>([...tiny.weights].map(([n, t]) => [n, tf.tidy(() => tf.add(t, tf.randomNormal(t.shape, 0, 0.05, "float32", n.length)))]));
    const seqs = [
      [1, 70, 71, 72, 73, 74, 75, 76],
      [1, 80, 81],
      [1, 90, 91, 92, 93],
    ];
    const logSoftmaxRows = (m: Model, w: Map<string, tf.Tensor> | undefined, ids: number[]): number[][] =>
      tf.tidy(() => tf.logSoftmax(tf.reshape(forward(m, tf.tensor2d([ids], [1, ids.length], "int32"), { weights: w }), [ids.length, -1])).arraySync() as number[][]);
    let ceB = 0;
    let ceT = 0;
    let kl = 0;
    let n = 0;
    for (const ids of seqs) {
      const a = logSoftmaxRows(tiny, undefined, ids);
      const b = logSoftmaxRows(tiny, tuned, ids);
      for (let t = 0; t + 1 < ids.length; t++) {
        const pa = a[t] as number[];
        const pb = b[t] as number[];
        ceB -= pa[ids[t + 1] as number] as number;
        ceT -= pb[ids[t + 1] as number] as number;
        kl += pa.reduce((s, l, j) => s + Math.exp(l) * (l - (pb[j] as number)), 0);
        n++;
      }
    }
    const m = await evaluateHeldout({ model: tiny, tuned, sequences: seqs, padId: 3, batchSize: 3 });
    tf.dispose([...tuned.values()]);
    expect(m.tokens).toBe(n);
    expect(m.ce_before).toBeCloseTo(ceB / n, 5);
    expect(m.ce_after).toBeCloseTo(ceT / n, 5);
    expect(m.kl).toBeCloseTo(kl / n, 5);
    expect(m.kl).toBeGreaterThan(0);
    expect(m.ce_relative_change).toBeCloseTo((ceT - ceB) / ceB, 5);
  });
});

describe("held-out text", () => {
  test("self-generated samples start at BOS, are seeded, and are what the model writes", async () => {
    const a = await sampleHeldoutText(stories, tok, { samples: 4, tokens: 24, seed: 1, padId: 0 });
    const b = await sampleHeldoutText(stories, tok, { samples: 4, tokens: 24, seed: 1, padId: 0 });
    const c = await sampleHeldoutText(stories, tok, { samples: 4, tokens: 24, seed: 2, padId: 0 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).toHaveLength(4);
    for (const s of a) {
      expect(s[0]).toBe(1);
      expect(s.length).toBeLessThanOrEqual(25);
    }
    // Sampled at temperature 1 from the model itself: its own CE on them is its entropy, far
    // below the 6.2 nats of a uniform guess over 512 tokens.
    const m = await evaluateHeldout({ model: stories, tuned: stories.weights, sequences: a, padId: 0 });
    expect(m.ce_before).toBeLessThan(3);
    expect(await sampleHeldoutText(stories, tok, { samples: 0, tokens: 24, seed: 1, padId: 0 })).toEqual([]);
  });

  test("--eval-text: plain text split at blank lines, JSONL {text}, windows of maxLength", async () => {
    const plain = path.join(root, "eval.txt");
    await writeFile(plain, `${refs[0]?.text}\n\n\n${refs[1]?.text}\n`);
    expect(await readEvalText(plain, tok, { maxLength: 512 })).toEqual(refs.map((r) => r.input_ids));
    const jsonl = path.join(root, "eval.jsonl");
    await writeFile(jsonl, `${refs.map((r) => JSON.stringify({ text: r.text })).join("\n")}\n`);
    expect(await readEvalText(jsonl, tok, { maxLength: 512 })).toEqual(refs.map((r) => r.input_ids));
    const ids = refs[0]?.input_ids as number[];
    const windows = await readEvalText(plain, tok, { maxLength: 16 });
    expect(windows.slice(0, 3)).toEqual([ids.slice(0, 16), ids.slice(16, 32), ids.slice(32)]);
  });

  test("bad --eval-text files name the file and line", async () => {
    const bad = path.join(root, "bad.jsonl");
    await writeFile(bad, '{"text": "fine"}\n{"txt": "oops"}\n');
    await expect(readEvalText(bad, tok, { maxLength: 64 })).rejects.toThrow(`${bad}:2: text: expected a string`);
    const empty = path.join(root, "empty.txt");
    await writeFile(empty, "\n\n");
    await expect(readEvalText(empty, tok, { maxLength: 64 })).rejects.toThrow(InputError);
    await expect(readEvalText(path.join(root, "nope.txt"), tok, { maxLength: 64 })).rejects.toThrow(/nope.txt: cannot read the evaluation text \(ENOENT\)/);
  });
});
