/**
 * Architectures by HF `model_type`. Each one knows its config.json schema, the tensors it
 * expects and its forward pass; everything else (loading, generation, saving, training) is
 * shared. To add one: write `model/<name>.ts` exporting an `Architecture` (llama-style.ts
 * and decoder.ts hold the shared block and forward) and add it to ARCHITECTURES.
 */
import type * as tf from "@tensorflow/tfjs-core";
import { ModelLoadError } from "../errors.js";
import type { ModelConfig } from "./config.js";
import type { KvCache } from "./kv-cache.js";
import { gemmaArchitecture } from "./gemma.js";
import { gemma2Architecture } from "./gemma2.js";
import { gptNeoxArchitecture } from "./gpt-neox.js";
import { llamaArchitecture } from "./llama.js";
import { mistralArchitecture } from "./mistral.js";
import { phi3Architecture } from "./phi3.js";
import { qwen2Architecture } from "./qwen2.js";

/** Model tensors keyed by their HF safetensors names (`model.layers.0.self_attn.q_proj.weight`). */
export type Weights = Map<string, tf.Tensor>;

/** Returns the tensor of that HF name (throws if the model has none). */
export type WeightLookup = (name: string) => tf.Tensor;

/** One tensor an architecture expects, with its shape for this config. */
export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** may be absent (e.g. `lm_head.weight` of a tied model) */
  optional?: boolean;
  /** a tied copy of that tensor: skipped when a checkpoint stores it anyway */
  tiedTo?: string;
}

/** Options of an architecture's forward pass. */
export interface ArchForwardOptions {
  /** (B, S) 1 = real token, 0 = padding, S = cached tokens + T; omitted: all real */
  attentionMask?: tf.Tensor2D;
  /** read, extended and replaced in place */
  cache?: KvCache;
  /** logits of the last position only: (B, 1, V) */
  lastOnly?: boolean;
}

export interface Architecture {
  modelType: string;
  /** config.json object → ModelConfig (ModelLoadError naming `file` and the field) */
  normalizeConfig(raw: Record<string, unknown>, file: string): ModelConfig;
  /** ModelConfig → config.json object */
  configToHf(config: ModelConfig): Record<string, unknown>;
  /** every tensor of a checkpoint, with shapes */
  expectedTensors(config: ModelConfig): ExpectedTensor[];
  /** buffers old checkpoints carry that we skip silently (e.g. `rotary_emb.inv_freq`) */
  isIgnoredTensor(name: string): boolean;
  /** inputIds (B, T) int32 → logits (B, T, V) */
  forward(config: ModelConfig, weight: WeightLookup, inputIds: tf.Tensor2D, opts: ArchForwardOptions): tf.Tensor3D;
}

export const ARCHITECTURES: ReadonlyMap<string, Architecture> = new Map([
  ["llama", llamaArchitecture],
  ["mistral", mistralArchitecture],
  ["qwen2", qwen2Architecture],
  ["gpt_neox", gptNeoxArchitecture],
  ["gemma", gemmaArchitecture],
  ["gemma2", gemma2Architecture],
  ["phi3", phi3Architecture],
]);

/** The architecture of a model_type, or a ModelLoadError listing the supported ones. */
export function getArchitecture(modelType: unknown, file = "config.json"): Architecture {
  const arch = typeof modelType === "string" ? ARCHITECTURES.get(modelType) : undefined;
  if (!arch) {
    const supported = [...ARCHITECTURES.keys()].join(", ");
    const what = modelType === undefined ? "has no model_type" : `has model_type ${JSON.stringify(modelType)}, which is not supported`;
    throw new ModelLoadError(`${file} ${what} (supported: ${supported})`, {
      hint: `use a model whose config.json model_type is one of: ${supported}`,
    });
  }
  return arch;
}

/** Parse a config.json object with the architecture its model_type names. */
export function parseModelConfig(raw: unknown, file = "config.json"): ModelConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ModelLoadError(`${file}: expected a JSON object`, { hint: "restore config.json from the model's source" });
  }
  const obj = raw as Record<string, unknown>;
  return getArchitecture(obj.model_type, file).normalizeConfig(obj, file);
}
