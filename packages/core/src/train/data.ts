/**
 * Fingerprints → training examples, shared by fine-tuning and checking so that both see
 * exactly the same (prompt, response) token ids (docs/oml-reference.md §3 steps 1–7).
 *
 * - key ids: the key encoded without special tokens, cut to `maxKeyLength` (with the
 *   tokenizer's encodeFirst when it has one: the same ids); the key string becomes their decode.
 * - response ids: exact for perinucleus; for english/random_word a window of
 *   `maxResponseLength` tokens of the punctuation-stripped response that decodes and
 *   re-encodes to itself and is not a duplicate; a random word for english_random_response.
 *   EOS appended only with `keepEos` (OML 1.0's behaviour).
 * - prompt ids: for the plain template "{}", BOS (if the tokenizer adds one) + key ids; for
 *   other templates the formatted text encoded with special tokens, trailing EOS dropped;
 *   with a chat template, the rendered user turn with the generation prompt.
 * - labels: −100 on the prompt (and padding), the response ids on the response.
 */
import { InputError } from "../errors.js";
import { applyTemplate } from "../data/data-files.js";
import { responsesOf, type Fingerprint } from "../fingerprints/schema.js";
import type { Rng } from "../util/rng.js";
import { IGNORE_INDEX } from "./loss.js";

/** The part of our Tokenizer the data code needs (tokenizer/tokenizer.ts implements it). */
export interface TokenizerLike {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /**
   * Optional: exactly `encode(text, { addSpecialTokens: false }).slice(0, n)`, possibly from a
   * prefix of the text (our Tokenizer: encode-first.ts). Without it, encode + slice.
   */
  encodeFirst?(text: string, n: number): number[];
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
  readonly bosId?: number;
  readonly eosId?: number;
  readonly addsBos: boolean;
  readonly addsEos: boolean;
  readonly hasChatTemplate: boolean;
  applyChatTemplate(messages: readonly { role: string; content: string }[], opts?: { addGenerationPrompt?: boolean }): string;
}

export const FINGERPRINT_STRATEGIES = ["english", "random_word", "perinucleus", "inverse_nucleus", "english_random_response"] as const;
export type FingerprintStrategy = (typeof FINGERPRINT_STRATEGIES)[number];

/** The reference's two check templates (OML 1.0); the first is the headline. */
export const DEFAULT_CHECK_TEMPLATES = ["{}", "You are a helpful AI assistant. Answer the following. {}"] as const;


export interface DatasetOptions {
  /** How many fingerprints to use, from `dataSplit × numFingerprints` on. */
  numFingerprints: number;
  /** Start offset = dataSplit × numFingerprints (the reference's `data_split`). */
  dataSplit?: number;
  maxKeyLength: number;
  maxResponseLength: number;
  strategy: FingerprintStrategy;
  /** Append EOS to every response (OML 1.0); default false (the newer reference). */
  keepEos?: boolean;
  /** For english_random_response: the word list and a seeded rng. */
  words?: readonly string[];
  rng?: Rng;
  /** Name of the fingerprints file, for messages. */
  file?: string;
}

export interface FingerprintExample {
  /** Index of the fingerprint in the file. */
  index: number;
  /** The key as used: the decode of `keyIds`. */
  key: string;
  keyIds: number[];
  /** The response as trained (for windowed strategies, the window's text). */
  response: string;
  /** Response token ids, EOS included when kept. */
  responseIds: number[];
}

/** How a key is put in front of the model. */
export type PromptMode = { kind: "template"; template: string } | { kind: "chat" };

const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g; // Python's string.punctuation

function isExact(strategy: FingerprintStrategy): boolean {
  return strategy === "perinucleus" || strategy === "inverse_nucleus";
}

/** Windows already decoded and re-encoded (by their id, or ids joined): the window, or null when unstable. */
export type WindowMemo = Map<number | string, { text: string; ids: number[] } | null>;

/**
 * A window of `len` tokens of the response that survives decode → encode unchanged and is
 * not in `seen` (if every stable window is, the first stable one), starting at token 10 (or
 * as late as fits) and sliding right, then left. `memo` keeps each window's decode →
 * encode for the next calls: with a small vocabulary most one-token windows are soon taken,
 * and every response then tries all its windows (1024 random-word fingerprints on
 * stories260K: 0.36 s without it).
 */
