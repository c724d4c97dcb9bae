/**
 * Fingerprints as a training task for train-model.ts: each example is its prompt (the plain
 * "{}" template or the chat template; with augmentation, a random training template or the
 * plain key) followed by its response, the loss on the response only; after each epoch every
 * training fingerprint is checked greedily under the training prompt mode.
 */
import type * as tf from "@tensorflow/tfjs-core";
import { checkFingerprints } from "../check/check-fingerprints.js";
import { generate } from "../model/generate.js";
import type { Model } from "../model/load-model.js";
import { encodeExample, type FingerprintExample, type PromptMode, type TokenizerLike } from "../train/data.js";
import type { TrainTask } from "./train-model.js";

export * from "./train-model.js";

export interface FingerprintTaskParams {
  model: Model;
  tokenizer: TokenizerLike;
  examples: readonly FingerprintExample[];
  /** prompt mode while training: the plain "{}" template, or chat */
  mode: PromptMode;
  /** with augmentation: templates drawn at random per example per epoch */
  augmentationTemplates?: readonly string[];
  padId: number;
  /** prompts per batch of the per-epoch check */
  checkBatchSize: number;
}

/** Greedy success rate (percent) of `weights` on the examples under one prompt mode. */
export async function fingerprintSuccess(p: Omit<FingerprintTaskParams, "augmentationTemplates">, weights: Map<string, tf.Tensor>): Promise<number> {
  const view: Model = { ...p.model, weights };
  const [res] = await checkFingerprints({
    examples: p.examples,
    tokenizer: p.tokenizer,
    modes: [p.mode],
    batchSize: p.checkBatchSize,
    generate: (prompts, n) => generate(view, prompts, { maxNewTokens: n, eosIds: [], padId: p.padId }),
  });
  return res?.successRate ?? 0;
}

/** The fingerprint training task (see the file comment). */
export function fingerprintTask(p: FingerprintTaskParams): TrainTask {
  const templates = p.augmentationTemplates && p.augmentationTemplates.length > 0 && p.mode.kind === "template" ? p.augmentationTemplates : undefined;
  return {
    size: p.examples.length,
    row: (i, rng) => {
      const ex = p.examples[i] as FingerprintExample;
      if (templates) {
        // The plain key is one of the choices, so the plain check keeps working.
        const k = rng.int(templates.length + 1);
        return encodeExample(p.tokenizer, ex, { kind: "template", template: k === 0 ? "{}" : (templates[k - 1] as string) });
      }
      return encodeExample(p.tokenizer, ex, p.mode);
    },
    check: (weights) => fingerprintSuccess(p, weights),
  };
}
