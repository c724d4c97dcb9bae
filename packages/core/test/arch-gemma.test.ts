/**
 * gemma: (1 + w) RMSNorm, √C-scaled embeddings, GeGLU with tanh GELU, head_dim from the
 * config, tied head.
 */
import { describe, expect, test } from "vitest";
import { parseModelConfig } from "../src/model/registry.js";
import { archBehaviourSuite, referenceTest } from "./arch-suite.js";

/** A tiny Gemma: multi-query (1 kv head) like Gemma 2B, nh·hs = 64 ≠ hidden 32 like Gemma 7B. */
const GEMMA = {
  architectures: ["GemmaForCausalLM"],
  model_type: "gemma",
  vocab_size: 320,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 1,
  head_dim: 16,
  hidden_act: "gelu",
  hidden_activation: "gelu_pytorch_tanh",
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 10000.0,
  attention_bias: false,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 3,
  torch_dtype: "float32",
};

archBehaviourSuite({ title: "gemma (tied, MQA, head_dim 16)", config: GEMMA, headName: "lm_head.weight" });

describe("gemma variants against the direct computation", () => {
  referenceTest("untied head, exact GELU (hidden_activation: gelu), attention bias", { ...GEMMA, tie_word_embeddings: false, hidden_activation: "gelu", attention_bias: true, num_key_value_heads: 2 });
  referenceTest("no hidden_activation: tanh GELU whatever hidden_act says", { ...GEMMA, hidden_activation: undefined });
});

describe("gemma config", () => {
  test("activation: hidden_activation, else gelu_pytorch_tanh (legacy hidden_act ignored); GemmaConfig defaults", () => {
    expect(parseModelConfig(GEMMA).hiddenAct).toBe("gelu_pytorch_tanh");
    expect(parseModelConfig({ ...GEMMA, hidden_activation: undefined }).hiddenAct).toBe("gelu_pytorch_tanh");
    expect(parseModelConfig({ ...GEMMA, hidden_activation: "gelu" }).hiddenAct).toBe("gelu");
    expect(() => parseModelConfig({ ...GEMMA, hidden_activation: "silu" })).toThrow(/hidden_activation: expected a GELU variant/);
    const { head_dim: _h, tie_word_embeddings: _t, bos_token_id: _b, eos_token_id: _e, pad_token_id: _p, num_key_value_heads: _k, ...bare } = GEMMA;
    expect(parseModelConfig({ ...bare, num_attention_heads: 16 })).toMatchObject({ headDim: 256, nKvHeads: 16, tieEmbeddings: true, bosId: 2, eosIds: [1], padId: 0 });
  });
});

// The Gemma 3 tokenizer end to end runs in arch-gemma2.test.ts (one 262k-token tokenizer load is enough).
