/**
 * Phi-3 (transformers `Phi3ForCausalLM`, Phi-3/3.5 mini and medium, Phi-4-mini): Llama's
 * block with two fused weights,
 *   qkv_proj     (nh·hs + 2·nkv·hs, C), rows [q; k; v]  → output cut at nh·hs, nh·hs + nkv·hs
 *   gate_up_proj (2I, C), rows [gate; up]               → output halves gate, up
 * no biases, `sliding_window` on every layer when set (Phi-3-mini-4k: 2047), optional
 * `partial_rotary_factor` (Phi-4-mini 0.75), and `rope_scaling` of type longrope (old name
 * "su", 128k models): per-frequency short/long factors and cos/sin scaled by
 * √(1 + ln(max / original) / ln original) (transformers `_compute_longrope_parameters`;
 * Phi3Config always has original_max_position_embeddings, default 4096).
 * Defaults are transformers' Phi3Config (rms_norm_eps 1e-5, max_position_embeddings 4096,
 * bos 1, eos 32000, pad 32000, untied).
 */
import { z } from "zod";
import { configToHfWith, LLAMA_LIKE_HF_FIELDS, parseHfConfig, partialRotaryFactor, resolveHeadLayout, RopeParametersSchema, ropeScalingOf, ropeTheta, type HfField } from "./arch-config.js";
import { posInt, RopeScalingSchema, toIdList, tokenId, TokenIdsSchema, type ModelConfig } from "./config.js";
import { llamaStyleArchitecture, type LlamaStyle } from "./llama-style.js";
import type { Architecture } from "./registry.js";

/** Phi-3: Llama's norms and residuals with fused qkv_proj and gate_up_proj. */
export const PHI3_STYLE: LlamaStyle = { norm: "rms", embedScale: false, fused: true, sandwichNorms: false };

/** HF Phi3Config fields we read. */
export const Phi3ConfigSchema = z.looseObject({
  model_type: z.literal("phi3"),
  vocab_size: posInt,
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  /** absent: = num_attention_heads (Phi3Config) */
  num_key_value_heads: posInt.nullish(),
  head_dim: posInt.nullish(),
  hidden_act: z.enum(["silu", "gelu", "gelu_pytorch_tanh", "gelu_new", "gelu_fast"]).default("silu"),
  max_position_embeddings: posInt.default(4096),
  original_max_position_embeddings: posInt.default(4096),
  rms_norm_eps: z.number().positive().default(1e-5),
  rope_theta: z.number().positive().nullish(),
  rope_scaling: RopeScalingSchema,
  rope_parameters: RopeParametersSchema,
  partial_rotary_factor: z.number().positive().max(1).nullish(),
  sliding_window: posInt.nullish(),
  tie_word_embeddings: z.boolean().default(false),
  bos_token_id: tokenId.nullable().default(1),
  eos_token_id: TokenIdsSchema.default(32000),
  pad_token_id: tokenId.nullable().default(32000),
});

/** Parse and normalise a phi3 config.json object. `file` names it in errors. */
export function normalizePhi3Config(raw: Record<string, unknown>, file: string): ModelConfig {
  const c = parseHfConfig(Phi3ConfigSchema, raw, file);
  const heads = resolveHeadLayout(file, {
    hidden: c.hidden_size,
    nHeads: c.num_attention_heads,
    nKvHeads: c.num_key_value_heads ?? c.num_attention_heads,
    headDim: c.head_dim,
    partialRotary: partialRotaryFactor(c, c.partial_rotary_factor, 1),
  });
  return {
    modelType: "phi3",
    vocabSize: c.vocab_size,
    hidden: c.hidden_size,
    nLayers: c.num_hidden_layers,
    nHeads: c.num_attention_heads,
    ...heads,
    intermediate: c.intermediate_size,
    hiddenAct: c.hidden_act,
    ropeTheta: ropeTheta(c, 10000),
    ropeScaling: ropeScalingOf(c, file, { maxPositions: c.max_position_embeddings, originalMaxPositions: c.original_max_position_embeddings, rotaryDim: heads.rotaryDim }),
    normEps: c.rms_norm_eps,
    tieEmbeddings: c.tie_word_embeddings,
    attentionBias: false,
    mlpBias: false,
    maxPositions: c.max_position_embeddings,
    bosId: c.bos_token_id ?? null,
    eosIds: toIdList(c.eos_token_id),
    padId: c.pad_token_id ?? null,
    hf: { ...raw },
    layerWindows: new Array<number | null>(c.num_hidden_layers).fill(c.sliding_window ?? null),
  };
}

const PHI3_HF_FIELDS: HfField[] = LLAMA_LIKE_HF_FIELDS;

/** ModelConfig → HF phi3 config.json object (unchanged fields exactly as loaded). */
export function phi3ConfigToHf(config: ModelConfig): Record<string, unknown> {
  return configToHfWith(config, { modelType: "phi3", architecture: "Phi3ForCausalLM", fields: PHI3_HF_FIELDS, normalize: normalizePhi3Config });
}

export const phi3Architecture: Architecture = llamaStyleArchitecture("phi3", PHI3_STYLE, normalizePhi3Config, phi3ConfigToHf);
