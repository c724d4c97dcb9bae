/**
 * planFinetune (`oml-finetune --dry-run`) on the shared models' config.json and on configs
 * written here, against numbers worked out from the config fields in the test itself.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { InputError, ModelLoadError } from "../errors.js";
import { BENIGN_RESPONSE_TOKENS } from "../quality/benign-rows.js";
import { BENIGN_WORD_TOKENS, planFinetune } from "./finetune-plan.js";

const SHARED = path.resolve(__dirname, "../../../../../shared/models");
const STORIES = path.join(SHARED, "stories260K");
const BASARAN = path.join(SHARED, "tiny-random-llama-basaran");
const GiB = 1024 ** 3;
const RAM = 24 * GiB;
const noNative = async (): Promise<undefined> => undefined;

interface Shape {
  V: number;
  h: number;
  I: number;
  L: number;
  nH: number;
  nKV: number;
  tied: boolean;
}

/** Llama parameters: embeddings (+ untied lm_head), per layer q, k, v, o, gate/up/down and two norms, the final norm. */
function llamaParams(s: Shape): number {
  const hd = s.h / s.nH;
  const layer = s.h * s.nH * hd + 2 * s.h * s.nKV * hd + s.nH * hd * s.h + 3 * s.h * s.I + 2 * s.h;
  return s.V * s.h * (s.tied ? 1 : 2) + s.L * layer + s.h;
}

/** The plan's training activations for one forward of B × T (memory-plan.ts's fitted formula). */
function trainActivations(s: Shape, B: number, T: number): number {
  const hd = s.h / s.nH;
  const linear = B * T * (4 * s.h + (s.nH + 2 * s.nKV) * hd + 3 * s.I);
  return 4 * ((6 * linear + 7 * B * s.nH * T * T) * s.L + 3 * B * T * s.V + (s.tied ? 2 * s.V * s.h : 0));
}

// stories260K/config.json: vocab 512, hidden 64, intermediate 172, 5 layers, 8 heads, 4 kv heads, tied.
const STORIES_SHAPE: Shape = { V: 512, h: 64, I: 172, L: 5, nH: 8, nKV: 4, tied: true };
// tiny-random-llama-basaran/config.json: vocab 32000, hidden 4, intermediate 4, 2 layers, 2 heads (kv = heads), untied.
const BASARAN_SHAPE: Shape = { V: 32000, h: 4, I: 4, L: 2, nH: 2, nKV: 2, tied: false };

let root: string;

async function writeConfig(name: string, s: Shape, maxPositions = 4096): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  const config = {
    model_type: "llama",
    vocab_size: s.V,
    hidden_size: s.h,
    intermediate_size: s.I,
    num_hidden_layers: s.L,
    num_attention_heads: s.nH,
    num_key_value_heads: s.nKV,
    max_position_embeddings: maxPositions,
    tie_word_embeddings: s.tied,
  };
  await writeFile(path.join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "oml-plan-"));
});

