/**
 * Gemma 2 (transformers `Gemma2ForCausalLM`): Gemma plus
 * - four norms per layer: x = x + postAttnNorm(attn(inputNorm(x))),
 *   x = x + postFfNorm(mlp(preFfNorm(x)));
 * - attention scores scaled by query_pre_attn_scalar^−½ (not head_dim^−½), then soft-capped
 *   cap·tanh(s / cap) with `attn_logit_softcapping` before the mask (the eager path;
 *   transformers' sdpa path skips the cap, which is why it recommends eager for Gemma 2);
 * - final logits soft-capped with `final_logit_softcapping`;
 * - sliding-window attention (`sliding_window`) on every other layer: the layers
 *   `layer_types` marks "sliding_attention" (transformers 4.53+ writes it), else the even
 *   layer indices (4.42: `not bool(layer_idx % 2)`).
 * Defaults are transformers' Gemma2Config (head_dim 256, query_pre_attn_scalar 256, window
 * 4096, caps 50 and 30, hidden_activation gelu_pytorch_tanh, bos 2, eos 1, pad 0, tied).
 */
import { z } from "zod";
import { ModelLoadError } from "../errors.js";
import { configToHfWith, parseHfConfig, type HfField } from "./arch-config.js";
import { posInt, type ModelConfig } from "./config.js";
import { GEMMA_HF_FIELDS, GEMMA_STYLE, gemmaBaseConfig, GemmaBaseFields } from "./gemma.js";
import { llamaStyleArchitecture, type LlamaStyle } from "./llama-style.js";
import type { Architecture } from "./registry.js";

/** Gemma's style with Gemma 2's four norms per layer. */
export const GEMMA2_STYLE: LlamaStyle = { ...GEMMA_STYLE, sandwichNorms: true };

export const Gemma2ConfigSchema = z.looseObject({
  model_type: z.literal("gemma2"),
  ...GemmaBaseFields,
  num_key_value_heads: posInt.default(4),
  query_pre_attn_scalar: z.number().positive().default(256),
  sliding_window: posInt.nullable().default(4096),
  layer_types: z.array(z.enum(["full_attention", "sliding_attention"])).nullish(),
  final_logit_softcapping: z.number().positive().nullable().default(30.0),
  attn_logit_softcapping: z.number().positive().nullable().default(50.0),
});

/** Parse and normalise a gemma2 config.json object. `file` names it in errors. */
export function normalizeGemma2Config(raw: Record<string, unknown>, file: string): ModelConfig {
  const c = parseHfConfig(Gemma2ConfigSchema, raw, file);
  const types = c.layer_types ?? null;
  if (types && types.length !== c.num_hidden_layers) {
    throw new ModelLoadError(`${file}: layer_types lists ${types.length} layers, num_hidden_layers is ${c.num_hidden_layers}`, { hint: "restore layer_types from the model's original config.json" });
  }
  const sliding = (i: number): boolean => (types ? types[i] === "sliding_attention" : i % 2 === 0);
  return {
    ...gemmaBaseConfig(c, raw, file),
    layerWindows: Array.from({ length: c.num_hidden_layers }, (_, i) => (sliding(i) ? c.sliding_window : null)),
    queryPreAttnScalar: c.query_pre_attn_scalar,
    attnSoftcap: c.attn_logit_softcapping,
    finalSoftcap: c.final_logit_softcapping,
  };
}

const GEMMA2_HF_FIELDS: HfField[] = [
  ...GEMMA_HF_FIELDS,
  ["query_pre_attn_scalar", "queryPreAttnScalar"],
  ["attn_logit_softcapping", "attnSoftcap"],
  ["final_logit_softcapping", "finalSoftcap"],
];

/** ModelConfig → HF gemma2 config.json object (unchanged fields exactly as loaded). */
export function gemma2ConfigToHf(config: ModelConfig): Record<string, unknown> {
  return configToHfWith(config, { modelType: "gemma2", architecture: "Gemma2ForCausalLM", fields: GEMMA2_HF_FIELDS, normalize: normalizeGemma2Config });
}

export const gemma2Architecture: Architecture = llamaStyleArchitecture("gemma2", GEMMA2_STYLE, normalizeGemma2Config, gemma2ConfigToHf);
