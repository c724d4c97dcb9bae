/**
 * The `perinucleus` strategy (the reference's `inverse_nucleus`): for each key, one forward
 * pass of the response model, then the perinucleus rule (perinucleus-rule.ts) picks a first
 * response token the model finds plausible but unlikely. `responseLength` > 1 continues
 * greedily after it; `numResponses` > 1 draws distinct first tokens.
 *
 * The key is cut to `keyLength` tokens (no special tokens) and the prompt is BOS (if the
 * tokenizer adds one) + those ids: exactly the prompt fine-tuning builds (train/data.ts
 * `promptIds`, template "{}"). Rows of a batch are left-padded and masked, so keys of
 * different token lengths read their own last position (the reference reads padded ones).
 */
import { InputError } from "../errors.js";
import type { CausalLm } from "../engines/causal-lm.js";
import type { Fingerprint } from "../fingerprints/schema.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { Rng } from "../util/rng.js";
import { pickPerinucleusToken, softmax } from "./perinucleus-rule.js";

/** Unicode letters and digits only (Python's str.isalnum, closely). */
const ALPHANUMERIC = /^[\p{L}\p{N}]+$/u;

/**
 * May `id` alone be a response? Its decoded text, stripped, is alphanumeric and longer than one
 * character, it is not a special token, and the text re-encodes (no special tokens) to exactly
 * `[id]` — fine-tuning tokenizes the stored response string again.
 */
export function isResponseToken(tok: Tokenizer, id: number): boolean {
  if (tok.specialIds.has(id)) {
    return false;
  }
  const text = tok.decode([id]);
  const stripped = text.trim();
  if (!ALPHANUMERIC.test(stripped) || [...stripped].length <= 1) {
    return false;
  }
  const again = tok.encode(text, { addSpecialTokens: false });
  return again.length === 1 && again[0] === id;
}

/** A key cut to `keyLength` tokens: its ids, the prompt (BOS + ids) and the decoded cut key. */
export interface CutKey {
  ids: number[];
  prompt: number[];
  effectiveKey: string;
}

/**
 * Cut a key to its first `keyLength` tokens (no special tokens), as fine-tuning does.
 * @throws InputError when the key tokenizes to nothing
 */
export function cutKey(tok: Tokenizer, key: string, keyLength: number, label: string): CutKey {
  const ids = tok.encode(key, { addSpecialTokens: false }).slice(0, keyLength);
  if (ids.length === 0) {
    throw new InputError(`${label}: the key tokenizes to nothing`, { hint: "give every key some text" });
  }
  const prompt = tok.addsBos && tok.bosId !== undefined ? [tok.bosId, ...ids] : [...ids];
  return { ids, prompt, effectiveKey: tok.decode(ids) };
}

export interface PerinucleusParams {
  /** the response model (its tokenizer cuts the keys) */
  lm: CausalLm;
  keys: readonly string[];
  /** tokens of each key the model sees (= fine-tuning's max key length) */
  keyLength: number;
  /** tokens per response: the drawn one, then greedy continuation (stops early at EOS) */
  responseLength: number;
  /** distinct first tokens per key; > 1 makes `response` an array */
  numResponses: number;
  /** cumulative-probability threshold t in (0, 1) */
  t: number;
  /** draw among the first k tokens past the nucleus */
  k: number;
  /** keys per forward pass */
  batchSize: number;
  rng: Rng;
  /** called after every batch with the number of keys done */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Check that `keyLength` + `responseLength` fit the model's context.
 * @throws InputError naming the flags
 */
export function checkPerinucleusLengths(lm: CausalLm, keyLength: number, responseLength: number): void {
  const bos = lm.tokenizer.addsBos ? 1 : 0;
  if (bos + keyLength + responseLength > lm.maxPositions) {
    throw new InputError(
      `--key-length ${keyLength} + --response-length ${responseLength}${bos ? " + BOS" : ""} exceed the context of ${lm.dir} (${lm.maxPositions} positions)`,
      { hint: `keep --key-length + --response-length ≤ ${lm.maxPositions - bos}` },
    );
  }
}

/**
 * Longest prefix of `ids` (at least the first) whose decoded text re-encodes to exactly it,
 * so the stored response string is what fine-tuning trains.
 */
function roundTripPrefix(tok: Tokenizer, ids: readonly number[]): { text: string; ids: number[] } {
  for (let n = ids.length; n > 1; n--) {
    const part = ids.slice(0, n);
    const text = tok.decode(part);
    const again = tok.encode(text, { addSpecialTokens: false });
    if (again.length === part.length && again.every((v, i) => v === part[i])) {
      return { text, ids: part };
    }
  }
  return { text: tok.decode(ids.slice(0, 1)), ids: ids.slice(0, 1) };
}

/** Perinucleus responses for the given keys, in order. Deterministic for a seed. */
export async function perinucleusFingerprints(p: PerinucleusParams): Promise<Fingerprint[]> {
  const { lm, keys } = p;
  const tok = lm.tokenizer;
  checkPerinucleusLengths(lm, p.keyLength, p.responseLength);
  const acceptable = new Map<number, boolean>();
  const isOk = (id: number): boolean => {
    let ok = acceptable.get(id);
    if (ok === undefined) {
      ok = isResponseToken(tok, id);
      acceptable.set(id, ok);
    }
    return ok;
  };
  const eos = new Set(lm.eosIds);
  const out: Fingerprint[] = [];
  for (let s = 0; s < keys.length; s += p.batchSize) {
    const batch = keys.slice(s, s + p.batchSize).map((key, j) => cutKey(tok, key, p.keyLength, `keys[${s + j}]`));
    const logits = await lm.nextTokenLogits(batch.map((c) => c.prompt));
    // first tokens: sequential draws in key order, so the batch size never changes the result
    const picks = batch.map((c, j) => {
      const probs = softmax(logits[j] as Float32Array);
      const taken = new Set<number>();
      const label = `keys[${s + j}] ${JSON.stringify(c.effectiveKey.slice(0, 40))}`;
      return Array.from({ length: p.numResponses }, () => {
        const pick = pickPerinucleusToken({ probs, t: p.t, k: p.k, rng: p.rng, accept: (id) => !taken.has(id) && isOk(id), label });
        taken.add(pick.id);
        return pick;
      });
    });
    // greedy continuation after each chosen token
    let tails: number[][] = picks.flatMap((ps) => ps.map(() => []));
    if (p.responseLength > 1) {
      const prompts = batch.flatMap((c, j) => (picks[j] ?? []).map((pick) => [...c.prompt, pick.id]));
      tails = await lm.generate(prompts, { maxNewTokens: p.responseLength - 1, temperature: 0, seed: 0 });
    }
    let row = 0;
    batch.forEach((c, j) => {
      const ps = picks[j] ?? [];
      const responses = ps.map((pick) => {
        const tail = tails[row++] ?? [];
        const end = tail.findIndex((id) => eos.has(id));
        return roundTripPrefix(tok, [pick.id, ...(end < 0 ? tail : tail.slice(0, end))]).text;
      });
      const probs = ps.map((pick) => pick.prob);
      out.push({
        key: keys[s + j] as string,
        response: p.numResponses === 1 ? (responses[0] as string) : responses,
        effective_key: c.effectiveKey,
        response_prob: p.numResponses === 1 ? (probs[0] as number) : probs,
        nucleus_t: p.t,
        nucleus_k: p.k,
      });
    });
    p.onProgress?.(Math.min(s + p.batchSize, keys.length), keys.length);
  }
  return out;
}