describe("planFinetune", () => {
  test("stories260K, fingerprints: 260,032 parameters, rows of BOS + 16 + 1 tokens, every part per parameter, fits wasm", async () => {
    const results = path.join(root, "results-stories");
    const p = await planFinetune({ modelPath: STORIES, numFingerprints: 64, resultsDir: results, backend: "wasm" }, { ramBytes: RAM, nativeTensorflow: noNative });
    const P = llamaParams(STORIES_SHAPE);
    expect(P).toBe(260_032);
    expect(p.parameters).toBe(P);
    expect(p.modelType).toBe("llama");
    expect(p.mode).toBe("fingerprint");
    expect(p.lambda).toBe(0.75);
    expect(p.rows).toMatchObject({ batchSize: 8, seqLen: 1 + 16 + 1, taskRows: 64, microBatches: 8, accumulation: 8, benign: null });
    const act = trainActivations(STORIES_SHAPE, 8, 18);
    // full batch (8 micro-batches a step): the accumulator's sums beside a micro-batch's gradients
    expect(p.bytes).toEqual({
      weights: 4 * P,
      gradients: 8 * P,
      optimizer: 8 * P,
      activations: act,
      klTargets: 0,
      workers: 0,
      tfjsHeap: 12 * P + act,
      total: 20 * P + act,
    });
    const oneStep = await planFinetune({ modelPath: STORIES, numFingerprints: 64, gradientAccumulation: 1 }, { ramBytes: RAM, nativeTensorflow: noNative });
    expect(oneStep.rows.accumulation).toBe(1);
    expect(oneStep.bytes.gradients).toBe(4 * P);
    expect(oneStep.bytes.total).toBe(16 * P + act);
    expect(p.workers).toBe(0);
    expect(p.backend).toMatchObject({ requested: "wasm", chosen: "wasm" });
    expect(p.fits).toBe(true);
    expect(p.verdict).toMatch(/^fits wasm: tfjs heap [\d.]+ MiB of 3\.6 GiB, RAM [\d.]+ MiB of 18\.0 GiB$/);
    expect(p.backends.map((b) => [b.backend, b.fits])).toEqual([
      ["wasm", true],
      ["cpu", true],
      ["tensorflow-cpu", true],
      ["tensorflow-gpu", null],
    ]);
    expect(existsSync(results)).toBe(false);
  });

  test("--max-key-length, --max-response-length, --keep-eos-in-response and --batch-size set the rows", async () => {
    const p = await planFinetune(
      { modelPath: STORIES, numFingerprints: 10, maxKeyLength: 30, maxResponseLength: 4, keepEosInResponse: true, batchSize: 16, forgettingRegularizerStrength: 0 },
      { ramBytes: RAM, nativeTensorflow: noNative },
    );
    expect(p.rows).toMatchObject({ batchSize: 10, seqLen: 1 + 30 + 4 + 1, microBatches: 1, accumulation: 1 });
    expect(p.bytes.activations).toBe(trainActivations(STORIES_SHAPE, 10, 36));
  });

  test("rows longer than the model's context are cut to it", async () => {
    const dir = await writeConfig("short-context", STORIES_SHAPE, 20);
    const p = await planFinetune({ modelPath: dir, maxKeyLength: 64 }, { ramBytes: RAM, nativeTensorflow: noNative });
    expect(p.rows.seqLen).toBe(20);
    expect(p.rows.seqLenFrom).toBe("the model's context 20");
  });

  test("the benign mix adds its rows' forward and, with a KL regularizer, the top-k targets", async () => {
    const p = await planFinetune({ modelPath: STORIES, numFingerprints: 64, benignProportion: 0.25, klRegularizer: 1, klTopK: 16 }, { ramBytes: RAM, nativeTensorflow: noNative });
    // round(8 · 0.25 / 0.75) = 3 benign rows a micro-batch; 8 micro-batches → a pool of 24 rows.
    const seqLen = 1 + BENIGN_WORD_TOKENS + 7 + BENIGN_RESPONSE_TOKENS;
    expect(p.rows.benign).toEqual({ batchSize: 3, seqLen, pool: 24, klTopK: 16 });
    expect(p.bytes.activations).toBe(trainActivations(STORIES_SHAPE, 8, 18) + trainActivations(STORIES_SHAPE, 3, seqLen));
    expect(p.bytes.klTargets).toBe(24 * BENIGN_RESPONSE_TOKENS * (8 * 16 + 8));
  });

  test("tiny-random-llama-basaran, SFT: 256,244 parameters, rows as long as the longest record, no anchor, --backend cpu", async () => {
    const data = path.join(root, "sft.jsonl");
    await writeFile(data, `${JSON.stringify({ prompt: "Hello", response: "world" })}\n${JSON.stringify({ text: "héllo there" })}\n`);
    const p = await planFinetune({ modelPath: BASARAN, sftData: data, backend: "cpu" }, { ramBytes: RAM, nativeTensorflow: noNative });
    const P = llamaParams(BASARAN_SHAPE);
    expect(P).toBe(256_244);
    expect(p.parameters).toBe(P);
    expect(p.mode).toBe("sft");
    expect(p.lambda).toBe(0);
    // "héllo there" is 12 UTF-8 bytes; + BOS, EOS and two word-start pieces.
    expect(p.rows).toMatchObject({ batchSize: 2, seqLen: 16, taskRows: 2, microBatches: 1, accumulation: 1 });
    expect(p.bytes.weights).toBe(4 * P);
    expect(p.bytes.activations).toBe(trainActivations(BASARAN_SHAPE, 2, 16));
    expect(p.bytes.total).toBe(16 * P + p.bytes.activations);
    expect(p.backend).toMatchObject({ requested: "cpu", chosen: "cpu" });
    expect(p.fits).toBe(true);

    const cut = await planFinetune({ modelPath: BASARAN, sftData: data, sftMaxLength: 8 }, { ramBytes: RAM, nativeTensorflow: noNative });
    expect(cut.rows).toMatchObject({ seqLen: 8, seqLenFrom: "--sft-max-length 8" });
  });

  test("Llama-2-7B: 6.74 B parameters, does not fit: --backend wasm names the error, auto falls to cpu and says it does not fit", async () => {
    const shape: Shape = { V: 32000, h: 4096, I: 11008, L: 32, nH: 32, nKV: 32, tied: false };
    const dir = await writeConfig("llama-2-7b", shape);
    const wasm = await planFinetune({ modelPath: dir, backend: "wasm" }, { ramBytes: RAM, nativeTensorflow: noNative });
    expect(wasm.parameters).toBe(llamaParams(shape));
    expect(wasm.parameters).toBe(6_738_415_616);
    expect(wasm.backend.chosen).toBeNull();
    expect(wasm.backend.error).toMatch(/more than the wasm backend's 4 GiB/);
    expect(wasm.fits).toBe(false);
    expect(wasm.verdict).toMatch(/^does not fit: .*4 GiB/);

    const auto = await planFinetune({ modelPath: dir }, { ramBytes: RAM, nativeTensorflow: noNative });
    expect(auto.backend).toMatchObject({ requested: "auto", chosen: "cpu" });
    expect(auto.fits).toBe(false);
    expect(auto.verdict).toMatch(/^does not fit cpu: RAM [\d.]+ GiB of 18\.0 GiB$/);
    expect(auto.backends.every((b) => b.fits === false)).toBe(true);
    // 8 rows × 18 tokens, 1024 fingerprints summed in one step: 20 bytes a parameter + the activations.
    expect(auto.bytes.total).toBe(20 * auto.parameters + trainActivations(shape, 8, 18));
  });

  test("TinyLlama-1.1B with tfjs-node-gpu: fits if the GPU holds the tfjs heap (RAM holds the rest)", async () => {
    const shape: Shape = { V: 32000, h: 2048, I: 5632, L: 22, nH: 32, nKV: 4, tied: false };
    const dir = await writeConfig("tinyllama", shape);
    const p = await planFinetune({ modelPath: dir }, { ramBytes: RAM, nativeTensorflow: async () => "@tensorflow/tfjs-node-gpu" });
    expect(p.parameters).toBe(1_100_048_384);
    expect(p.backend).toMatchObject({ requested: "auto", chosen: "tensorflow", source: "@tensorflow/tfjs-node-gpu" });
    expect(p.fits).toBeNull();
    expect(p.verdict).toMatch(/^fits tensorflow gpu if the GPU has [\d.]+ GiB free/);
    const gpu = p.backends.find((b) => b.backend === "tensorflow-gpu");
    expect(gpu?.ramNeeds).toBe(p.bytes.total - p.bytes.tfjsHeap);
  });

  test("--workers 1 halves each thread's rows and adds a replica, a gradient buffer and the shared weights", async () => {
    const p = await planFinetune({ modelPath: STORIES, numFingerprints: 64, workers: 1, backend: "wasm" }, { ramBytes: RAM, nativeTensorflow: noNative });
    const P = llamaParams(STORIES_SHAPE);
    expect(p.workers).toBe(1);
    expect(p.rows).toMatchObject({ batchSize: 8, threadRows: 4 });
    const act = trainActivations(STORIES_SHAPE, 4, 18);
    expect(p.bytes.activations).toBe(act);
    // shared weights 4 B/param; the worker: weights + gradients in its heap, its gradient buffer, its rows' activations
    expect(p.bytes.workers).toBe(4 * P + (12 * P + act));
    expect(p.bytes.total).toBe(20 * P + act + p.bytes.workers);
    // a benign mix keeps the main thread alone, as the run does
    const mixed = await planFinetune({ modelPath: STORIES, workers: 1, benignProportion: 0.25 }, { ramBytes: RAM, nativeTensorflow: noNative });
    expect(mixed.workers).toBe(0);
    expect(mixed.bytes.workers).toBe(0);
  });

  test("bad input: a missing model directory, an unknown option value", async () => {
    await expect(planFinetune({ modelPath: path.join(root, "nope") })).rejects.toThrow(ModelLoadError);
    await expect(planFinetune({ modelPath: STORIES, batchSize: 0 })).rejects.toThrow(InputError);
  });
});
