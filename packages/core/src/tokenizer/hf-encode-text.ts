/**
 * `Tokenizer.encode_text` of @huggingface/tokenizers 0.2.0 with loops instead of its two nested
 * `Array.prototype.flatMap` calls. Node 20's flatMap takes ~3 µs to flatten one 20-token array
 * (a slice takes 0.03 µs); for a cached 16-word key on stories260K, encode_text goes from ~31 to
 * ~19 µs. The body below is a line-by-line transcription of the library's method;
 * it is installed only when the library's method is, character for character, the one it was
 * transcribed from (SHA-256 of its source text) and the option it cannot reach
 * (`do_lowercase_and_remove_accent`, whose helper the library does not export) is off.
 * Otherwise the library's own method runs.
 */
import { createHash } from "node:crypto";
import type { HfTokenizer } from "./hf-tokenizers.js";

/** SHA-256 of `Tokenizer.prototype.encode_text.toString()` in @huggingface/tokenizers 0.2.0 (dist/tokenizers.mjs and .cjs). */
const ENCODE_TEXT_SHA256 = "7d27dab772cde83395dadd9a4b6653b101803029623ae8fe3f6dd0b4af7a74b2";

interface AddedTokenLike {
  lstrip?: boolean;
  rstrip?: boolean;
}

/** The library's Tokenizer fields that encode_text reads. */
interface Internals {
  encode_text: (text: string | null) => string[] | null;
  splitter_unnormalized: { split(text: string): string[] };
  splitter_normalized: { split(text: string): string[] };
  added_tokens_map: Map<string, AddedTokenLike>;
  remove_space?: unknown;
  do_lowercase_and_remove_accent?: unknown;
  normalizer: ((text: string) => string) | null;
  pre_tokenizer: ((text: string, options: { section_index: number }) => string[]) | null;
  model: (tokens: string[]) => string[];
}

/** The library's lstrip/rstrip pass: trim the text beside an added token (reads each part as it is then, like its forEach). */
function stripAroundAddedTokens(parts: string[], added: Map<string, AddedTokenLike>): void {
  for (let i = 0; i < parts.length; i++) {
    const token = added.get(parts[i] as string);
    if (token) {
      if (token.lstrip && i > 0) {
        parts[i - 1] = (parts[i - 1] as string).trimEnd();
      }
      if (token.rstrip && i < parts.length - 1) {
        parts[i + 1] = (parts[i + 1] as string).trimStart();
      }
    }
  }
}

function encodeText(this: Internals, text: string | null): string[] | null {
  if (text === null) {
    return null;
  }
  const out: string[] = [];
  const sections = this.splitter_unnormalized.split(text);
  stripAroundAddedTokens(sections, this.added_tokens_map);
  for (let section_index = 0; section_index < sections.length; section_index++) {
    let processed = sections[section_index] as string;
    if (processed.length === 0) {
      continue;
    }
    if (this.added_tokens_map.has(processed)) {
      out.push(processed);
      continue;
    }
    if (this.remove_space === true) {
      processed = processed.trim().split(/\s+/).join(" ");
    }
    if (this.normalizer !== null) {
      processed = this.normalizer(processed);
    }
    if (processed.length === 0) {
      continue;
    }
    const subsections = this.splitter_normalized.split(processed);
    stripAroundAddedTokens(subsections, this.added_tokens_map);
    for (const subsection of subsections) {
      if (subsection.length === 0) {
        continue;
      }
      if (this.added_tokens_map.has(subsection)) {
        out.push(subsection);
        continue;
      }
      const words = this.pre_tokenizer !== null ? this.pre_tokenizer(subsection, { section_index }) : [subsection];
      for (const t of this.model(words)) {
        out.push(t);
      }
    }
  }
  return out;
}

/** Per library method: is its source the transcribed one? (hashed once) */
const checked = new WeakMap<object, boolean>();

/**
 * Install the loop version of encode_text on this tokenizer instance.
 * @returns whether it was installed
 */
export function loopEncodeText(tok: HfTokenizer): boolean {
  const t = tok as unknown as Partial<Internals>;
  const proto = Object.getPrototypeOf(tok) as { encode_text?: unknown } | null;
  if (typeof proto?.encode_text !== "function" || t.encode_text !== proto.encode_text) {
    return false;
  }
  let matches = checked.get(proto.encode_text);
  if (matches === undefined) {
    matches = createHash("sha256").update(proto.encode_text.toString()).digest("hex") === ENCODE_TEXT_SHA256;
    checked.set(proto.encode_text, matches);
  }
  if (
    !matches ||
    t.do_lowercase_and_remove_accent ||
    typeof t.splitter_unnormalized?.split !== "function" ||
    typeof t.splitter_normalized?.split !== "function" ||
    !(t.added_tokens_map instanceof Map) ||
    typeof t.model !== "function" ||
    (t.normalizer !== null && typeof t.normalizer !== "function") ||
    (t.pre_tokenizer !== null && typeof t.pre_tokenizer !== "function")
  ) {
    return false;
  }
  t.encode_text = encodeText;
  return true;
}
