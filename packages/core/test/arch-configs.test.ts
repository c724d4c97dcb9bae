/**
 * config.json of the Hub models each family maps to (the fields that matter, as published):
 * normalisation gives the right head layout, windows, caps and RoPE; configToHf writes an
 * unchanged config back exactly; a changed field is written in transformers' spelling.
 */
import { describe, expect, test } from "vitest";
import type { ModelConfig } from "../src/model/config.js";
import { getArchitecture, parseModelConfig } from "../src/model/registry.js";

const PYTHIA_70M = {
  architectures: ["GPTNeoXForCausalLM"],
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: "gelu",
  hidden_size: 512,
  initializer_range: 0.02,
  intermediate_size: 2048,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 2048,
  model_type: "gpt_neox",
  num_attention_heads: 8,
  num_hidden_layers: 6,
  rotary_emb_base: 10000,
  rotary_pct: 0.25,
  tie_word_embeddings: false,
  torch_dtype: "float16",
  transformers_version: "4.24.0",
  use_cache: true,
  use_parallel_residual: true,
  vocab_size: 50304,
};

const MISTRAL_7B_V03 = {
  architectures: ["MistralForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: "mistral",
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 1000000.0,
  sliding_window: null,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  transformers_version: "4.42.0.dev0",
  use_cache: true,
  vocab_size: 32768,
};

const GEMMA_2_2B = {
  architectures: ["Gemma2ForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  attn_logit_softcapping: 50.0,
  bos_token_id: 2,
  cache_implementation: "hybrid",
  eos_token_id: [1, 107],
  final_logit_softcapping: 30.0,
  head_dim: 256,
  hidden_act: "gelu_pytorch_tanh",
  hidden_activation: "gelu_pytorch_tanh",
  hidden_size: 2304,
  initializer_range: 0.02,
  intermediate_size: 9216,
  max_position_embeddings: 8192,
  model_type: "gemma2",
  num_attention_heads: 8,
  num_hidden_layers: 26,
  num_key_value_heads: 4,
  pad_token_id: 0,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_theta: 10000.0,
  sliding_window: 4096,
  torch_dtype: "float32",
  transformers_version: "4.42.4",
  use_cache: true,
  vocab_size: 256000,
};

const GEMMA_2B = {
  architectures: ["GemmaForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 2,
  eos_token_id: 1,
  head_dim: 256,
  hidden_act: "gelu",
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 16384,
  max_position_embeddings: 8192,
  model_type: "gemma",
  num_attention_heads: 8,
  num_hidden_layers: 18,
  num_key_value_heads: 1,
  pad_token_id: 0,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 10000.0,
  torch_dtype: "bfloat16",
  transformers_version: "4.38.0.dev0",
  use_cache: true,
  vocab_size: 256000,
};

const PHI3_MINI_4K = {
  architectures: ["Phi3ForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  auto_map: { AutoConfig: "configuration_phi3.Phi3Config", AutoModelForCausalLM: "modeling_phi3.Phi3ForCausalLM" },
  bos_token_id: 1,
  embd_pdrop: 0.0,
  eos_token_id: 32000,
  hidden_act: "silu",
  hidden_size: 3072,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 4096,
  model_type: "phi3",
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  original_max_position_embeddings: 4096,
  pad_token_id: 32000,
  resid_pdrop: 0.0,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000.0,
  sliding_window: 2047,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  transformers_version: "4.40.2",
  use_cache: true,
  vocab_size: 32064,
};

/** Phi-3-mini-128k's shape (factor values shortened to a pattern; 48 each = head_dim 96 / 2). */
const PHI3_MINI_128K = {
  ...PHI3_MINI_4K,
  max_position_embeddings: 131072,
  sliding_window: 262144,
  rope_scaling: { long_factor: Array.from({ length: 48 }, (_, i) => 1 + i / 4), short_factor: Array.from({ length: 48 }, (_, i) => 1 + i / 100), type: "longrope" },
};

const QWEN25_05B = {
  architectures: ["Qwen2ForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: "silu",
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: "qwen2",
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.40.1",
  use_cache: true,
  use_mrope: false,
  use_sliding_window: false,
  vocab_size: 151936,
};

const CASES: [string, Record<string, unknown>, Partial<ModelConfig>][] = [
  ["EleutherAI/pythia-70m-deduped", PYTHIA_70M, { headDim: 64, rotaryDim: 16, nKvHeads: 8, parallelResidual: true, tieEmbeddings: false, hiddenAct: "gelu", eosIds: [0] }],
  ["mistralai/Mistral-7B-v0.3", MISTRAL_7B_V03, { headDim: 128, rotaryDim: 128, nKvHeads: 8, ropeTheta: 1e6, layerWindows: new Array(32).fill(null) }],
  [
    "google/gemma-2-2b",
    GEMMA_2_2B,
    { headDim: 256, nKvHeads: 4, hiddenAct: "gelu_pytorch_tanh", queryPreAttnScalar: 256, attnSoftcap: 50, finalSoftcap: 30, tieEmbeddings: true, eosIds: [1, 107], layerWindows: Array.from({ length: 26 }, (_, i) => (i % 2 === 0 ? 4096 : null)) },
  ],
  ["google/gemma-2b (legacy hidden_act: gelu)", GEMMA_2B, { headDim: 256, nKvHeads: 1, hiddenAct: "gelu_pytorch_tanh", tieEmbeddings: true, bosId: 2, padId: 0 }],
  ["microsoft/Phi-3-mini-4k-instruct", PHI3_MINI_4K, { headDim: 96, rotaryDim: 96, nKvHeads: 32, ropeScaling: null, layerWindows: new Array(32).fill(2047), padId: 32000 }],
  ["microsoft/Phi-3-mini-128k-instruct (shape)", PHI3_MINI_128K, { headDim: 96, maxPositions: 131072 }],
  ["Qwen/Qwen2.5-0.5B", QWEN25_05B, { headDim: 64, nKvHeads: 2, qkvBias: true, attentionBias: false, tieEmbeddings: true, layerWindows: new Array(24).fill(null) }],
];

describe.each(CASES)("%s", (_name, raw, want) => {
  test("normalises to the right layout", () => {
    expect(parseModelConfig(raw)).toMatchObject(want);
  });

  test("configToHf writes an unchanged config back exactly", () => {
    const c = parseModelConfig(raw);
    expect(getArchitecture(c.modelType).configToHf(c)).toEqual(raw);
  });
});

describe("configToHf of changed fields", () => {
  test("changed values are written in transformers' spelling; the rest stays as loaded", () => {
    const neox = parseModelConfig(PYTHIA_70M);
    expect(getArchitecture("gpt_neox").configToHf({ ...neox, ropeTheta: 500, eosIds: [0, 1], padId: 1 })).toEqual({ ...PYTHIA_70M, rotary_emb_base: 500, pad_token_id: 1 });
    const gemma2 = parseModelConfig(GEMMA_2_2B);
    expect(getArchitecture("gemma2").configToHf({ ...gemma2, finalSoftcap: null })).toEqual({ ...GEMMA_2_2B, final_logit_softcapping: null });
  });

  test("Phi-3-mini-128k: LongRoPE attention factor √(1 + ln 32 / ln 4096) = 1.19024", () => {
    const s = parseModelConfig(PHI3_MINI_128K).ropeScaling;
    expect(s?.type).toBe("longrope");
    expect(s && "attentionFactor" in s ? s.attentionFactor : 0).toBeCloseTo(1.1902380714, 9);
  });
});
