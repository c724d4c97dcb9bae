/**
 * mistral: Llama's block plus a sliding window on every layer.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { disposeModel, loadModel } from "../src/model/load-model.js";
import { parseModelConfig } from "../src/model/registry.js";
import { archBehaviourSuite, realTokenizerTest } from "./arch-suite.js";
import { logitsOf, maxAbsDiff, SHARED_TOKENIZERS, writeTinyModel } from "./arch-tiny-model.js";

/** A tiny Mistral: GQA 4/2 heads of 8, window 4 (shorter than the test sequences). */
const MISTRAL = {
  architectures: ["MistralForCausalLM"],
  model_type: "mistral",
  vocab_size: 320,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 8,
  hidden_act: "silu",
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 3,
  torch_dtype: "float32",
};

archBehaviourSuite({ title: "mistral (sliding window 4)", config: MISTRAL, headName: "lm_head.weight" });
archBehaviourSuite({ title: "mistral (no window, tied)", config: { ...MISTRAL, sliding_window: null, tie_word_embeddings: true }, headName: "lm_head.weight", seed: 2 });

describe("mistral config", () => {
  test("MistralConfig defaults: 8 kv heads, window 4096; null window kept; head_dim fallback", () => {
    const { num_key_value_heads: _kv, sliding_window: _w, head_dim: _hd, ...rest } = MISTRAL;
    const c = parseModelConfig({ ...rest, num_attention_heads: 16 });
    expect(c).toMatchObject({ modelType: "mistral", nHeads: 16, nKvHeads: 8, headDim: 2, rotaryDim: 2 });
    expect(c.layerWindows).toEqual([4096, 4096]);
    expect(parseModelConfig({ ...MISTRAL, sliding_window: null }).layerWindows).toEqual([null, null]);
  });

  test("errors name the file and field", () => {
    expect(() => parseModelConfig({ ...MISTRAL, hidden_act: "gelu" }, "m/config.json")).toThrow(/m\/config\.json: invalid config \(hidden_act: only "silu" is supported for mistral\)/);
    expect(() => parseModelConfig({ ...MISTRAL, num_key_value_heads: 3 })).toThrow(/num_attention_heads \(4\) is not a multiple of num_key_value_heads \(3\)/);
  });

  test("transformers 5 rope_parameters are read", () => {
    const { rope_theta: _t, ...rest } = MISTRAL;
    expect(parseModelConfig({ ...rest, rope_parameters: { rope_type: "default", rope_theta: 1e6 } }).ropeTheta).toBe(1e6);
  });
});

describe("mistral sliding window in the model", () => {
  let tmp = "";
  beforeAll(async () => {
    await initBackend("wasm");
    tmp = await mkdtemp(path.join(os.tmpdir(), "oml-mistral-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  test("window W: positions < W equal the unwindowed model, later ones differ; no window = llama, bit for bit", async () => {
    const n = tf.memory().numTensors;
    const { tensors } = await writeTinyModel(path.join(tmp, "w4"), { config: MISTRAL, seed: 7 });
    await writeTinyModel(path.join(tmp, "full"), { config: { ...MISTRAL, sliding_window: null }, seed: 7 });
    await writeTinyModel(path.join(tmp, "llama"), { config: { ...MISTRAL, model_type: "llama", architectures: ["LlamaForCausalLM"], sliding_window: undefined }, seed: 7 });
    expect(tensors.size).toBe(3 + 2 * 9); // embed, final norm, head; per layer 2 norms + 7 projections
    const [w4, full, llama] = await Promise.all(["w4", "full", "llama"].map((d) => loadModel(path.join(tmp, d))));
    const ids = [[1, 40, 41, 42, 43, 44, 45, 46]];
    const a = logitsOf(w4!, ids)[0] as number[][];
    const b = logitsOf(full!, ids)[0] as number[][];
    expect(maxAbsDiff(a.slice(0, 4), b.slice(0, 4))).toBeLessThan(1e-5);
    for (let t = 4; t < 8; t++) {
      expect(maxAbsDiff(a[t], b[t])).toBeGreaterThan(1e-3);
    }
    expect(maxAbsDiff(logitsOf(llama!, ids), b)).toBe(0);
    // the window bounds the receptive field: each layer looks back 3 tokens, two layers 6, so
    // position 7 no longer depends on token 0, while position 6 still does
    const c = logitsOf(w4!, [[99, 40, 41, 42, 43, 44, 45, 46]])[0] as number[][];
    expect(maxAbsDiff(c[7], a[7])).toBeLessThan(1e-5);
    expect(maxAbsDiff(c[6], a[6])).toBeGreaterThan(1e-3);
    for (const m of [w4, full, llama]) {
      disposeModel(m!);
    }
    expect(tf.memory().numTensors).toBe(n);
  });

  test("window 1: each token attends to itself only, so its logits ignore every other token", async () => {
    const n = tf.memory().numTensors;
    await writeTinyModel(path.join(tmp, "w1"), { config: { ...MISTRAL, sliding_window: 1 }, seed: 8 });
    const m = await loadModel(path.join(tmp, "w1"));
    const x = logitsOf(m, [[40, 41, 42, 43]])[0] as number[][];
    const y = logitsOf(m, [[43, 50, 42, 60, 70, 40]])[0] as number[][];
    // softmax over one key is 1: the output is the token's own value, RoPE does not touch v
    expect(maxAbsDiff(x[0], y[5])).toBeLessThan(1e-5);
    expect(maxAbsDiff(x[2], y[2])).toBeLessThan(1e-5);
    expect(maxAbsDiff(x[3], y[0])).toBeLessThan(1e-5);
    disposeModel(m);
    expect(tf.memory().numTensors).toBe(n);
  });
});

const { vocab_size: _v, pad_token_id: _p, ...TOKENIZER_CONFIG } = MISTRAL;
realTokenizerTest("mistral with the Mistral-7B-v0.1 tokenizer: loadTokenizer + loadModel + generate", { ...TOKENIZER_CONFIG, sliding_window: null }, path.join(SHARED_TOKENIZERS, "mistral-7b-v0.1"));