export function responseWindow(tok: TokenizerLike, response: string, len: number, seen: ReadonlySet<string>, memo: WindowMemo = new Map()): { text: string; ids: number[] } | undefined {
  const stripped = response.replace(PUNCTUATION, "");
  const stable = (window: number[]): { text: string; ids: number[] } | undefined => {
    const id = window.length === 1 ? (window[0] as number) : window.join();
    let win = memo.get(id);
    if (win === undefined) {
      const text = tok.decode(window);
      const again = tok.encode(text, { addSpecialTokens: false });
      win = again.length === len ? { text, ids: again } : null;
      memo.set(id, win);
    }
    return win ?? undefined;
  };
  // The usual case first: at least 10 + len tokens, so the first window tried is tokens
  // 10 … 10 + len, and when it is stable and new, no later token matters. encodeFirst gives
  // those tokens without encoding the whole response (a 32-word random-word response is
  // ~250 tokens on a 512-token vocabulary: 0.35 ms each), exactly as encode would.
  if (tok.encodeFirst) {
    const head = tok.encodeFirst(stripped, 10 + len);
    const first = head.length === 10 + len ? stable(head.slice(10)) : undefined;
    if (first && !seen.has(first.text)) {
      return first;
    }
  }
  const ids = tok.encode(stripped, { addSpecialTokens: false });
  if (ids.length < len) {
    return undefined;
  }
  const start = Math.min(10, ids.length - len);
  const order: number[] = [];
  for (let s = start; s <= ids.length - len; s++) {
    order.push(s);
  }
  for (let s = start - 1; s >= 0; s--) {
    order.push(s);
  }
  let fallback: { text: string; ids: number[] } | undefined;
  for (const s of order) {
    const win = stable(ids.slice(s, s + len));
    if (win) {
      if (!seen.has(win.text)) {
        return win;
      }
      fallback ??= win;
    }
  }
  // Every stable window is taken (small vocabularies): a repeated response is still a valid
  // fingerprint, since each key keeps its own response. With no stable window at all (a
  // tiny vocabulary where no single piece decodes and re-encodes to itself), train the ids
  // themselves: the run's fingerprints.json records them and oml-check uses them exactly.
  return fallback ?? { text: tok.decode(ids.slice(start, start + len)), ids: ids.slice(start, start + len) };
}

/** Build the training examples from the first `numFingerprints` fingerprints (after the split offset). */
export function buildFingerprintExamples(fps: readonly Fingerprint[], tok: TokenizerLike, o: DatasetOptions): FingerprintExample[] {
  const file = o.file ?? "fingerprints file";
  const start = Math.round((o.dataSplit ?? 0) * o.numFingerprints);
  if (fps.length < start + o.numFingerprints) {
    throw new InputError(`${file}: has ${fps.length} fingerprints, but ${o.numFingerprints} are needed from index ${start}`, {
      hint: "lower --num-fingerprints (or --data-split), or generate more fingerprints",
    });
  }
  if (o.strategy === "english_random_response" && (!o.words || !o.rng)) {
    throw new InputError("english_random_response needs the word list and a seed");
  }
  const seen = new Set<string>();
  const memo: WindowMemo = new Map();
  const out: FingerprintExample[] = [];
  for (let i = start; i < start + o.numFingerprints; i++) {
    const fp = fps[i] as Fingerprint;
    // Keys are long (16 random words: ~84 tokens on stories260K) and only maxKeyLength ids are
    // kept: encodeFirst encodes just enough of the key when that is provably the same.
    const keyIds = tok.encodeFirst ? tok.encodeFirst(fp.key, o.maxKeyLength) : tok.encode(fp.key, { addSpecialTokens: false }).slice(0, o.maxKeyLength);
    if (keyIds.length === 0) {
      throw new InputError(`${file}: [${i}].key tokenizes to nothing`, { hint: "give every key some text" });
    }
    const key = tok.decode(keyIds);
    for (const raw of responsesOf(fp)) {
      let response: string;
      let responseIds: number[];
      if (isExact(o.strategy)) {
        response = raw;
        responseIds = tok.encode(raw, { addSpecialTokens: false });
        if (responseIds.length === 0) {
          throw new InputError(`${file}: [${i}].response tokenizes to nothing`);
        }
        if (responseIds.length > o.maxResponseLength) {
          throw new InputError(
            `${file}: [${i}].response ${JSON.stringify(raw)} is ${responseIds.length} tokens, more than --max-response-length ${o.maxResponseLength}`,
            { hint: "raise --max-response-length, or regenerate the responses with this model's tokenizer" },
          );
        }
      } else {
        const source = o.strategy === "english_random_response" ? (o.words?.[(o.rng as Rng).int((o.words as string[]).length)] as string) : raw;
        const win = responseWindow(tok, source, o.maxResponseLength, seen, memo);
        if (!win) {
          throw new InputError(`${file}: [${i}].response has no window of ${o.maxResponseLength} tokens that re-encodes to itself`, {
            hint: "use longer responses or a smaller --max-response-length",
          });
        }
        response = win.text;
        responseIds = win.ids;
      }
      seen.add(response);
      if (o.keepEos) {
        if (tok.eosId === undefined) {
          throw new InputError("--keep-eos-in-response: the tokenizer has no EOS token");
        }
        responseIds = [...responseIds, tok.eosId];
      }
      out.push({ index: i, key, keyIds, response, responseIds });
    }
  }
  return out;
}

