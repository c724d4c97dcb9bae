/**
 * Batched autoregressive generation with a KV cache: prompts are LEFT-padded to one length,
 * the prefill runs once, then each step feeds one token per row. Position ids come from the
 * attention mask (cumsum − 1), so a padded row computes exactly what it computes alone.
 * Greedy by default; seeded temperature / top-k / top-p sampling with our own PRNG.
 *
 * Prefixes shared by many prompts (a check template's text before the key, a chat system
 * prompt) are computed once each at batch 1 and kept once each, right-aligned, in the cache
 * (kv-cache.ts's SharedPrefix: attention reads them in place where it can, else joins them
 * into each row's keys once); the batched prefill then covers only the rest of each prompt:
 *   mask row = [0 … 0 | 1 × prefix | 0 … 0 | 1 × rest]   (B, P + L), one more 1 per step
 * Positions come from the mask as before, so each row still computes what it computes
 * alone. Checking 1024 fingerprints on stories260K with the "You are a helpful AI
 * assistant…" template (53 tokens per prompt, 37 of them shared) prefills 16 instead.
 *
 * Every step asks for the last position only (lastOnly), so the last layer computes its
 * queries, attention output and MLP there alone (decoder.ts): bit-identical logits, and a
 * check prefill (one new token per prompt) ~12% faster on stories260K.
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";
import { createRng } from "../util/rng.js";
import { forward } from "./forward.js";
import { createKvCache, disposeKvCache, mergePrefixCaches, planSharedPrefixes, type KvCache } from "./kv-cache.js";
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

/** The merged (B, nkv, P, hs) cache of the shared prefixes, each computed at batch 1. */
function prefixCache(model: Model, prefixes: number[][], groupOf: number[]): KvCache {
  const n = model.config.nLayers;
  const caches: KvCache[] = [];
  try {
    for (const prefix of prefixes) {
      const cache = createKvCache(n);
      caches.push(cache);
      const ids = tf.tensor2d([prefix], [1, prefix.length], "int32");
      tf.dispose([forward(model, ids, { cache, lastOnly: true }), ids]);
    }
  } catch (err) {
    caches.forEach(disposeKvCache);
    throw err;
  }
  return mergePrefixCaches(caches, groupOf, n);
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

  // shared prefixes right-aligned in P columns, then each row's rest left-padded to L
  const plan = B > 1 ? planSharedPrefixes(prompts) : { prefixes: [], groupOf: prompts.map(() => -1) };
  const prefixLength = plan.groupOf.map((g) => (g < 0 ? 0 : (plan.prefixes[g] as number[]).length));
  const P = Math.max(...prefixLength);
  const rest = prompts.map((p, b) => p.slice(prefixLength[b]));
  const L = Math.max(...rest.map((p) => p.length));
  const zeros = (n: number): number[] => new Array<number>(n).fill(0);
  const ones = (n: number): number[] => new Array<number>(n).fill(1);
  const mask: number[][] = rest.map((p, b) => [...zeros(P - (prefixLength[b] as number)), ...ones(prefixLength[b] as number), ...zeros(L - p.length), ...ones(p.length)]);
  let input: number[][] = rest.map((p) => [...new Array<number>(L - p.length).fill(pad), ...p]);
  const done = new Array<boolean>(B).fill(false);
  let cache = createKvCache(c.nLayers);
  try {
    if (plan.prefixes.length > 0) {
      cache = prefixCache(model, plan.prefixes, plan.groupOf);
    }
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
