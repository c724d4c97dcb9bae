/**
 * A shortcut for @huggingface/tokenizers 0.2.0's added-token splitting. `encode_text` cuts the
 * text at added tokens (`<s>`, `</s>`, `<|user|>`, …) with a DictionarySplitter that walks a
 * trie from every UTF-16 unit of the text, twice (before and after the normalizer): ~2 µs per
 * 16-word key each time, against ~0.2 µs for the regex below. A match has to start with the
 * first unit of some added token, so a text with none of those units splits into itself (or
 * into nothing, when empty), which one native regex scan establishes; other texts go through
 * the library's split unchanged.
 */
import type { HfTokenizer } from "./hf-tokenizers.js";

interface DictionarySplitter {
  trie?: unknown;
  split?: unknown;
}

/** A regex matching any UTF-16 unit that starts a word of the trie (null: the trie is empty). */
function firstUnits(trie: object): RegExp | null {
  const units = Object.keys(trie).filter((k) => k.length === 1);
  if (units.length === 0) {
    return null;
  }
  const cls = units.map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, "0")}`).join("");
  return new RegExp(`[${cls}]`); // no u flag: matches single units, surrogate halves included
}

/**
 * Wrap the tokenizer's added-token splitters with the shortcut.
 * @returns how many splitters were wrapped (0 when the internals do not look as expected)
 */
export function skipAddedTokenScan(tok: HfTokenizer): number {
  let wrapped = 0;
  for (const name of ["splitter_unnormalized", "splitter_normalized"] as const) {
    const s = (tok as unknown as Record<string, DictionarySplitter | undefined>)[name];
    if (!s || typeof s.split !== "function" || typeof s.trie !== "object" || s.trie === null) {
      continue;
    }
    const trie = s.trie as Record<string, unknown>;
    // The trie's first level holds single units (the library indexes words by word[i]); "end"
    // marks a word that ends at the root, i.e. the empty word, which would match anywhere.
    if (Object.keys(trie).some((k) => k.length !== 1) || Object.getPrototypeOf(trie) !== null) {
      continue;
    }
    const split = s.split as (text: string) => string[];
    const starts = firstUnits(trie);
    s.split = (text: string): string[] => {
      if (starts === null || !starts.test(text)) {
        return text.length === 0 ? [] : [text];
      }
      return split.call(s, text);
    };
    wrapped++;
  }
  return wrapped;
}
