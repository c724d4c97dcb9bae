/**
 * Gemma (transformers `GemmaForCausalLM`), Llama's layout with three changes:
 * - RMSNorm multiplies by (1 + w), in float32 (`GemmaRMSNorm`);
 * - the embeddings are multiplied by √hidden, the factor cast to the activations' dtype
 *   (`normalizer`; float32 here, so √3072 stays 55.4256 where a bf16 run uses 55.5);
 * - the MLP is GeGLU with tanh-approximated GELU (`gelu_pytorch_tanh`).
 * head_dim comes from the config (256 for Gemma 2B/7B, where nh·hs ≠ hidden for 7B), the head
 * is tied by default. Activation: `hidden_activation` if set, else gelu_pytorch_tanh, as
 * transformers 4.38–4.5x do (the legacy `hidden_act: "gelu"` of the first Gemma configs is
 * ignored with a warning there; transformers 5 reads `hidden_act` instead).
 * Defaults are transformers' GemmaConfig (num_key_value_heads 16, head_dim 256,
 * max_position_embeddings 8192, rms_norm_eps 1e-6, bos 2, eos 1, pad 0, tied).
 */
import { z } from "zod";
import { configToHfWith, LLAMA_LIKE_HF_FIELDS, parseHfConfig, partialRotaryFactor, resolveHeadLayout, RopeParametersSchema, ropeScalingOf, ropeTheta, type HfField } from "./arch-config.js";
import { posInt, RopeScalingSchema, toIdList, tokenId, TokenIdsSchema, type ModelConfig } from "./config.js";
import { llamaStyleArchitecture, type LlamaStyle } from "./llama-style.js";
import type { Architecture } from "./registry.js";

/** Gemma: (1 + w) RMSNorm, √C-scaled embeddings, separate projections, two norms per layer. */
export const GEMMA_STYLE: LlamaStyle = { norm: "gemma", embedScale: true, fused: false, sandwichNorms: false };

const GeluName = z.enum(["gelu_pytorch_tanh", "gelu", "gelu_new", "gelu_fast"], { error: "expected a GELU variant (gelu_pytorch_tanh, gelu, gelu_new, gelu_fast)" });

/** Fields Gemma and Gemma 2 share, with GemmaConfig's defaults. */
export const GemmaBaseFields = {
  vocab_size: posInt,
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt.default(16),
  head_dim: posInt.default(256),
  /** legacy; ignored (see the file comment) */
  hidden_act: z.string().nullish(),
  hidden_activation: GeluName.nullish(),
  max_position_embeddings: posInt.default(8192),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().nullish(),
  rope_scaling: RopeScalingSchema,
  rope_parameters: RopeParametersSchema,
  attention_bias: z.boolean().default(false),
  tie_word_embeddings: z.boolean().default(true),
  bos_token_id: tokenId.nullable().default(2),
  eos_token_id: TokenIdsSchema.default(1),
  pad_token_id: tokenId.nullable().default(0),
};

export const GemmaConfigSchema = z.looseObject({ model_type: z.literal("gemma"), ...GemmaBaseFields });

/** A parsed Gemma or Gemma 2 config. */
type GemmaBaseHf = z.infer<ReturnType<typeof gemmaBaseSchema>>;
const gemmaBaseSchema = () => z.object({ model_type: z.string(), ...GemmaBaseFields }); // for its type only

/** The ModelConfig fields Gemma and Gemma 2 share, from a parsed config. */
export function gemmaBaseConfig(c: GemmaBaseHf, raw: Record<string, unknown>, file: string): ModelConfig {
  const heads = resolveHeadLayout(file, { hidden: c.hidden_size, nHeads: c.num_attention_heads, nKvHeads: c.num_key_value_heads, headDim: c.head_dim, partialRotary: partialRotaryFactor(c, undefined, 1) });
  return {
    modelType: c.model_type,
    vocabSize: c.vocab_size,
    hidden: c.hidden_size,
    nLayers: c.num_hidden_layers,
    nHeads: c.num_attention_heads,
    ...heads,
    intermediate: c.intermediate_size,
    hiddenAct: c.hidden_activation ?? "gelu_pytorch_tanh",
    ropeTheta: ropeTheta(c, 10000),
    ropeScaling: ropeScalingOf(c, file),
    normEps: c.rms_norm_eps,
    tieEmbeddings: c.tie_word_embeddings,
    attentionBias: c.attention_bias,
    mlpBias: false,
    maxPositions: c.max_position_embeddings,
    bosId: c.bos_token_id ?? null,
    eosIds: toIdList(c.eos_token_id),
    padId: c.pad_token_id ?? null,
    hf: { ...raw },
  };
}

/** Parse and normalise a gemma config.json object. `file` names it in errors. */
export function normalizeGemmaConfig(raw: Record<string, unknown>, file: string): ModelConfig {
  return gemmaBaseConfig(parseHfConfig(GemmaConfigSchema, raw, file), raw, file);
}

/** Gemma writes its activation as hidden_activation, and attention_bias. */
export const GEMMA_HF_FIELDS: HfField[] = [...LLAMA_LIKE_HF_FIELDS.filter(([k]) => k !== "hidden_act"), ["hidden_activation", "hiddenAct"], ["attention_bias", "attentionBias"]];

/** ModelConfig → HF gemma config.json object (unchanged fields exactly as loaded). */
export function gemmaConfigToHf(config: ModelConfig): Record<string, unknown> {
  return configToHfWith(config, { modelType: "gemma", architecture: "GemmaForCausalLM", fields: GEMMA_HF_FIELDS, normalize: normalizeGemmaConfig });
}

export const gemmaArchitecture: Architecture = llamaStyleArchitecture("gemma", GEMMA_STYLE, normalizeGemmaConfig, gemmaConfigToHf);
