/**
 * The onnx engine (onnxruntime-node through @huggingface/transformers) on stories260K exported
 * to ONNX by our own exporter: its logits equal the reference logits and our tfjs engine's on
 * mixed-length left-padded batches, its greedy generation equals the reference continuation,
 * and the strategies run on it. No network: the ONNX file is built here.
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import type { CausalLm } from "../src/engines/causal-lm.js";
import { writeLlamaOnnxDir } from "../src/engines/export-llama-onnx.js";
import { loadCausalLm } from "../src/engines/load-causal-lm.js";
import { loadTfjsCausalLm } from "../src/engines/tfjs-causal-lm.js";
import { loadModel, disposeModel } from "../src/model/load-model.js";
import { englishFingerprints } from "../src/strategies/english.js";
import { perinucleusFingerprints } from "../src/strategies/perinucleus.js";
import { createRng } from "../src/util/rng.js";

const DIR = path.resolve(__dirname, "../../../../shared/models/stories260K");
const ref = JSON.parse(readFileSync(path.join(DIR, "reference_outputs.json"), "utf8")) as {
  logits: { input_ids: number[]; logits: number[][] }[];
  greedy: { input_ids: number[]; max_new_tokens: number; output_ids: number[]; stopped_on_stop_id: boolean }[];
};

let onnxDir: string;
let onnx: CausalLm;
let tfjs: CausalLm;
let before = 0;

beforeAll(async () => {
  await initBackend("cpu");
  before = tf.memory().numTensors;
  const tmp = await mkdtemp(path.join(os.tmpdir(), "oml-onnx-"));
  onnxDir = path.join(tmp, "stories260K-onnx");
  const model = await loadModel(DIR);
  await writeLlamaOnnxDir(model, onnxDir);
  disposeModel(model);
  onnx = await loadCausalLm(onnxDir, { engine: "onnx", onnxCacheDir: path.join(tmp, "cache") });
  tfjs = await loadTfjsCausalLm(DIR);
});
afterAll(async () => {
  await onnx?.dispose();
  await tfjs?.dispose();
  expect(tf.memory().numTensors).toBe(before);
});

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  }
  return m;
}

describe("onnx engine on stories260K exported to ONNX", () => {
  test("loads through transformers.js with the model's own limits", () => {
    expect(onnx.engine).toBe("onnx");
    expect(onnx.vocabSize).toBe(512);
    expect(onnx.maxPositions).toBe(512);
    expect([...onnx.eosIds]).toEqual([2, 1]);
  });

  test("last-position logits equal the reference and the tfjs engine on a mixed-length batch", async () => {
    const prompts = [...ref.logits.map((l) => l.input_ids), [1, 403], [1, 403, 407, 261, 378, 432, 300, 290]];
    const [a, b] = [await onnx.nextTokenLogits(prompts), await tfjs.nextTokenLogits(prompts)];
    ref.logits.forEach((l, i) => expect(maxDiff(a[i] as Float32Array, l.logits[l.logits.length - 1] as number[])).toBeLessThan(2e-4));
    prompts.forEach((_, i) => expect(maxDiff(a[i] as Float32Array, b[i] as Float32Array)).toBeLessThan(2e-4));
  });

  test("greedy generation (KV cache, both prompts in one left-padded batch) equals the reference", async () => {
    const cases = ref.greedy.filter((g) => g.max_new_tokens === 32);
    const got = await onnx.generate(
      cases.map((g) => g.input_ids),
      { maxNewTokens: 32, temperature: 0, seed: 0 },
    );
    cases.forEach((g, i) => {
      const row = got[i] as number[];
      expect(g.stopped_on_stop_id ? row.slice(0, -1) : row).toEqual(g.output_ids);
    });
  });

  test("perinucleus on the onnx engine = on the tfjs engine; english is deterministic for a seed", async () => {
    const keys = ["Once upon a time", "Lily", "The little dog ran to the park and saw a big red ball", "Tom and Sam went"];
    const params = { keys, keyLength: 12, responseLength: 1, numResponses: 2, t: 0.8, k: 3, batchSize: 3 };
    const a = await perinucleusFingerprints({ ...params, lm: onnx, rng: createRng(1) });
    const b = await perinucleusFingerprints({ ...params, lm: tfjs, rng: createRng(1) });
    expect(a.map((f) => f.response)).toEqual(b.map((f) => f.response));
    const en = { lm: onnx, words: ["Lily", "dog", "sun"], numFingerprints: 3, keyLength: 8, responseLength: 4, batchSize: 2, temperature: 0.5, firstTokenStrategy: "word" as const, instruct: false };
    const x = await englishFingerprints({ ...en, rng: createRng(9) });
    expect(await englishFingerprints({ ...en, rng: createRng(9) })).toEqual(x);
    expect(x.every((f) => ["Lily", "dog", "sun"].some((w) => f.key.startsWith(w)))).toBe(true);
  });

  test("an export with num_logits_to_keep (as newer onnx-community exports have): same logits and greedy ids", async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), "oml-onnx-keep-"));
    const model = await loadModel(DIR);
    await writeLlamaOnnxDir(model, path.join(tmp, "m"), { logitsToKeep: true });
    disposeModel(model);
    const keep = await loadCausalLm(path.join(tmp, "m"), { engine: "onnx", onnxCacheDir: path.join(tmp, "cache") });
    try {
      const prompts = [[1, 403, 407, 261, 378], [1, 403]];
      const [a, b] = [await keep.nextTokenLogits(prompts), await onnx.nextTokenLogits(prompts)];
      prompts.forEach((_, i) => expect(maxDiff(a[i] as Float32Array, b[i] as Float32Array)).toBeLessThan(1e-5));
      const g = ref.greedy.find((r) => r.max_new_tokens === 32) as (typeof ref.greedy)[number];
      const [row] = await keep.generate([g.input_ids], { maxNewTokens: 32, temperature: 0, seed: 0 });
      expect(g.stopped_on_stop_id ? row?.slice(0, -1) : row).toEqual(g.output_ids);
    } finally {
      await keep.dispose();
    }
  });

  test("errors: missing directory, no ONNX file, an invalid ONNX file", async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), "oml-onnx-bad-"));
    await expect(loadCausalLm(path.join(tmp, "nope"), { engine: "onnx" })).rejects.toThrow(/nope: no such model directory/);
    await expect(loadCausalLm(DIR, { engine: "onnx" })).rejects.toThrow(/stories260K: no ONNX decoder found/);
    const bad = path.join(tmp, "bad");
    await mkdir(path.join(bad, "onnx"), { recursive: true });
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) {
      await writeFile(path.join(bad, f), readFileSync(path.join(DIR, f)));
    }
    await writeFile(path.join(bad, "onnx", "model.onnx"), "not a protobuf");
    await expect(loadCausalLm(bad, { engine: "onnx", onnxCacheDir: path.join(tmp, "cache") })).rejects.toThrow(/model\.onnx: onnxruntime cannot load this model/);
  });

  test("lazy: no module of core imports @huggingface/transformers statically", () => {
    const src = path.resolve(__dirname, "../src");
    const files = readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
    const staticImport = /^\s*import\s+(?!type\b)[^;]*from\s+["']@huggingface\/transformers["']/m;
    const offenders = files.filter((f) => staticImport.test(readFileSync(path.join(src, f), "utf8")));
    expect(offenders).toEqual([]);
    expect(readFileSync(path.join(src, "engines/load-causal-lm.ts"), "utf8")).toContain('await import("./onnx-causal-lm.js")');
  });
});
