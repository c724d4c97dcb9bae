/**
 * `encodeFirst(text, n)` = `encode(text, { addSpecialTokens: false }).slice(0, n)`, encoding only
 * a prefix of the text cut at a word boundary when that provably gives the same first ids.
 *
 * A fingerprint key of 16 random words is ~84 tokens on stories260K's 512-token vocabulary, and
 * buildFingerprintExamples keeps 16 of them. Measured on 1024 random-word fingerprints for
 * stories260K (a loaded machine, so wide ranges; "without" = the same build with encodeFirst
 * hidden, i.e. encode + slice):
 * - buildFingerprintExamples, fresh `node` per run: without 157–217 ms (median 178, 5 runs; the
 *   build before this change: 121–192, median 149), with 120–186 ms (median 144).
 *   Second call in the process (other keys): 42–75 (median 51) → 43–71 ms (median 46), within
 *   the noise; steady state (30 calls, median): 33 → 24 ms.
 * - the key encoding alone, fresh process: 73–85 ms → 52–60 ms; warm: ~14 → ~8 µs a key
 *   (a 5-word prefix, ~25 tokens, instead of ~84 tokens). The rest of a cold call is JIT
 *   warm-up, the response windows and the decodes.
 * The estimate below held the 16 ids at the first try for all 3072 keys of those runs.
 *
 * Cut point: an index i with text[i] === " ", text[i - 1] neither whitespace (JS `\s` or
 * Unicode White_Space) nor the tokenizer's space marker. The prefix is text.slice(0, i).
 *
 * Claim: for a "prefix-local" tokenizer (below) and a text with no added token in it, the
 * tokens of the prefix are a prefix of the tokens of the text, so when the prefix gives ≥ n
 * ids its first n are the text's first n. @huggingface/tokenizers 0.2.0 encodes a text as:
 * split at added tokens → normalizer → split at (normalized) added tokens → pre-tokenizer →
 * model (BPE.encode over the pre-tokens, then fuse_unk) → post-processor → token → id.
 *
 * - Added tokens: encodeFirst takes the full path when the text, or its normalization, holds the
 *   content (or the normalized content) of any added token, special or not: such a text would
 *   be cut into sections, with lstrip/rstrip trimming spaces. Otherwise both splitters leave the
 *   text (and the prefix, a substring, whose normalization below is a prefix of the text's)
 *   whole, as one section of index 0; and neither the prefix nor its normalization can equal
 *   an added token's (normalized) content, which the library would emit as that token (the
 *   text or its normalization would hold it: "hello" is not the token "▁hello" inside
 *   "hello world", but its normalization alone would be).
 * - Post-processor: with add_special_tokens false, TemplateProcessing whose single template
 *   has one `$A` and no `$B`, ByteLevel, BertProcessing and RobertaProcessing (no pair) return
 *   the tokens unchanged, and so does a Sequence of ByteLevels with at most one of the others
 *   (ByteLevel hands the null pair on; TemplateProcessing and Bert/Roberta do not, so a second
 *   one would see `undefined` and pick the pair template). Anything else: not prefix-local.
 * - Token → id is per token. fuse_unk only drops unknown tokens that follow an unknown token
 *   (its concatenation branch never runs: the last fused token is the unknown one), so
 *   fuse(P + S) begins with fuse(P).
 * - Remaining: the model's input tokens for the prefix must be those of the text up to the cut,
 *   and the model must act on them alone. Two kinds of tokenizer.json:
 *
 * (a) sentencepiece ("▁" marker): model BPE on which splitBpeWords installed its per-piece
 *     encode (it proved that no merge yields a token with the marker after a non-marker, so
 *     BPE(word) = BPE(piece 1) + BPE(piece 2) + … with pieces cut before each marker that
 *     follows a non-marker; byte fallback and the unknown token act per BPE token). Normalizer
 *     null, Prepend(p), Replace(" " → marker) or a flat Sequence of those; pre-tokenizer null
 *     or Metaspace with replacement (and str_rep) the marker; at least one of them turns spaces
 *     into the marker. Such a normalizer maps x to Q + R(x), R replacing each space by the
 *     marker and Q a fixed string (Prepend and R commute up to R of the prepended text), so the
 *     prefix's normalization is a prefix of the text's. Metaspace (one pre-token: the library
 *     ignores `split`) replaces spaces the same way and prepends its marker when the string
 *     does not start with it (and the scheme and the section index, 0 for both, say so): the
 *     same decision for the prefix and the text, which start alike. So the single pre-token of the prefix, Wp, is a prefix of the text's, W, and
 *     W[|Wp|] is the marker written for text[i], after W[|Wp| − 1] = text[i − 1], not a marker:
 *     a piece boundary. The pieces of Wp are the pieces of W before it (cuts depend on two
 *     adjacent characters only), and BPE runs on each piece alone.
 * (b) byte-level: model BPE without end_of_word_suffix / continuing_subword_suffix; normalizer
 *     null, or NFC when every UTF-16 unit of the text is below U+0300 (no such character has a
 *     decomposition, is a combining mark, or composes with another of them; the test checks all
 *     pairs), so the normalizer leaves text and prefix as they are. Pre-tokenizer either
 *     ByteLevel with use_regex (the library's GPT-2 regex, whatever the file's pattern), or a
 *     Sequence of Split (Isolated, the Llama-3 or Qwen2 regex) and ByteLevel without regex. The
 *     regex's matches tile the text (every character starts a match of some alternative) and
 *     each pre-token is then byte-mapped (and given a leading space by add_prefix_space, the
 *     same for text and prefix: same first character) and BPE'd on its own (ignore_merges is a
 *     per-word test). Whitespace below is JS `\s` in the ByteLevel regex and \p{White_Space}
 *     in the compiled Split ones; a cut point's text[i − 1] is neither. No match starting
 *     before i covers both text[i − 1] and text[i] = " ": a space is only ever the optional
 *     first character of a match or part of an all-whitespace run, and text[i − 1] is not
 *     whitespace. The scan from each start p < i reads position i only with atoms that reject a
 *     space (letters, digits, non-space symbols, the contractions' letters, [\r\n]) and reject
 *     the end of the prefix alike, or with the lookahead (?!\S), true for both; whitespace runs
 *     from p < i stop before i − 1. So the backtracking goes the same way on text and prefix,
 *     the matches starting before i are the same and end by i, and the prefix's pre-tokens are
 *     the text's first ones. The compiled regexes are compared with the ones this was argued on.
 *
 * Anything else (Unigram, WordPiece, other normalizers such as NFKC / Lowercase / Strip, other
 * pre-tokenizers, tokenizer_config's remove_space / do_lowercase_and_remove_accent): not
 * prefix-local, and encodeFirst encodes the whole text.
 *
 * How many words: tokens per word are estimated from this tokenizer's recent prefixes (first
 * guess 1.5; sums of tokens and words decayed by 7/8 per prefix); the prefix takes
 * 1.25 × n / estimate words plus one. If it gives fewer than n ids, the next try takes more
 * words (from this text's own rate, at least twice as many); with no cut point left, the whole
 * text is encoded.
 */
