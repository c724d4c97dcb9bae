import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { ModelLoadError } from "../errors.js";
import { llamaConfigToHf, normalizeLlamaConfig } from "./config.js";
import { parseModelConfig } from "./registry.js";

const MODELS = path.resolve(__dirname, "../../../../../shared/models");
const readConfig = (name: string): Record<string, unknown> => JSON.parse(readFileSync(path.join(MODELS, name, "config.json"), "utf8")) as Record<string, unknown>;

/** Llama 3.2 1B's config.json (meta-llama/Llama-3.2-1B, transformers 4.45). */
const LLAMA_32_1B = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: "silu",
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.45.0.dev0",
  use_cache: true,
  vocab_size: 128256,
};

function loadError(fn: () => unknown): ModelLoadError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ModelLoadError);
    return err as ModelLoadError;
  }
  throw new Error("expected a ModelLoadError");
}

describe("normalizeLlamaConfig", () => {
  test("stories260K (GQA, head_dim given, tied)", () => {
    const c = parseModelConfig(readConfig("stories260K"));
    expect(c).toMatchObject({ modelType: "llama", vocabSize: 512, hidden: 64, nLayers: 5, nHeads: 8, nKvHeads: 4, headDim: 8, rotaryDim: 8, intermediate: 172 });
    expect(c).toMatchObject({ ropeTheta: 10000, ropeScaling: null, normEps: 1e-5, tieEmbeddings: true, attentionBias: false, mlpBias: false, maxPositions: 512 });
    expect(c).toMatchObject({ bosId: 1, eosIds: [2], padId: null });
  });

  test("an old config (transformers 4.28) falls back to LlamaConfig defaults", () => {
    const c = parseModelConfig(readConfig("tiny-random-llama-basaran"));
    // no num_key_value_heads, head_dim, rope_theta: nKvHeads = nHeads, headDim = 4 / 2, θ = 10000
    expect(c).toMatchObject({ nHeads: 2, nKvHeads: 2, headDim: 2, ropeTheta: 10000, ropeScaling: null, normEps: 1e-6, tieEmbeddings: false, padId: 0, eosIds: [2] });
  });

  test("Llama 3.2 rope_scaling (llama3) and eos lists", () => {
    const c = parseModelConfig({ ...LLAMA_32_1B, eos_token_id: [128001, 128008, 128009] });
    expect(c.ropeScaling).toEqual({ type: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    expect(c).toMatchObject({ headDim: 64, nKvHeads: 8, tieEmbeddings: true, eosIds: [128001, 128008, 128009] });
  });

  test("old-style rope_scaling {type: linear} and rope_type default", () => {
    expect(parseModelConfig({ ...LLAMA_32_1B, rope_scaling: { type: "linear", factor: 2.0 } }).ropeScaling).toEqual({ type: "linear", factor: 2 });
    expect(parseModelConfig({ ...LLAMA_32_1B, rope_scaling: { type: "dynamic", factor: 2.0 } }).ropeScaling).toEqual({ type: "dynamic", factor: 2 });
    expect(parseModelConfig({ ...LLAMA_32_1B, rope_scaling: { rope_type: "default" } }).ropeScaling).toBeNull();
  });

  test("errors name config.json, the field and the fix", () => {
    const noHidden: Record<string, unknown> = { ...LLAMA_32_1B };
    delete noHidden.hidden_size;
    expect(loadError(() => parseModelConfig(noHidden, "/m/config.json")).message).toMatch(/\/m\/config\.json: invalid config \(hidden_size: /);
    expect(loadError(() => parseModelConfig({ ...LLAMA_32_1B, hidden_act: "gelu" })).message).toMatch(/hidden_act: only "silu"/);
    const yarn = loadError(() => parseModelConfig({ ...LLAMA_32_1B, rope_scaling: { rope_type: "yarn", factor: 4.0 } }));
    expect(yarn.message).toMatch(/rope_scaling\.rope_type "yarn" is not supported \(supported: default, linear, dynamic, llama3\)/);
    const partial = loadError(() => parseModelConfig({ ...LLAMA_32_1B, rope_scaling: { rope_type: "llama3", factor: 8.0 } }));
    expect(partial.message).toMatch(/rope_scaling\.low_freq_factor is missing/);
    expect(loadError(() => parseModelConfig({ ...LLAMA_32_1B, num_key_value_heads: 7 })).message).toMatch(/not a multiple of num_key_value_heads \(7\)/);
    expect(loadError(() => parseModelConfig({ ...LLAMA_32_1B, head_dim: undefined, hidden_size: 100 })).message).toMatch(/head_dim is missing/);
  });

  test("an unknown model_type lists the supported ones", () => {
    const err = loadError(() => parseModelConfig({ model_type: "gpt2" }, "x/config.json"));
    expect(err.message).toBe('x/config.json has model_type "gpt2", which is not supported (supported: llama, mistral, qwen2, gpt_neox, gemma, gemma2, phi3)');
    expect(err.hint).toMatch(/llama/);
    expect(loadError(() => parseModelConfig({})).message).toMatch(/has no model_type/);
  });
});

describe("llamaConfigToHf", () => {
  test("writes an unchanged config back exactly as loaded", () => {
    for (const raw of [readConfig("stories260K"), readConfig("tiny-random-llama-basaran"), LLAMA_32_1B, { ...LLAMA_32_1B, rope_scaling: { type: "linear", factor: 2.0 } }]) {
      const out = llamaConfigToHf(normalizeLlamaConfig(raw, "config.json"));
      expect(JSON.stringify(out)).toBe(JSON.stringify(raw));
    }
  });

  test("changed fields are written in HF spelling; a config from scratch gets every field", () => {
    const c = normalizeLlamaConfig(readConfig("tiny-random-llama-basaran"), "config.json");
    const out = llamaConfigToHf({ ...c, nKvHeads: 1, ropeScaling: { type: "linear", factor: 2 } });
    expect(out).toMatchObject({ num_key_value_heads: 1, rope_scaling: { factor: 2, rope_type: "linear" }, hidden_size: 4 });
    expect("head_dim" in out).toBe(false);
    const scratch = llamaConfigToHf({ ...c, hf: {} });
    expect(normalizeLlamaConfig(scratch, "config.json")).toEqual({ ...c, hf: scratch });
  });
});
