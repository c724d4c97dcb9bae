/**
 * Our own engine as a CausalLm: loadModel + forward (left padding, attention mask, last
 * position only) + the batched KV-cache `generate`. The caller starts the tfjs backend.
 */
import * as tf from "@tensorflow/tfjs-core";
import { silentLogger, type Logger } from "../log.js";
import { forward } from "../model/forward.js";
import { generate } from "../model/generate.js";
import { disposeModel, loadModel, type Model } from "../model/load-model.js";
import { loadTokenizer } from "../tokenizer/load-tokenizer.js";
import { samplingDefaults, type CausalLm, type CausalLmGenerateOptions } from "./causal-lm.js";

/** Left-pad prompts to one length: ids (B, L) and mask (B, L), 1 on real tokens. */
export function leftPad(prompts: readonly (readonly number[])[], padId: number): { ids: number[][]; mask: number[][]; length: number } {
  const length = Math.max(...prompts.map((p) => p.length));
  const ids = prompts.map((p) => [...new Array<number>(length - p.length).fill(padId), ...p]);
  const mask = prompts.map((p) => [...new Array<number>(length - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  return { ids, mask, length };
}

/**
 * Next-token logits of a loaded model after each prompt, in one batched forward pass.
 * Rows are left-padded and masked, so each row's last position is its last real token.
 */
export async function modelNextTokenLogits(model: Model, prompts: readonly (readonly number[])[]): Promise<Float32Array[]> {
  const B = prompts.length;
  if (B === 0) {
    return [];
  }
  const c = model.config;
  const { ids, mask, length } = leftPad(prompts, c.padId ?? c.eosIds[0] ?? 0);
  const logits = tf.tidy(() => {
    const x = tf.tensor2d(ids, [B, length], "int32");
    const m = tf.tensor2d(mask, [B, length], "int32");
    return forward(model, x, { attentionMask: m, lastOnly: true }); // (B, 1, V)
  });
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  const V = c.vocabSize;
  return prompts.map((_, b) => data.slice(b * V, (b + 1) * V));
}

/**
 * Load a model directory (config.json, safetensors, tokenizer) on the current tfjs backend.
 * @param dir absolute model directory
 */
export async function loadTfjsCausalLm(dir: string, opts: { log?: Logger } = {}): Promise<CausalLm> {
  const log = opts.log ?? silentLogger;
  const tokenizer = await loadTokenizer(dir);
  const model = await loadModel(dir, { log });
  return {
    engine: "tfjs",
    dir: model.dir,
    tokenizer,
    vocabSize: model.config.vocabSize,
    maxPositions: model.config.maxPositions,
    eosIds: model.config.eosIds,
    sampling: samplingDefaults(model.generationConfig),
    nextTokenLogits: (prompts) => modelNextTokenLogits(model, prompts),
    generate: (prompts, o: CausalLmGenerateOptions) =>
      generate(
        model,
        prompts.map((p) => [...p]),
        {
          maxNewTokens: o.maxNewTokens,
          temperature: o.temperature,
          topK: o.topK,
          topP: o.topP,
          seed: o.seed,
          eosIds: o.eosIds ? [...o.eosIds] : undefined,
        },
      ),
    dispose: () => {
      disposeModel(model);
      return Promise.resolve();
    },
  };
}