import type { HfTokenizer } from "./hf-tokenizers.js";
import { detectPrefixLocal, type PrefixLocalInternals, type PrefixLocalKind } from "./prefix-local.js";

export type { PrefixLocalKind } from "./prefix-local.js";

/** Counts of encodeFirst calls by path (diagnostics). */
export interface EncodeFirstStats {
  /** Answered from a prefix. */
  prefix: number;
  /** Extra prefix encodes (a prefix that gave fewer than n ids). */
  retries: number;
  /** Encoded the whole text (not prefix-local, added token, no cut point left, …). */
  full: number;
}

/** Is this UTF-16 unit whitespace for JS `\s` or Unicode White_Space (the regexes use either)? */
export function isSpaceLike(c: number): boolean {
  if (c > 0x20 && c < 0x85) {
    return false;
  }
  return (
    (c >= 0x09 && c <= 0x0d) ||
    c === 0x20 ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** A regex matching any of the strings (as UTF-16 units), or null for none. */
function anyOf(strings: Iterable<string>): RegExp | null {
  const alts = [...new Set(strings)].map((s) => [...Array(s.length).keys()].map((i) => `\\u${s.charCodeAt(i).toString(16).padStart(4, "0")}`).join(""));
  return alts.length === 0 ? null : new RegExp(alts.join("|"));
}

/** Some UTF-16 unit from U+0300 on (NFC may change the text). */
const FROM_U0300 = /[^\u0000-\u02ff]/;

/** First guess of tokens per word, before this tokenizer has encoded a prefix. */
const FIRST_RATE = 1.5;
/** Words taken = MARGIN × n / tokens-per-word + 1. */
const MARGIN = 1.25;
/**
 * Weight of the earlier prefixes in the estimate, per prefix (~8 prefixes' memory): it follows
 * a change of texts (from punctuation-heavy or non-Latin ones to keys of plain words) quickly.
 */
const DECAY = 0.875;

/** encodeFirst for one tokenizer (see the file comment). */
export class PrefixEncoder {
  readonly stats: EncodeFirstStats = { prefix: 0, retries: 0, full: 0 };
  private readonly marker: number;
  private readonly addedTokens: RegExp | null;
  /** Matches some unit that a text holding an added token must hold (null: no such test). */
  private readonly witnesses: RegExp | null;
  private readonly normalize: ((text: string) => string) | null;
  /** Tokens and words of the prefixes encoded so far, older ones decayed (DECAY per prefix). */
  private tokens = 0;
  private words = 0;

  private constructor(
    readonly kind: PrefixLocalKind,
    private readonly nfc: boolean,
    tok: HfTokenizer,
    marker: string | undefined,
    private readonly encode: (text: string) => number[],
  ) {
    this.marker = marker === undefined ? -1 : marker.charCodeAt(0);
    const norm = (tok as unknown as PrefixLocalInternals).normalizer as ((text: string) => string) | null;
    this.normalize = norm === null || nfc ? null : (text) => norm(text);
    // Every added token's content and normalized content, searched in the text and in its
    // normalization: a superset of what the library's two splitters look for, and of the keys
    // of its added-token map, which a section or normalized section equal to one becomes.
    const contents: string[] = [];
    for (const a of tok.get_added_tokens_decoder().values()) {
      contents.push(a.content);
      if (norm !== null) {
        contents.push(norm(a.content));
      }
    }
    this.addedTokens = anyOf(contents);
    // A quick test first: a unit of each content that the text must hold if the text or its
    // normalization holds the content. With N = text (no normalizer; NFC on units below
    // U+0300) any unit; with N = Q + R(text) (sentencepiece: Q = the normalization of "", R
    // spaces → marker), a unit that is not in Q, not the marker and not a space, so that in N
    // it can only come from the text as it is. Some content without one: no quick test.
    const excluded = new Set(this.normalize === null ? [] : [...(norm?.("") ?? ""), " ", ...(marker ?? "")]);
    const units = contents.map((c) => [...Array(c.length).keys()].map((i) => c[i] as string).find((u) => !excluded.has(u)));
    this.witnesses = units.every((u) => u !== undefined) ? anyOf(units as string[]) : null;
  }

  /**
   * A PrefixEncoder when the tokenizer is prefix-local, else undefined.
   * @param marker what splitBpeWords split this tokenizer's BPE words on (bpeWordSplitMarker)
   * @param encode the tokenizer's encode without special tokens
   */
  static create(tokenizerJson: object, tok: HfTokenizer, marker: string | undefined, encode: (text: string) => number[]): PrefixEncoder | undefined {
    const d = detectPrefixLocal(tokenizerJson, tok, marker);
    return d === undefined ? undefined : new PrefixEncoder(d.kind, d.nfc, tok, marker, encode);
  }

  /** The first cut point at or after `from`, or −1. */
  private nextCut(text: string, from: number): number {
    for (let i = text.indexOf(" ", Math.max(1, from)); i !== -1; i = text.indexOf(" ", i + 1)) {
      const c = text.charCodeAt(i - 1);
      if (c !== this.marker && !isSpaceLike(c)) {
        return i;
      }
    }
    return -1;
  }

  /** Can a prefix of this text be encoded instead of the text (no added token, normalizer a no-op where needed)? */
  private eligible(text: string): boolean {
    if (this.nfc && FROM_U0300.test(text)) {
      return false;
    }
    const added = this.addedTokens;
    if (added === null || (this.witnesses !== null && !this.witnesses.test(text))) {
      return true;
    }
    return !(added.test(text) || (this.normalize !== null && added.test(this.normalize(text))));
  }

  /** `encode(text).slice(0, n)`. */
  encodeFirst(text: string, n: number): number[] {
    if (!Number.isInteger(n) || n <= 0 || !this.eligible(text)) {
      this.stats.full++;
      return this.encode(text).slice(0, n);
    }
    const rate = this.words === 0 ? FIRST_RATE : this.tokens / this.words;
    let want = Math.ceil((MARGIN * n) / rate) + 1;
    let words = 0;
    let cut = 0;
    for (;;) {
      while (words < want) {
        const c = this.nextCut(text, cut + 1);
        if (c === -1) {
          this.stats.full++;
          return this.encode(text).slice(0, n);
        }
        cut = c;
        words++;
      }
      const ids = this.encode(text.slice(0, cut));
      this.tokens = DECAY * this.tokens + ids.length;
      this.words = DECAY * this.words + words;
      if (ids.length >= n) {
        this.stats.prefix++;
        return ids.length === n ? ids : ids.slice(0, n);
      }
      this.stats.retries++;
      want = Math.max(2 * words, Math.ceil((MARGIN * n * words) / Math.max(1, ids.length)) + 1);
    }
  }
}
