/**
 * Llama (transformers `LlamaForCausalLM`): token embedding, nLayers pre-norm blocks
 *   x = x + attn(rmsNorm(x)),  x = x + swigluMlp(rmsNorm(x)),
 * final RMSNorm and the lm_head (the embedding itself when tied); llama-style.ts holds the
 * code it shares with mistral, qwen2, gemma, gemma2 and phi3.
 * Also serves TinyLlama, SmolLM, Llama 3.x and llama2.c conversions (all model_type "llama").
 */
import type * as tf from "@tensorflow/tfjs-core";
import { llamaConfigToHf, normalizeLlamaConfig, type ModelConfig } from "./config.js";
import { isRotaryBuffer, llamaStyleExpectedTensors, llamaStyleForward, llamaStyleLayerNames, type LlamaStyle } from "./llama-style.js";
import type { Architecture, ArchForwardOptions, ExpectedTensor, WeightLookup } from "./registry.js";

export { LLAMA_EMBED, LLAMA_FINAL_NORM, LLAMA_LM_HEAD } from "./llama-style.js";

/** Llama itself: plain RMSNorm, unscaled embeddings, separate projections, two norms per layer. */
export const LLAMA_STYLE: LlamaStyle = { norm: "rms", embedScale: false, fused: false, sandwichNorms: false };

/** HF tensor names of layer i. */
export const llamaLayerNames = llamaStyleLayerNames;

/** Every tensor of a llama checkpoint with its shape (HF (out, in) layout for projections). */
export function llamaExpectedTensors(c: ModelConfig): ExpectedTensor[] {
  return llamaStyleExpectedTensors(c, LLAMA_STYLE);
}

/**
 * Llama forward pass.
 * @param inputIds (B, T) int32
 * @returns logits (B, T, V), or (B, 1, V) with lastOnly
 */
export function llamaForward(c: ModelConfig, weight: WeightLookup, inputIds: tf.Tensor2D, opts: ArchForwardOptions = {}): tf.Tensor3D {
  return llamaStyleForward(c, LLAMA_STYLE, weight, inputIds, opts);
}

export const llamaArchitecture: Architecture = {
  modelType: "llama",
  normalizeConfig: normalizeLlamaConfig,
  configToHf: llamaConfigToHf,
  expectedTensors: llamaExpectedTensors,
  isIgnoredTensor: isRotaryBuffer,
  forward: llamaForward,
};
