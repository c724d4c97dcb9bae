/**
 * Which tokenizers are "prefix-local": built by @huggingface/tokenizers 0.2.0 so that a text's
 * prefix cut at a word boundary encodes to a prefix of the text's tokens (sentencepiece BPE split
 * at its space marker, or byte-level BPE behind the GPT-2 / Llama-3 / Qwen2 regexes). The
 * detection checks tokenizer.json against the library's own objects; encode-first.ts's file
 * comment gives the argument for each condition, and PrefixEncoder relies on it.
 */
import type { HfTokenizer } from "./hf-tokenizers.js";

export type PrefixLocalKind = "sentencepiece" | "byte-level";

interface JsonComponent {
  type?: unknown;
  normalizers?: unknown;
  pretokenizers?: unknown;
  pattern?: { String?: unknown; Regex?: unknown };
  content?: unknown;
  prepend?: unknown;
  replacement?: unknown;
  str_rep?: unknown;
  use_regex?: unknown;
  behavior?: unknown;
  invert?: unknown;
  end_of_word_suffix?: unknown;
  continuing_subword_suffix?: unknown;
}

/** The library's Tokenizer fields the detection reads. */
export interface PrefixLocalInternals {
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  model: { end_of_word_suffix?: unknown; continuing_subword_suffix?: unknown } | null;
  remove_space?: unknown;
  do_lowercase_and_remove_accent?: unknown;
}

/** The GPT-2 regex the library's ByteLevel pre-tokenizer uses (use_regex), as compiled. */
const BYTE_LEVEL_SOURCE = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

/** Split regexes of tokenizer.json → the library's compiled source, for the regexes argued on. */
const SPLIT_SOURCES = new Map<string, string>([
  // Llama-3
  [
    String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
    String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\p{White_Space}\p{L}\p{N}]+[\r\n]*|\p{White_Space}*[\r\n]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+`,
  ],
  // Qwen2 / Qwen3
  [
    String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
    String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\p{White_Space}\p{L}\p{N}]+[\r\n]*|\p{White_Space}*[\r\n]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+`,
  ],
]);

function asComponent(c: unknown): JsonComponent | undefined {
  return typeof c === "object" && c !== null && !Array.isArray(c) ? (c as JsonComponent) : undefined;
}

/** With add_special_tokens false, does the library's post-processor return the tokens as they are? */
function keepsTokens(pp: unknown): boolean {
  if (pp === null) {
    return true;
  }
  const obj = pp as { config?: unknown; processors?: unknown };
  const c = asComponent(obj.config) as { type?: unknown; single?: unknown } | undefined;
  switch (c?.type) {
    case "ByteLevel":
    case "BertProcessing":
    case "RobertaProcessing":
      return true;
    case "TemplateProcessing": {
      if (!Array.isArray(c.single)) {
        return false;
      }
      let a = 0;
      for (const item of c.single as unknown[]) {
        const it = asComponent(item) as { SpecialToken?: unknown; Sequence?: { id?: unknown } } | undefined;
        if (it?.Sequence !== undefined) {
          if (it.Sequence.id !== "A") {
            return false;
          }
          a++;
        } else if (it?.SpecialToken === undefined) {
          return false;
        }
      }
      return a === 1;
    }
    case "Sequence": {
      if (!Array.isArray(obj.processors)) {
        return false;
      }
      const subs = obj.processors as unknown[];
      const others = subs.filter((p) => asComponent((p as { config?: unknown } | null)?.config)?.type !== "ByteLevel");
      return others.length <= 1 && subs.every((p) => p !== null && keepsTokens(p));
    }
    default:
      return false;
  }
}

/** Normalizer of a sentencepiece tokenizer: Prepend / Replace(" " → marker), alone or in a flat Sequence. */
function sentencepieceNormalizer(n: unknown, marker: string): { ok: boolean; replaces: boolean } {
  if (n === null || n === undefined) {
    return { ok: true, replaces: false };
  }
  const c = asComponent(n);
  const list = c?.type === "Sequence" ? c.normalizers : [n];
  if (!Array.isArray(list)) {
    return { ok: false, replaces: false };
  }
  let replaces = false;
  for (const x of list as unknown[]) {
    const j = asComponent(x);
    if (j?.type === "Prepend" && typeof j.prepend === "string") {
      continue;
    }
    if (j?.type === "Replace" && j.pattern?.String === " " && j.pattern.Regex === undefined && j.content === marker) {
      replaces = true;
      continue;
    }
    return { ok: false, replaces: false };
  }
  return { ok: true, replaces };
}

