/**
 * Mistral (transformers `MistralForCausalLM`): Llama's block exactly (RMSNorm, SwiGLU, GQA,
 * no biases), plus `sliding_window`: when set, every layer's query sees only the last W keys
 * (itself included); our attention bias applies it once it is shorter than the sequence.
 * Mistral-7B v0.1 has W = 4096, v0.2/v0.3 null; at fingerprint lengths it never bites.
 * Defaults are transformers' MistralConfig (num_key_value_heads 8, sliding_window 4096,
 * max_position_embeddings 4096·32, rms_norm_eps 1e-6, rope_theta 10000, bos 1, eos 2).
 */
import { z } from "zod";
import { configToHfWith, LLAMA_LIKE_HF_FIELDS, parseHfConfig, partialRotaryFactor, resolveHeadLayout, RopeParametersSchema, ropeScalingOf, ropeTheta } from "./arch-config.js";
import { posInt, RopeScalingSchema, toIdList, tokenId, TokenIdsSchema, type ModelConfig } from "./config.js";
import { llamaStyleArchitecture } from "./llama-style.js";
import { LLAMA_STYLE } from "./llama.js";
import type { Architecture } from "./registry.js";

/** HF MistralConfig fields we read. */
export const MistralConfigSchema = z.looseObject({
  model_type: z.literal("mistral"),
  vocab_size: posInt,
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt.default(8),
  /** absent before transformers 4.42 (Mistral-Nemo needs it): = hidden_size / num_attention_heads */
  head_dim: posInt.nullish(),
  hidden_act: z.literal("silu", { error: 'only "silu" is supported for mistral' }).default("silu"),
  max_position_embeddings: posInt.default(4096 * 32),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().nullish(),
  rope_scaling: RopeScalingSchema,
  rope_parameters: RopeParametersSchema,
  /** absent → 4096 (MistralConfig's default); null → no window */
  sliding_window: posInt.nullable().default(4096),
  tie_word_embeddings: z.boolean().default(false),
  bos_token_id: tokenId.nullable().default(1),
  eos_token_id: TokenIdsSchema.default(2),
  pad_token_id: tokenId.nullish(),
});

/** Parse and normalise a mistral config.json object. `file` names it in errors. */
export function normalizeMistralConfig(raw: Record<string, unknown>, file: string): ModelConfig {
  const c = parseHfConfig(MistralConfigSchema, raw, file);
  const heads = resolveHeadLayout(file, { hidden: c.hidden_size, nHeads: c.num_attention_heads, nKvHeads: c.num_key_value_heads, headDim: c.head_dim, partialRotary: partialRotaryFactor(c, undefined, 1) });
  return {
    modelType: "mistral",
    vocabSize: c.vocab_size,
    hidden: c.hidden_size,
    nLayers: c.num_hidden_layers,
    nHeads: c.num_attention_heads,
    ...heads,
    intermediate: c.intermediate_size,
    hiddenAct: c.hidden_act,
    ropeTheta: ropeTheta(c, 10000),
    ropeScaling: ropeScalingOf(c, file),
    normEps: c.rms_norm_eps,
    tieEmbeddings: c.tie_word_embeddings,
    attentionBias: false,
    mlpBias: false,
    maxPositions: c.max_position_embeddings,
    bosId: c.bos_token_id ?? null,
    eosIds: toIdList(c.eos_token_id),
    padId: c.pad_token_id ?? null,
    hf: { ...raw },
    layerWindows: new Array<number | null>(c.num_hidden_layers).fill(c.sliding_window),
  };
}

/** ModelConfig → HF mistral config.json object (unchanged fields exactly as loaded). */
export function mistralConfigToHf(config: ModelConfig): Record<string, unknown> {
  return configToHfWith(config, { modelType: "mistral", architecture: "MistralForCausalLM", fields: LLAMA_LIKE_HF_FIELDS, normalize: normalizeMistralConfig });
}

export const mistralArchitecture: Architecture = llamaStyleArchitecture("mistral", LLAMA_STYLE, normalizeMistralConfig, mistralConfigToHf);
