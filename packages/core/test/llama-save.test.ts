/**
 * saveModel / createTinyModel / loadModel errors: round trips through real files.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { FileExistsError, ModelLoadError } from "../src/errors.js";
import { writeModelWeights } from "../src/io/model-files.js";
import type { Logger } from "../src/log.js";
import { createTinyModel } from "../src/model/create-tiny-model.js";
import { forward } from "../src/model/forward.js";
import { generate } from "../src/model/generate.js";
import { disposeModel, loadModel, type Model } from "../src/model/load-model.js";
import { saveModel } from "../src/model/save-model.js";
import { loadTokenizer } from "../src/tokenizer/load-tokenizer.js";

const STORIES = path.resolve(__dirname, "../../../../shared/models/stories260K");
const readJson = (file: string): unknown => JSON.parse(readFileSync(file, "utf8"));

function logitsOf(model: Model, ids: number[]): Float32Array {
  const input = tf.tensor2d([ids], undefined, "int32");
  const out = forward(model, input);
  const data = out.dataSync() as Float32Array;
  tf.dispose([input, out]);
  return data;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

let tmp = "";
let before = 0;
beforeAll(async () => {
  await initBackend("wasm");
  before = tf.memory().numTensors;
  tmp = await mkdtemp(path.join(os.tmpdir(), "oml-llama-save-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  expect(tf.memory().numTensors).toBe(before);
});

describe("saveModel", () => {
  test("stories260K round trip: same config fields, tokenizer files, identical logits; BF16 close", async () => {
    const model = await loadModel(STORIES);
    const out = path.join(tmp, "stories-copy");
    await saveModel(model, out);
    expect(readJson(path.join(out, "config.json"))).toEqual(readJson(path.join(STORIES, "config.json")));
    expect(readJson(path.join(out, "generation_config.json"))).toEqual(readJson(path.join(STORIES, "generation_config.json")));
    for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
      expect(readFileSync(path.join(out, f))).toEqual(readFileSync(path.join(STORIES, f)));
    }
    expect(readdirSync(tmp).filter((f) => f.includes(".tmp-") || f.includes(".old-"))).toEqual([]);
    const copy = await loadModel(out);
    const ids = [1, 403, 407, 261, 378];
    expect(maxAbsDiff(logitsOf(copy, ids), logitsOf(model, ids))).toBe(0);
    disposeModel(copy);

    const bf16 = path.join(tmp, "stories-bf16");
    await saveModel(model, bf16, { dtype: "BF16" });
    expect((readJson(path.join(bf16, "config.json")) as { torch_dtype: string }).torch_dtype).toBe("bfloat16");
    const half = await loadModel(bf16);
    expect(maxAbsDiff(logitsOf(half, ids), logitsOf(model, ids))).toBeLessThan(0.5);
    disposeModel(half);
    disposeModel(model);
  });

  test("refuses an existing directory unless overwrite; saves override weights", async () => {
    const model = await loadModel(STORIES);
    const out = path.join(tmp, "stories-overwrite");
    await saveModel(model, out);
    await expect(saveModel(model, out)).rejects.toBeInstanceOf(FileExistsError);
    const norm = model.weights.get("model.norm.weight") as tf.Tensor;
    const zeroed = new Map([["model.norm.weight", tf.zerosLike(norm)]]);
    await saveModel(model, out, { overwrite: true, weights: zeroed });
    const copy = await loadModel(out);
    expect(Array.from((copy.weights.get("model.norm.weight") as tf.Tensor).dataSync()).every((v) => v === 0)).toBe(true);
    expect(logitsOf(copy, [1, 403]).every((v) => v === 0)).toBe(true); // final norm 0 → logits 0
    tf.dispose([...zeroed.values()]);
    disposeModel(copy);
    disposeModel(model);
    expect(readdirSync(tmp).filter((f) => f.includes(".tmp-") || f.includes(".old-"))).toEqual([]);
  });
});

describe("createTinyModel", () => {
  test("seeded: same seed same bytes, another seed other weights; loads, tokenizes and generates", async () => {
    const a = await createTinyModel(path.join(tmp, "tiny-a"), { seed: 1 });
    await createTinyModel(path.join(tmp, "tiny-b"), { seed: 1 });
    await createTinyModel(path.join(tmp, "tiny-c"), { seed: 2 });
    const bytes = (d: string): Buffer => readFileSync(path.join(tmp, d, "model.safetensors"));
    expect(bytes("tiny-a").equals(bytes("tiny-b"))).toBe(true);
    expect(bytes("tiny-a").equals(bytes("tiny-c"))).toBe(false);
    expect(a.config).toMatchObject({ vocabSize: 320, hidden: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16, intermediate: 192, tieEmbeddings: false, bosId: 1, eosIds: [2], padId: 3 });

    const model = await loadModel(a.dir);
    const embed = (model.weights.get("model.embed_tokens.weight") as tf.Tensor).arraySync() as number[][];
    expect(embed[3]?.every((v) => v === 0)).toBe(true); // the padding row
    const flat = embed.flat();
    const std = Math.sqrt(flat.reduce((s, v) => s + v * v, 0) / flat.length);
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
    const tok = await loadTokenizer(a.dir);
    const ids = tok.encode("hello world");
    expect(ids[0]).toBe(1);
    const [out] = await generate(model, [ids], { maxNewTokens: 8 });
    expect(out).toHaveLength(8);
    disposeModel(model);
  });
});

describe("loadModel errors", () => {
  const warnings: string[] = [];
  const log: Logger = { debug: () => {}, info: () => {}, warn: (a: object | string, b?: string) => warnings.push(typeof a === "string" ? a : (b ?? "")), error: () => {}, child: () => log };

  test("missing or malformed config.json names the file", async () => {
    const dir = path.join(tmp, "empty");
    await expect(loadModel(dir)).rejects.toThrow(/config\.json: cannot read \(ENOENT\)/);
    await createTinyModel(dir, { seed: 3, hidden: 16, layers: 1 });
    await writeFile(path.join(dir, "config.json"), "{ nope");
    await expect(loadModel(dir)).rejects.toThrow(/config\.json: not valid JSON/);
    await writeFile(path.join(dir, "config.json"), JSON.stringify({ model_type: "bert" }));
    await expect(loadModel(dir)).rejects.toThrow(/model_type "bert", which is not supported \(supported: llama, mistral, qwen2, gpt_neox, gemma, gemma2, phi3\)/);
  });

  test("missing, misshapen and unexpected tensors", async () => {
    const dir = path.join(tmp, "shapes");
    const { config } = await createTinyModel(dir, { seed: 4, hidden: 16, layers: 1, tieEmbeddings: true });
    const model = await loadModel(dir);
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, t] of model.weights) {
      tensors.set(name, { shape: t.shape, data: t.dataSync() as Float32Array });
    }
    disposeModel(model);

    const write = (m: Map<string, { shape: number[]; data: Float32Array }>) => writeModelWeights(dir, m);
    const noNorm = new Map(tensors);
    noNorm.delete("model.norm.weight");
    await write(noNorm);
    const missing = await loadModel(dir).catch((e: unknown) => e as ModelLoadError);
    expect(missing).toBeInstanceOf(ModelLoadError);
    expect((missing as ModelLoadError).message).toMatch(/model\.safetensors: weights do not match config\.json \(missing 1 tensor\(s\): model\.norm\.weight\)/);

    const wrong = new Map(tensors);
    wrong.set("model.layers.0.self_attn.k_proj.weight", { shape: [16, 16], data: new Float32Array(256) });
    await write(wrong);
    await expect(loadModel(dir)).rejects.toThrow(/model\.layers\.0\.self_attn\.k_proj\.weight has shape \[16, 16\], expected \[8, 16\]/);

    const extra = new Map(tensors);
    extra.set("model.layers.0.self_attn.rotary_emb.inv_freq", { shape: [2], data: new Float32Array(2) });
    extra.set("model.extra.weight", { shape: [2], data: new Float32Array(2) });
    extra.set("lm_head.weight", { shape: [config.vocabSize, 16], data: new Float32Array(config.vocabSize * 16) });
    await write(extra);
    const loaded = await loadModel(dir, { log });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/1 unexpected tensor\(s\) skipped: model\.extra\.weight/);
    expect(loaded.weights.has("lm_head.weight")).toBe(false); // tied: the stored copy is ignored
    disposeModel(loaded);
    expect(existsSync(path.join(dir, "model.safetensors"))).toBe(true);
  });
});