/** How the text is split before BPE in a byte-level tokenizer: the library's objects checked against tokenizer.json. */
function byteLevelPreTokenizer(json: unknown, lib: unknown): boolean {
  const j = asComponent(json);
  const byteLevel = (jc: JsonComponent | undefined, obj: unknown, regex: boolean): boolean => {
    const o = obj as { use_regex?: unknown; pattern?: unknown } | null;
    if (jc?.type !== "ByteLevel" || (jc.use_regex ?? true) !== regex || o?.use_regex !== regex) {
      return false;
    }
    return !regex || (o.pattern instanceof RegExp && o.pattern.source === BYTE_LEVEL_SOURCE && o.pattern.flags === "gu");
  };
  if (j?.type === "ByteLevel") {
    return byteLevel(j, lib, true);
  }
  if (j?.type !== "Sequence" || !Array.isArray(j.pretokenizers) || j.pretokenizers.length !== 2) {
    return false;
  }
  const objs = (lib as { tokenizers?: unknown } | null)?.tokenizers;
  if (!Array.isArray(objs) || objs.length !== 2) {
    return false;
  }
  const split = asComponent(j.pretokenizers[0]);
  const splitObj = objs[0] as { pattern?: unknown; config?: unknown } | null;
  const expected = typeof split?.pattern?.Regex === "string" ? SPLIT_SOURCES.get(split.pattern.Regex) : undefined;
  return (
    split?.type === "Split" &&
    split.behavior === "Isolated" &&
    split.invert === false &&
    expected !== undefined &&
    splitObj?.config === split &&
    splitObj.pattern instanceof RegExp &&
    splitObj.pattern.source === expected &&
    splitObj.pattern.flags === "gu" &&
    byteLevel(asComponent(j.pretokenizers[1]), objs[1], false)
  );
}

/** Does @huggingface/tokenizers build this tokenizer so that its prefixes encode to prefixes (encode-first.ts's file comment)? */
export function detectPrefixLocal(tokenizerJson: object, tok: HfTokenizer, marker: string | undefined): { kind: PrefixLocalKind; nfc: boolean } | undefined {
  const json = tokenizerJson as { normalizer?: unknown; pre_tokenizer?: unknown; model?: unknown };
  const t = tok as unknown as PrefixLocalInternals;
  const model = asComponent(json.model);
  if (
    model?.type !== "BPE" ||
    model.end_of_word_suffix ||
    model.continuing_subword_suffix ||
    !t.model ||
    t.model.end_of_word_suffix ||
    t.model.continuing_subword_suffix ||
    t.remove_space ||
    t.do_lowercase_and_remove_accent ||
    (t.normalizer !== null && typeof t.normalizer !== "function") ||
    !keepsTokens(t.post_processor)
  ) {
    return undefined;
  }
  if (marker !== undefined) {
    const norm = sentencepieceNormalizer(json.normalizer, marker);
    const pre = asComponent(json.pre_tokenizer);
    const preObj = t.pre_tokenizer as { replacement?: unknown; str_rep?: unknown } | null;
    const metaspace =
      pre?.type === "Metaspace" &&
      (pre.replacement ?? "\u2581") === marker &&
      (pre.str_rep === undefined || pre.str_rep === marker) &&
      preObj?.replacement === marker &&
      preObj.str_rep === marker;
    if (norm.ok && (json.pre_tokenizer === null || json.pre_tokenizer === undefined || metaspace) && (norm.replaces || metaspace)) {
      return { kind: "sentencepiece", nfc: false };
    }
    return undefined;
  }
  const n = asComponent(json.normalizer);
  if ((json.normalizer === null || json.normalizer === undefined || n?.type === "NFC") && byteLevelPreTokenizer(json.pre_tokenizer, t.pre_tokenizer)) {
    return { kind: "byte-level", nfc: n !== undefined };
  }
  return undefined;
}
