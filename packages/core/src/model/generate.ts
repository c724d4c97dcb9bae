/**
 * Batched autoregressive generation with a KV cache: prompts are LEFT-padded to one length,
 * the prefill runs once, then each step feeds one token per row. Position ids come from the
 * attention mask (cumsum − 1), so a padded row computes exactly what it computes alone.
 * Greedy by default; seeded temperature / top-k / top-p sampling with our own PRNG.
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";
import { createRng } from "../util/rng.js";
import { forward } from "./forward.js";
import { createKvCache, disposeKvCache } from "./kv-cache.js";
import type { Model } from "./load-model.js";
import { sampleToken, type SamplingOptions } from "./sample.js";

export interface GenerateOptions extends SamplingOptions {
  /** new tokens per prompt at most */
  maxNewTokens: number;
  /** PRNG seed for sampling (default 0); unused when greedy */
  seed?: number;
  /** a row stops after emitting any of these (default: model.config.eosIds) */
  eosIds?: number[];
  /** fills the left padding and finished rows (default: config padId, else the first eos id, else 0) */
  padId?: number;
  /** called after each step with the number of tokens generated so far */
  onStep?: (step: number) => void;
}

function checkPrompts(model: Model, prompts: number[][], opts: GenerateOptions): void {
  const V = model.config.vocabSize;
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) {
    throw new InputError(`generate: maxNewTokens must be a non-negative integer, got ${opts.maxNewTokens}`);
  }
  prompts.forEach((p, i) => {
    if (p.length === 0) {
      throw new InputError(`generate: prompt ${i} is empty`, { hint: "every prompt needs at least one token (e.g. BOS)" });
    }
    const bad = p.find((id) => !Number.isInteger(id) || id < 0 || id >= V);
    if (bad !== undefined) {
      throw new InputError(`generate: prompt ${i} has token id ${bad}, outside the vocabulary [0, ${V})`, {
        hint: "encode prompts with this model's tokenizer",
      });
    }
  });
  if (opts.temperature !== undefined && !(opts.temperature >= 0)) {
    throw new InputError(`generate: temperature must be ≥ 0, got ${opts.temperature}`);
  }
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) {
    throw new InputError(`generate: topP must be in (0, 1], got ${opts.topP}`);
  }
}

/**
 * Continue each prompt.
 * @param model a loaded model
 * @param prompts token ids per prompt (BOS included if the model wants one); any lengths
 * @returns the new ids per prompt, in order: at most maxNewTokens, ending with the eos id that
 *   stopped the row if one did (as transformers returns it)
 */
export async function generate(model: Model, prompts: number[][], opts: GenerateOptions): Promise<number[][]> {
  checkPrompts(model, prompts, opts);
  const B = prompts.length;
  const out: number[][] = prompts.map(() => []);
  if (B === 0 || opts.maxNewTokens === 0) {
    return out;
  }
  const c = model.config;
  const eos = new Set(opts.eosIds ?? c.eosIds);
  const pad = opts.padId ?? c.padId ?? c.eosIds[0] ?? 0;
  const rng = createRng(opts.seed ?? 0);
  const V = c.vocabSize;

  // left padding: (B, L) ids and mask, the mask grows by one column per step
  const L = Math.max(...prompts.map((p) => p.length));
  const mask: number[][] = prompts.map((p) => [...new Array<number>(L - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  let input: number[][] = prompts.map((p) => [...new Array<number>(L - p.length).fill(pad), ...p]);
  const done = new Array<boolean>(B).fill(false);
  const cache = createKvCache(c.nLayers);
  try {
    for (let step = 0; step < opts.maxNewTokens; step++) {
      const ids = tf.tensor2d(input, [B, input[0]?.length ?? 0], "int32");
      const m = tf.tensor2d(mask, [B, mask[0]?.length ?? 0], "int32");
      const logits = forward(model, ids, { attentionMask: m, cache, lastOnly: true }); // (B, 1, V)
      tf.dispose([ids, m]);
      const rows = (await logits.data()) as Float32Array;
      logits.dispose();
      const next: number[] = [];
      for (let b = 0; b < B; b++) {
        if (done[b]) {
          next.push(pad);
          continue;
        }
        const id = sampleToken(rows, b * V, V, opts, rng);
        (out[b] as number[]).push(id);
        done[b] = eos.has(id);
        next.push(id);
      }
      opts.onStep?.(step + 1);
      if (done.every(Boolean)) {
        break;
      }
      input = next.map((id) => [id]);
      for (const row of mask) {
        row.push(1);
      }
    }
  } finally {
    disposeKvCache(cache);
  }
  return out;
}
