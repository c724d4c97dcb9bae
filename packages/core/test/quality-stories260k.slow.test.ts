/**
 * Slow: fingerprint quality on the real stories260K (issue 8). 64 perinucleus fingerprints
 * (random-word keys, responses by the perinucleus rule on stories260K) reach 100% with averaging
 * λ = 0.75, benign mixing β = 0.25 and the KL regularizer α = 4, and cost the model far less
 * than the PyTorch reference of the plain recipe (+14.8% cross-entropy on the reference texts,
 * +6.3% on self-generated text): here at most +6% on either. The summary's eval-text numbers
 * agree with an independent measurement of the saved model.
 */
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { writeFingerprints } from "../src/fingerprints/io.js";
import { finetune } from "../src/finetune/run-finetune.js";
import { generateFingerprints } from "../src/generate/generate-fingerprints.js";
import { forward } from "../src/model/forward.js";
import { disposeModel, loadModel, type Model } from "../src/model/load-model.js";
import { randomWordFingerprints } from "../src/strategies/random-word.js";
import { loadWordList } from "../src/data/data-files.js";
import { createRng } from "../src/util/rng.js";

const STORIES = path.resolve(__dirname, "../../../../shared/models/stories260K");
let root: string;
interface LossRef {
  text: string;
  input_ids: number[];
}
let refs: LossRef[];

beforeAll(async () => {
  await initBackend("wasm");
  root = await mkdtemp(path.join(os.tmpdir(), "oml-slow-quality-"));
  refs = (JSON.parse(await readFile(path.join(STORIES, "reference_outputs.json"), "utf8")) as { loss: LossRef[] }).loss;
});

/** Token-weighted mean next-token cross-entropy, one sequence at a time. */
function meanCrossEntropy(model: Model, texts: number[][]): number {
  let total = 0;
  let count = 0;
  for (const ids of texts) {
    total += tf.tidy(() => {
      const logp = tf.logSoftmax(tf.reshape(forward(model, tf.tensor2d([ids], [1, ids.length], "int32")), [ids.length, -1]));
      const at = ids.slice(1).map((id, t) => t * model.config.vocabSize + id);
      return -(tf.sum(tf.gather(tf.reshape(logp, [-1]), tf.tensor1d(at, "int32"))).dataSync()[0] as number);
    });
    count += ids.length - 1;
  }
  return total / count;
}

test("64 perinucleus fingerprints: 100% with λ = 0.75, β = 0.25, α = 4; CE rises ≤ 6% on reference and self-written text", async () => {
  const keys = path.join(root, "keys.json");
  await writeFingerprints(keys, randomWordFingerprints({ words: await loadWordList(), numFingerprints: 64, keyLength: 16, responseLength: 1, rng: createRng(7) }));
  const fp = path.join(root, "perinucleus.json");
  await generateFingerprints({
    strategy: "perinucleus", keysFile: keys, numFingerprints: 64, keyLength: 16, responseLength: 1,
    modelUsedForKeyGeneration: STORIES, seed: 7, backend: "wasm", outputFile: fp,
  });
  const evalText = path.join(root, "reference.jsonl");
  await writeFile(evalText, `${refs.map((r) => JSON.stringify({ text: r.text })).join("\n")}\n`);
  const r = await finetune({
    modelPath: STORIES, fingerprintsFilePath: fp, fingerprintGenerationStrategy: "perinucleus", numFingerprints: 64,
    learningRate: 1e-2, numTrainEpochs: 60, forgettingRegularizerStrength: 0.75, benignProportion: 0.25, klRegularizer: 4,
    evalText, resultsDir: path.join(root, "results"), backend: "wasm",
  });
  const s = r.summary;
  const self = s?.heldout.self_generated;
  const ref = s?.heldout.eval_text;
  console.log(
    `perinucleus λ=0.75 β=0.25 α=4: ${s?.success_rate}% after ${s?.epochs_run} epochs; CE self-written ${(100 * (self?.ce_relative_change ?? NaN)).toFixed(1)}%, ` +
      `reference texts ${(100 * (ref?.ce_relative_change ?? NaN)).toFixed(1)}%, KL ${self?.kl.toFixed(4)}; ${s?.wall_seconds.toFixed(0)} s`,
  );
  expect(s?.success_rate).toBe(100);
  expect(self?.ce_relative_change).toBeLessThanOrEqual(0.06);
  expect(ref?.ce_relative_change).toBeLessThanOrEqual(0.06);
  expect(s?.benign).toMatchObject({ proportion: 0.25, kl_regularizer: 4, per_micro_batch: 3, rows: 24 });

  // The summary's eval-text numbers, measured independently on the saved model.
  const texts = refs.map((x) => x.input_ids);
  const base = await loadModel(STORIES);
  const tuned = await loadModel(path.join(r.dir, "final_model"));
  const before = meanCrossEntropy(base, texts);
  const after = meanCrossEntropy(tuned, texts);
  disposeModel(base);
  disposeModel(tuned);
  expect(ref?.ce_before).toBeCloseTo(before, 4);
  expect(ref?.ce_after).toBeCloseTo(after, 4);
});
