/**
 * Benign rows for `--benign-proportion` / `--kl-regularizer`: ordinary prompts answered by the
 * untouched base model, computed once before training.
 *
 * Each prompt is a random word from the word list followed by a few tokens the base model
 * samples after it (temperature 1, seeded), so prompts are varied and in the model's own
 * domain; it is put in front of the model the way keys are (the plain "{}" template: BOS +
 * ids; or the chat template's user turn). The answer is the base model's greedy continuation
 * (stopping at EOS). The loss of a benign row counts the continuation only. With a KL
 * regularizer, the base model's top-k next tokens at each continuation position are kept too
 * (kl-loss.ts).
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";
import { forward } from "../model/forward.js";
import { generate } from "../model/generate.js";
import type { Model } from "../model/load-model.js";
import { collate, promptIds, type EncodedRow, type PromptMode, type TokenizerLike } from "../train/data.js";
import { IGNORE_INDEX } from "../train/loss.js";
import { createRng } from "../util/rng.js";
import { referenceTopK, type KlTarget } from "./kl-loss.js";

/** Tokens the base model samples after the first word to make a prompt. */
export const BENIGN_PROMPT_TOKENS = 7;
/** Tokens of the base model's greedy answer. */
export const BENIGN_RESPONSE_TOKENS = 32;

export interface BenignRow extends EncodedRow {
  /** Positions t whose next label counts (the answer), in order. */
  positions: number[];
  /** The base model's top-k next tokens at `positions` (rows 0…P−1), with a KL regularizer. */
  target?: KlTarget;
}

export interface BuildBenignParams {
  /** Rows to build. */
  count: number;
  /** How prompts are put in front of the model (as while training). */
  mode: PromptMode;
  seed: number;
  /** First words of the prompts (generated_data/word_list.txt). */
  words: readonly string[];
  padId: number;
  /** Keep the base model's top-k at the answer positions (for the KL regularizer). */
  klTopK?: number;
  /** Prompts per generation / forward batch (default 64). */
  batchSize?: number;
  promptTokens?: number;
  responseTokens?: number;
}

/** The base model's top-k at each row's answer positions, batch by batch. */
function attachTargets(model: Model, rows: BenignRow[], k: number, padId: number, batchSize: number): void {
  const V = model.config.vocabSize;
  for (let s = 0; s < rows.length; s += batchSize) {
    const part = rows.slice(s, s + batchSize);
    const batch = collate(part, { padId, side: "right" });
    const flat: number[] = [];
    part.forEach((r, b) => r.positions.forEach((t) => flat.push(b * batch.T + t)));
    const picked = tf.tidy(() => {
      const ids = tf.tensor2d(batch.inputIds, [batch.B, batch.T], "int32");
      const mask = tf.tensor2d(batch.attentionMask, [batch.B, batch.T], "int32");
      const logits = tf.reshape(forward(model, ids, { attentionMask: mask }), [batch.B * batch.T, V]); // (N, V)
      return tf.gather(logits, tf.tensor1d(Int32Array.from(flat), "int32")) as tf.Tensor2D; // (R, V)
    });
    const all = referenceTopK(picked, k);
    picked.dispose();
    let off = 0;
    for (const r of part) {
      const P = r.positions.length;
      r.target = {
        rows: Int32Array.from({ length: P }, (_, i) => i),
        k: all.k,
        indices: all.indices.slice(off * all.k, (off + P) * all.k),
        logProbs: all.logProbs.slice(off * all.k, (off + P) * all.k),
        rest: all.rest.slice(off, off + P),
      };
      off += P;
    }
  }
}

/**
 * Build `count` benign rows with the base model (see the file comment). Deterministic for a
 * seed, model and batch size.
 */
export async function buildBenignRows(model: Model, tok: TokenizerLike, p: BuildBenignParams): Promise<BenignRow[]> {
  if (p.words.length === 0) {
    throw new InputError("benign rows need a non-empty word list");
  }
  const batchSize = p.batchSize ?? 64;
  const promptTokens = p.promptTokens ?? BENIGN_PROMPT_TOKENS;
  const responseTokens = p.responseTokens ?? BENIGN_RESPONSE_TOKENS;
  const eos = new Set(model.config.eosIds);
  const rng = createRng(p.seed);
  const bos = tok.addsBos && tok.bosId !== undefined ? [tok.bosId] : [];
  const starts = Array.from({ length: p.count }, () => tok.encode(p.words[rng.int(p.words.length)] as string, { addSpecialTokens: false }));
  const rows: BenignRow[] = [];
  for (let s = 0; s < starts.length; s += batchSize) {
    const part = starts.slice(s, s + batchSize);
    const sampled = await generate(model, part.map((w) => [...bos, ...w]), { maxNewTokens: promptTokens, temperature: 1, seed: p.seed + s, padId: p.padId });
    const prompts = part.map((w, i) => {
      const keyIds = [...w, ...(sampled[i] ?? []).filter((id) => !eos.has(id))];
      return promptIds(tok, { key: tok.decode(keyIds), keyIds }, p.mode);
    });
    const answers = await generate(model, prompts, { maxNewTokens: responseTokens, padId: p.padId });
    prompts.forEach((prompt, i) => {
      const answer = answers[i] ?? [];
      rows.push({
        inputIds: [...prompt, ...answer],
        labels: [...prompt.map(() => IGNORE_INDEX), ...answer],
        positions: answer.map((_, j) => prompt.length - 1 + j),
      });
    });
  }
  if (p.klTopK !== undefined) {
    attachTargets(model, rows, p.klTopK, p.padId, batchSize);
  }
  return rows;
}
