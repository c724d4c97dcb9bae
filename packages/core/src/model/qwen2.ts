/**
 * Qwen2 / Qwen2.5 (transformers `Qwen2ForCausalLM`): Llama's block with biases on the q, k
 * and v projections (not on o). Sliding windows only with `use_sliding_window` (false in
 * every released Qwen2/2.5 config), then on the layers `layer_types` marks
 * "sliding_attention", else on layers i ≥ `max_window_layers` (transformers 4.53+; earlier
 * versions applied windows only in their flash-attention path). Defaults are transformers'
 * Qwen2Config (num_key_value_heads 32, max_position_embeddings 32768, rms_norm_eps 1e-6).
 */
import { z } from "zod";
import { configToHfWith, LLAMA_LIKE_HF_FIELDS, parseHfConfig, partialRotaryFactor, resolveHeadLayout, RopeParametersSchema, ropeScalingOf, ropeTheta } from "./arch-config.js";
import { ModelLoadError } from "../errors.js";
import { posInt, RopeScalingSchema, toIdList, tokenId, TokenIdsSchema, type ModelConfig } from "./config.js";
import { llamaStyleArchitecture } from "./llama-style.js";
import { LLAMA_STYLE } from "./llama.js";
import type { Architecture } from "./registry.js";

/** HF Qwen2Config fields we read. */
export const Qwen2ConfigSchema = z.looseObject({
  model_type: z.literal("qwen2"),
  vocab_size: posInt,
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt.default(32),
  /** not in Qwen2Config; read if present, as Qwen2Attention does (getattr) */
  head_dim: posInt.nullish(),
  hidden_act: z.literal("silu", { error: 'only "silu" is supported for qwen2' }).default("silu"),
  max_position_embeddings: posInt.default(32768),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().nullish(),
  rope_scaling: RopeScalingSchema,
  rope_parameters: RopeParametersSchema,
  use_sliding_window: z.boolean().default(false),
  sliding_window: posInt.nullable().default(4096),
  max_window_layers: z.number().int().nonnegative().default(28),
  layer_types: z.array(z.enum(["full_attention", "sliding_attention"])).nullish(),
  tie_word_embeddings: z.boolean().default(false),
  bos_token_id: tokenId.nullish(),
  eos_token_id: TokenIdsSchema,
  pad_token_id: tokenId.nullish(),
});

/** Parse and normalise a qwen2 config.json object. `file` names it in errors. */
export function normalizeQwen2Config(raw: Record<string, unknown>, file: string): ModelConfig {
  const c = parseHfConfig(Qwen2ConfigSchema, raw, file);
  const heads = resolveHeadLayout(file, { hidden: c.hidden_size, nHeads: c.num_attention_heads, nKvHeads: c.num_key_value_heads, headDim: c.head_dim, partialRotary: partialRotaryFactor(c, undefined, 1) });
  const window = c.use_sliding_window ? c.sliding_window : null;
  const types = c.layer_types ?? null;
  if (types && types.length !== c.num_hidden_layers) {
    throw new ModelLoadError(`${file}: layer_types lists ${types.length} layers, num_hidden_layers is ${c.num_hidden_layers}`, { hint: "restore layer_types from the model's original config.json" });
  }
  const layerWindows = Array.from({ length: c.num_hidden_layers }, (_, i) => ((types ? types[i] === "sliding_attention" : i >= c.max_window_layers) ? window : null));
  return {
    modelType: "qwen2",
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
    qkvBias: true,
    mlpBias: false,
    maxPositions: c.max_position_embeddings,
    bosId: c.bos_token_id ?? null,
    eosIds: toIdList(c.eos_token_id),
    padId: c.pad_token_id ?? null,
    hf: { ...raw },
    layerWindows,
  };
}

/** ModelConfig → HF qwen2 config.json object (unchanged fields exactly as loaded). */
export function qwen2ConfigToHf(config: ModelConfig): Record<string, unknown> {
  return configToHfWith(config, { modelType: "qwen2", architecture: "Qwen2ForCausalLM", fields: LLAMA_LIKE_HF_FIELDS, normalize: normalizeQwen2Config });
}

export const qwen2Architecture: Architecture = llamaStyleArchitecture("qwen2", LLAMA_STYLE, normalizeQwen2Config, qwen2ConfigToHf);
