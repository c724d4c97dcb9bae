/**
 * Slow end-to-end fingerprinting on the real stories260K (issue "oml-finetune" done-when):
 * 64 random_word fingerprints reach 100%; 64 perinucleus fingerprints (t = 0.8, k = 3, drawn
 * from the model's own next-token distribution) reach 100% with λ = 0.75, and the mean
 * cross-entropy on reference_outputs.json's texts rises by at most 20% (a PyTorch reference of
 * the recipe: 100% in 5 epochs with a 14.8% rise).
 */
import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { loadWordList } from "../src/data/data-files.js";
import { writeFingerprints } from "../src/fingerprints/io.js";
import { finetune } from "../src/finetune/run-finetune.js";
import { forward } from "../src/model/forward.js";
import { disposeModel, loadModel, type Model } from "../src/model/load-model.js";
import { randomWordFingerprints } from "../src/strategies/random-word.js";
import { loadTokenizer } from "../src/tokenizer/load-tokenizer.js";
import { createRng } from "../src/util/rng.js";

const STORIES = path.resolve(__dirname, "../../../../shared/models/stories260K");
let root: string;

beforeAll(async () => {
  await initBackend("wasm");
  root = await mkdtemp(path.join(os.tmpdir(), "oml-slow-"));
});

/** Mean next-token cross-entropy of the model on the reference texts' token ids. */
async function meanCrossEntropy(model: Model, texts: number[][]): Promise<number> {
  let total = 0;
  let count = 0;
  for (const ids of texts) {
    const nll = tf.tidy(() => {
      const logits = forward(model, tf.tensor2d([ids], [1, ids.length], "int32")); // (1, T, V)
      const logp = tf.logSoftmax(tf.reshape(logits, [ids.length, -1]));
      const picked = tf.gather(tf.reshape(logp, [-1]), tf.tensor1d(ids.slice(1).map((id, t) => t * model.config.vocabSize + id), "int32"));
      return tf.neg(tf.sum(picked));
    });
    total += (await nll.data())[0] as number;
    nll.dispose();
    count += ids.length - 1;
  }
  return total / count;
}

/** The perinucleus rule (docs/oml-reference.md §2) for one key, on the engine. */
function perinucleusToken(probs: Float32Array, decode: (id: number) => string, t: number, k: number, rng: ReturnType<typeof createRng>): number {
  const order = Array.from(probs.keys()).sort((a, b) => (probs[b] as number) - (probs[a] as number));
  let cum = 0;
  let boundary = 0;
  for (; boundary < order.length; boundary++) {
    cum += probs[order[boundary] as number] as number;
    if (cum >= t) {
      break;
    }
  }
  const candidates = order.slice(boundary + 1);
  for (let kk = k; kk <= candidates.length; kk++) {
    const id = candidates[rng.int(Math.min(kk, candidates.length))] as number;
    const text = decode(id).trim();
    if (text.length > 1 && /^[\p{L}\p{N}]+$/u.test(text)) {
      return id;
    }
  }
  throw new Error("no acceptable token");
}

test("64 random_word fingerprints reach 100% on stories260K", async () => {
  const fp = path.join(root, "random.json");
  await writeFingerprints(fp, randomWordFingerprints({ words: await loadWordList(), numFingerprints: 64, keyLength: 16, responseLength: 1, rng: createRng(7) }));
  const r = await finetune({
    modelPath: STORIES, fingerprintsFilePath: fp, fingerprintGenerationStrategy: "random_word", numFingerprints: 64,
    learningRate: 1e-2, numTrainEpochs: 60, resultsDir: path.join(root, "results"), backend: "wasm",
  });
  console.log(`random_word: ${r.summary?.success_rate}% after ${r.summary?.epochs_run} epochs, ${r.summary?.wall_seconds.toFixed(1)} s`);
  expect(r.summary?.success_rate).toBe(100);
});

test("64 perinucleus fingerprints reach 100% with λ = 0.75; cross-entropy rises ≤ 20%", async () => {
  const ref = JSON.parse(await readFile(path.join(STORIES, "reference_outputs.json"), "utf8")) as { loss: { input_ids: number[] }[] };
  const texts = ref.loss.map((l) => l.input_ids);
  const tok = await loadTokenizer(STORIES);
  const base = await loadModel(STORIES);
  const rng = createRng(11);
  const words = await loadWordList();
  const fps: { key: string; response: string }[] = [];
  while (fps.length < 64) {
    const keyIds = tok.encode(randomWordFingerprints({ words, numFingerprints: 1, keyLength: 16, responseLength: 1, rng })[0]?.key as string, { addSpecialTokens: false }).slice(0, 16);
    const key = tok.decode(keyIds);
    const prompt = [tok.bosId as number, ...keyIds];
    const probs = tf.tidy(() => tf.softmax(tf.reshape(forward(base, tf.tensor2d([prompt], [1, prompt.length], "int32"), { lastOnly: true }), [-1])));
    const p = (await probs.data()) as Float32Array;
    probs.dispose();
    const id = perinucleusToken(p, (i) => tok.decode([i]), 0.8, 3, rng);
    const response = tok.decode([id]);
    if (tok.encode(response, { addSpecialTokens: false }).join() === String(id)) {
      fps.push({ key, response });
    }
  }
  const before = await meanCrossEntropy(base, texts);
  disposeModel(base);
  const fp = path.join(root, "perinucleus.json");
  await writeFingerprints(fp, fps);
  const r = await finetune({
    modelPath: STORIES, fingerprintsFilePath: fp, fingerprintGenerationStrategy: "perinucleus", numFingerprints: 64,
    learningRate: 1e-2, numTrainEpochs: 60, forgettingRegularizerStrength: 0.75, resultsDir: path.join(root, "results"), backend: "wasm",
  });
  const tuned = await loadModel(path.join(r.dir, "final_model"));
  const after = await meanCrossEntropy(tuned, texts);
  disposeModel(tuned);
  const rise = (after - before) / before;
  console.log(`perinucleus λ=0.75: ${r.summary?.success_rate}% after ${r.summary?.epochs_run} epochs; CE ${before.toFixed(4)} → ${after.toFixed(4)} (${(100 * rise).toFixed(1)}% rise)`);
  expect(r.summary?.success_rate).toBe(100);
  expect(rise).toBeLessThanOrEqual(0.2);
});
