/**
 * The forward pass of any registered architecture.
 */
import type * as tf from "@tensorflow/tfjs-core";
import { InternalError } from "../errors.js";
import type { Model } from "./load-model.js";
import { getArchitecture, type ArchForwardOptions, type Weights } from "./registry.js";

export interface ForwardOptions extends ArchForwardOptions {
  /**
   * Tensors that replace the model's weights by HF name (e.g. tf.Variables while training);
   * names not in it come from `model.weights`.
   */
  weights?: Weights;
}

/**
 * Logits for a batch of token ids.
 * @param model a loaded model
 * @param inputIds (B, T) int32
 * @param opts attentionMask (B, S) with S = cached + T, cache, weights override, lastOnly
 * @returns logits (B, T, V) float32 (or (B, 1, V) with lastOnly); the caller disposes it
 */
export function forward(model: Model, inputIds: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
  const arch = getArchitecture(model.config.modelType);
  const override = opts.weights;
  const weight = (name: string): tf.Tensor => {
    const t = override?.get(name) ?? model.weights.get(name);
    if (!t) {
      throw new InternalError(`model ${model.dir} has no tensor ${name}`);
    }
    return t;
  };
  return arch.forward(model.config, weight, inputIds, opts);
}
