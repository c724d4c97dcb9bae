/**
 * Per-word BPE for sentencepiece-style tokenizer.json files (@huggingface/tokenizers 0.2.0).
 *
 * Llama-style tokenizers have no pre-tokenizer split: the normalizer (Replace " " → "▁") or the
 * Metaspace pre-tokenizer turns spaces into a marker and the library's BPE sees the whole text
 * as one word. Its per-word cache (an LRU of 10,000 words under 256 characters) then never hits
 * on a new 16-word key, and BPE runs on ~120 symbols. But BPE can only merge two adjacent
 * symbols a, b into a + b; if no merge of the tokenizer yields a token that has the marker
 * after a non-marker character, no merge ever spans a boundary "x▁" (x not the marker), so the
 * text's symbols split there into pieces ("▁▁the" stays whole: Llama's "▁▁" merges are inside
 * a piece) that never interact. The library picks the pair of lowest (rank, position) among
 * the current pairs; the pairs of one piece keep their relative order when the piece stands
 * alone, so BPE(text) = BPE(piece 1) + BPE(piece 2) + …, and each piece (a word) is cached.
 * Byte fallback and the unknown token act per BPE output token and fuse_unk on the model's
 * whole output, which stays the same concatenation: they see exactly the same tokens.
 *
 * Not applied (the library runs unchanged) when the merges fail the condition, when
 * end_of_word_suffix / continuing_subword_suffix / ignore_merges make BPE depend on where a
 * word ends, or when the model's internals do not look as expected.
 */
import type { HfTokenizer } from "./hf-tokenizers.js";

/** The internals of the library's BPE model that splitBpeWords relies on. */
interface BpeModel {
  merges?: unknown;
  encode?: unknown;
  end_of_word_suffix?: unknown;
  continuing_subword_suffix?: unknown;
  ignore_merges?: unknown;
  tokens_to_ids?: unknown;
  vocab?: unknown;
}

interface JsonComponent {
  type?: unknown;
  normalizers?: unknown;
  pretokenizers?: unknown;
  pattern?: { String?: unknown };
  content?: unknown;
  replacement?: unknown;
  str_rep?: unknown;
}

/** The characters the normalizer or pre-tokenizer writes for a space (Replace " " → c, Metaspace). */
export function spaceMarkers(tokenizerJson: object): string[] {
  const out: string[] = [];
  const visit = (c: unknown): void => {
    if (typeof c !== "object" || c === null) {
      return;
    }
    const j = c as JsonComponent;
    for (const list of [j.normalizers, j.pretokenizers]) {
      if (Array.isArray(list)) {
        list.forEach(visit);
      }
    }
    if (j.type === "Replace" && j.pattern?.String === " " && typeof j.content === "string") {
      out.push(j.content);
    }
    if (j.type === "Metaspace") {
      // The library writes str_rep (default: replacement, default "▁") for each space.
      const rep = typeof j.replacement === "string" ? j.replacement : "\u2581";
      out.push(typeof j.str_rep === "string" && j.str_rep !== "" ? j.str_rep : rep);
    }
  };
  const json = tokenizerJson as { normalizer?: unknown; pre_tokenizer?: unknown };
  visit(json.normalizer);
  visit(json.pre_tokenizer);
  return [...new Set(out)];
}

/**
 * Does no merge yield a token with `marker` after a non-marker character? (Then no merge spans
 * a boundary before a marker that follows a non-marker.) Marker: one UTF-16 unit, not a surrogate.
 */
export function mergesKeepMarkerFirst(merges: readonly (readonly [string, string])[], marker: string): boolean {
  if (marker.length !== 1 || (marker.charCodeAt(0) >= 0xd800 && marker.charCodeAt(0) <= 0xdfff)) {
    return false;
  }
  for (const [a, b] of merges) {
    const t = a + b;
    let k = 0; // the token's leading run of markers ("▁▁" tokens of Llama are fine)
    while (k < t.length && t[k] === marker) {
      k++;
    }
    if (k < t.length && t.indexOf(marker, k) !== -1) {
      return false;
    }
  }
  return true;
}

/**
 * Pieces of `word`, cut before every marker that follows a non-marker character:
 * "▁the▁▁cat" → ["▁the", "▁▁cat"]. Comparing UTF-16 units is exact since the marker is not a
 * surrogate.
 */
export function splitAtMarkers(word: string, marker: number, out: string[]): void {
  let start = 0;
  for (let i = 1; i < word.length; i++) {
    if (word.charCodeAt(i) === marker && word.charCodeAt(i - 1) !== marker) {
      out.push(word.slice(start, i));
      start = i;
    }
  }
  if (start < word.length) {
    out.push(word.slice(start));
  }
}

/** Pieces longer than this are not cached (the library's own limit for its BPE cache). */
const MAX_CACHED_PIECE = 256;
/** Cached pieces at most (a few MB); the cache starts afresh when full. Word lists have ~10k words. */
const CACHE_CAPACITY = 30_000;

/**
 * Make the library's BPE encode each marker-led piece of a word on its own (same tokens, see
 * the file comment), with the finished tokens of each piece (BPE, then vocabulary / byte
 * fallback / unknown) cached in a bounded Map: a hit costs one lookup, where the library's
 * LRU costs four Map operations plus a lookup per token.
 * @returns the marker split on, or undefined when the BPE was left unchanged
 */
export function splitBpeWords(tok: HfTokenizer, tokenizerJson: object): string | undefined {
  const m = (tok as unknown as { model?: BpeModel }).model;
  if (
    !m ||
    typeof m.encode !== "function" ||
    !Array.isArray(m.merges) ||
    !(m.tokens_to_ids instanceof Map) ||
    !Array.isArray(m.vocab) ||
    m.end_of_word_suffix ||
    m.continuing_subword_suffix ||
    m.ignore_merges
  ) {
    return undefined;
  }
  const merges = m.merges as unknown[];
  if (!merges.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === "string" && typeof p[1] === "string")) {
    return undefined;
  }
  const marker = spaceMarkers(tokenizerJson).find((c) => mergesKeepMarkerFirst(merges as [string, string][], c));
  if (marker === undefined) {
    return undefined;
  }
  const code = marker.charCodeAt(0);
  const encode = m.encode as (this: BpeModel, words: string[]) => string[];
  const cache = new Map<string, readonly string[]>();
  const ids = m.tokens_to_ids as Map<string, number>;
  const vocab = m.vocab as unknown[];
  // BPE builds its tokens by concatenation (V8 cons strings); every later Map lookup (ids,
  // fuse_unk, added tokens) then compares them char by char. The vocabulary's own string of
  // the same content compares by pointer.
  const canonical = (t: string): string => {
    const id = ids.get(t);
    const v = id === undefined ? undefined : vocab[id];
    return v === t ? v : t;
  };
  // BPE's encode maps each word on its own and concatenates: feeding it the pieces is exact.
  m.encode = function (this: BpeModel, words: string[]): string[] {
    const pieces: string[] = [];
    for (const w of words) {
      splitAtMarkers(w, code, pieces);
    }
    const out: string[] = [];
    for (const p of pieces) {
      let toks = cache.get(p);
      if (toks === undefined) {
        toks = encode.call(this, [p]).map(canonical);
        if (p.length < MAX_CACHED_PIECE) {
          if (cache.size >= CACHE_CAPACITY) {
            cache.clear();
          }
          cache.set(p, toks);
        }
      }
      for (const t of toks) {
        out.push(t);
      }
    }
    return out;
  };
  return marker;
}
