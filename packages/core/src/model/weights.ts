/**
 * Model weights: HF tensor name → tf.Tensor, checked against what the architecture expects.
 */
import * as tf from "@tensorflow/tfjs-core";
import { ModelLoadError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import type { ModelConfig } from "./config.js";
import type { Architecture, Weights } from "./registry.js";

/** A tensor as read from a file: float32 values and a shape. */
export interface RawTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * Check every expected tensor's presence and shape before creating any tf tensor, then build
 * the weights. Ignored buffers (rotary_emb.inv_freq) are skipped; other unexpected tensors are
 * reported through `log.warn` and skipped; `lm_head.weight` of a tied model is dropped.
 * @param file the weights file named in errors
 */
export function buildWeights(arch: Architecture, config: ModelConfig, tensors: Map<string, RawTensor>, file: string, log: Logger = silentLogger): Weights {
  const expected = arch.expectedTensors(config);
  const missing: string[] = [];
  const wrong: string[] = [];
  for (const e of expected) {
    const t = tensors.get(e.name);
    if (!t) {
      if (!e.optional) {
        missing.push(e.name);
      }
      continue;
    }
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      wrong.push(`${e.name} has shape [${t.shape.join(", ")}], expected [${e.shape.join(", ")}]`);
    }
  }
  if (missing.length > 0 || wrong.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) {
      parts.push(`missing ${missing.length} tensor(s): ${missing.slice(0, 8).join(", ")}${missing.length > 8 ? ", …" : ""}`);
    }
    parts.push(...wrong.slice(0, 8));
    throw new ModelLoadError(`${file}: weights do not match config.json (${parts.join("; ")})`, {
      hint: "the weights and config.json come from different models, or the download is incomplete: re-download the model",
    });
  }
  const wanted = new Set(expected.map((e) => e.name));
  const tiedCopies = new Set(expected.filter((e) => e.tiedTo !== undefined).map((e) => e.name));
  const unexpected: string[] = [];
  const weights: Weights = new Map();
  for (const [name, t] of tensors) {
    if (!wanted.has(name)) {
      if (!arch.isIgnoredTensor(name)) {
        unexpected.push(name);
      }
      continue;
    }
    if (tiedCopies.has(name)) {
      log.debug({ tensor: name }, "tied embeddings: ignoring the stored copy");
      continue;
    }
    weights.set(name, tf.tensor(t.data, t.shape, "float32"));
  }
  if (unexpected.length > 0) {
    log.warn({ file, tensors: unexpected }, `${file}: ${unexpected.length} unexpected tensor(s) skipped: ${unexpected.slice(0, 8).join(", ")}`);
  }
  return weights;
}

/** Dispose every tensor of a weights map and clear it. */
export function disposeWeights(weights: Weights): void {
  for (const t of weights.values()) {
    t.dispose();
  }
  weights.clear();
}