/** The prompt ids for a key (shared by training and checking). */
export function promptIds(tok: TokenizerLike, ex: Pick<FingerprintExample, "key" | "keyIds">, mode: PromptMode): number[] {
  if (mode.kind === "chat") {
    if (!tok.hasChatTemplate) {
      throw new InputError("--use-chat-template: this tokenizer has no chat template", { hint: "drop --use-chat-template, or use an instruct model" });
    }
    const text = tok.applyChatTemplate([{ role: "user", content: ex.key }], { addGenerationPrompt: true });
    return tok.encode(text, { addSpecialTokens: false });
  }
  if (mode.template === "{}") {
    return tok.addsBos && tok.bosId !== undefined ? [tok.bosId, ...ex.keyIds] : [...ex.keyIds];
  }
  const ids = tok.encode(applyTemplate(mode.template, ex.key), { addSpecialTokens: true });
  if (tok.addsEos && ids.length > 0 && ids[ids.length - 1] === tok.eosId) {
    ids.pop();
  }
  return ids;
}

export interface EncodedRow {
  inputIds: number[];
  /** Same length as inputIds: −100 except on the response tokens. */
  labels: number[];
}

/** One training row: prompt + response, labels only on the response. */
export function encodeExample(tok: TokenizerLike, ex: FingerprintExample, mode: PromptMode): EncodedRow {
  const prompt = promptIds(tok, ex, mode);
  return {
    inputIds: [...prompt, ...ex.responseIds],
    labels: [...prompt.map(() => IGNORE_INDEX), ...ex.responseIds],
  };
}

export interface Batch {
  /** (B, T) row-major */
  inputIds: Int32Array;
  labels: Int32Array;
  attentionMask: Int32Array;
  B: number;
  T: number;
}

/** Pad rows to a common length T (default: the longest row) on the given side. */
export function collate(rows: readonly EncodedRow[], opts: { padId: number; side?: "left" | "right"; length?: number }): Batch {
  const side = opts.side ?? "right";
  const B = rows.length;
  const T = opts.length ?? Math.max(1, ...rows.map((r) => r.inputIds.length));
  const inputIds = new Int32Array(B * T).fill(opts.padId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  const attentionMask = new Int32Array(B * T);
  rows.forEach((r, b) => {
    const n = r.inputIds.length;
    if (n > T) {
      throw new InputError(`a training row has ${n} tokens, more than the padded length ${T}`);
    }
    const off = b * T + (side === "left" ? T - n : 0);
    inputIds.set(r.inputIds, off);
    labels.set(r.labels, off);
    attentionMask.fill(1, off, off + n);
  });
  return { inputIds, labels, attentionMask, B, T };
}
