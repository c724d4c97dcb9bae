/**
 * The sped-up tokenizer (per-word BPE split, short-word BPE, added-token scan shortcut, loop
 * encode_text) must give exactly the library's ids: createHfTokenizer against the library
 * unchanged (fastBpe: false) on every real tokenizer.json we have, over random-word keys,
 * punctuation, scripts, digits, whitespace runs, newlines, byte-fallback characters, added
 * tokens and the empty string, cold and then from the caches.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { loadWordList } from "../data/data-files.js";
import { createRng } from "../util/rng.js";
import { mergesKeepMarkerFirst, splitAtMarkers, splitBpeWords } from "./hf-bpe-word-split.js";
import { loopEncodeText } from "./hf-encode-text.js";
import { createHfTokenizer, type HfTokenizer } from "./hf-tokenizers.js";

const shared = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../../shared");
/** Each real tokenizer, with the marker splitBpeWords should split on (undefined: not applied). */
const tokenizers: [string, string | undefined][] = [
  ["tokenizers/gpt2", undefined],
  ["tokenizers/gpt-neox-20b", undefined],
  ["tokenizers/llama-2", "\u2581"],
  ["tokenizers/mistral-7b-v0.1", "\u2581"],
  ["tokenizers/phi-3-vision", "\u2581"],
  ["models/stories260K", "\u2581"],
  ["models/tiny-random-llama-basaran", "\u2581"],
];

function readJson(file: string): object {
  return JSON.parse(readFileSync(file, "utf8")) as object;
}

const FIXED = [
  "",
  " ",
  "   ",
  "\n",
  "Hello world",
  " Hello world",
  "Hello world ",
  "  two  leading, trailing and   inner  spaces  ",
  "line one\nline two\r\n\tindented\n\n",
  "don't stop, e.g. (a) [b] {c}; x=1+2*3/4 - 5% @home #tag $9.99 ~ ^ | \\ ` \" '",
  "3.14159 2026-11-29 1234567890 007 ½ ² ٣",
  "naïve café über ünïcödé Ångström",
  "日本語のテキスト 中文 한국어 ไทย العربية עברית Ελληνικά Русский",
  "emoji 😀👍🏽 👨‍👩‍👧 🇫🇷 and a rare CJK 𠀋 and \u0000\u0007 control and \u2028 separator",
  "a\u2581b \u2581\u2581 x\u2581\u2581\u2581y \u2581leading \u2581",
  "<s> inside </s> text <unk> and <|user|> hi<|end|>\n<|assistant|> ok",
  "<not an added token> < s > </ s",
  "You are a helpful AI assistant. Answer the following. plausible educating collated sections oar dip",
];

async function texts(): Promise<string[]> {
  const words = await loadWordList();
  const rng = createRng(11);
  const out = [...FIXED];
  const pick = (): string => words[rng.int(words.length)] as string;
  for (let i = 0; i < 300; i++) {
    const n = 1 + rng.int(20);
    const parts = Array.from({ length: n }, () => (rng.int(8) === 0 ? (FIXED[rng.int(FIXED.length)] as string) : pick()));
    const sep = [" ", " ", "  ", "", "\n", ", "][rng.int(6)] as string;
    out.push(parts.join(sep));
  }
  return out;
}

function tokenizerConfig(dir: string): object {
  try {
    return readJson(path.join(shared, dir, "tokenizer_config.json"));
  } catch {
    return {};
  }
}

describe("the sped-up tokenizer gives the library's ids", () => {
  let all: string[] = [];
  beforeAll(async () => {
    all = await texts();
  });
  for (const [dir, marker] of tokenizers) {
    test(dir, () => {
      const json = readJson(path.join(shared, dir, "tokenizer.json"));
      const config = tokenizerConfig(dir);
      const stock = createHfTokenizer(json, config, { fastBpe: false });
      const fast = createHfTokenizer(json, config);
      // Which speed-ups apply (a fresh library tokenizer each, since each installs once).
      expect(splitBpeWords(createHfTokenizer(json, config, { fastBpe: false }), json)).toBe(marker);
      expect(loopEncodeText(createHfTokenizer(json, config, { fastBpe: false }))).toBe(true);
      for (const round of ["cold", "cached"]) {
        for (const t of all) {
          for (const special of [false, true]) {
            const want = stock.encode(t, { add_special_tokens: special });
            const got = fast.encode(t, { add_special_tokens: special });
            expect(got.ids, `${round} ${JSON.stringify(t)}`).toEqual(want.ids);
            expect(got.tokens).toEqual(want.tokens);
          }
        }
      }
    });
  }

  test("short-word BPE = the library's heap BPE, word by word", () => {
    const json = readJson(path.join(shared, "tokenizers/llama-2/tokenizer.json"));
    const model = (t: HfTokenizer): { bpe(w: string): string[] } => (t as unknown as { model: { bpe(w: string): string[] } }).model;
    const stock = model(createHfTokenizer(json, {}, { fastBpe: false }));
    const fast = model(createHfTokenizer(json, {}));
    const rng = createRng(3);
    const chars = "▁▁▁eeeaaattnnsrl' .,0123éü日😀";
    const symbols = Array.from(chars);
    for (let i = 0; i < 3000; i++) {
      const w = Array.from({ length: 1 + rng.int(30) }, () => symbols[rng.int(symbols.length)]).join("");
      expect(fast.bpe(w), w).toEqual(stock.bpe(w));
    }
    for (const w of all.slice(0, 50)) {
      expect(fast.bpe(w)).toEqual(stock.bpe(w)); // long words: the library's heap path
    }
  });
});

describe("splitBpeWords applies only where no merge spans a word boundary", () => {
  /** A tiny sentencepiece-style tokenizer.json (Replace " " → "▁", byte fallback); extra merges rank first. */
  function tiny(extraMerges: [string, string][]): object {
    const tokens = ["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "▁b", "ab", "▁▁", "▁ab"];
    for (const [x, y] of extraMerges) {
      tokens.push(x + y);
    }
    for (let i = 0; i < 256; i++) {
      tokens.push(`<0x${i.toString(16).toUpperCase().padStart(2, "0")}>`);
    }
    return {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [
        { id: 0, content: "<unk>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
        { id: 1, content: "<s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
        { id: 2, content: "</s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      ],
      normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      model: {
        type: "BPE",
        dropout: null,
        unk_token: "<unk>",
        continuing_subword_suffix: null,
        end_of_word_suffix: null,
        fuse_unk: true,
        byte_fallback: true,
        vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
        merges: [...extraMerges, ["▁", "a"], ["▁", "b"], ["a", "b"], ["▁", "▁"], ["▁a", "b"]].map(([x, y]) => `${x} ${y}`),
      },
    };
  }

  test("a vocabulary without mid-word markers is split (▁▁ runs allowed)", () => {
    const json = tiny([]);
    expect(splitBpeWords(createHfTokenizer(json, {}, { fastBpe: false }), json)).toBe("▁");
  });

  test("a merge that puts ▁ inside a token turns the split off, and the ids stay the library's", () => {
    // "b▁" ranks first: BPE of "▁b▁a" merges across the word boundary, where per-word BPE
    // would give "▁b", "▁a".
    const json = tiny([["b", "▁"]]);
    expect(splitBpeWords(createHfTokenizer(json, {}, { fastBpe: false }), json)).toBeUndefined();
    const stock = createHfTokenizer(json, {}, { fastBpe: false });
    const fast = createHfTokenizer(json, {});
    for (const t of ["ab a", "b a b", "a  b", "ab ab ab", "x b a"]) {
      expect(fast.encode(t).tokens, t).toEqual(stock.encode(t).tokens);
    }
    expect(stock.encode("b a").tokens).toEqual(["▁", "b▁", "a"]);
  });

  test("mergesKeepMarkerFirst and splitAtMarkers", () => {
    expect(mergesKeepMarkerFirst([["▁", "a"], ["▁", "▁"], ["▁▁", "▁the"]], "▁")).toBe(true);
    expect(mergesKeepMarkerFirst([["a", "▁"]], "▁")).toBe(false);
    expect(mergesKeepMarkerFirst([["▁a", "▁▁"]], "▁")).toBe(false);
    expect(mergesKeepMarkerFirst([], "😀")).toBe(false); // a surrogate pair is not one unit
    const out: string[] = [];
    splitAtMarkers("▁the▁▁cat▁", 0x2581, out);
    splitAtMarkers("", 0x2581, out);
    splitAtMarkers("▁▁", 0x2581, out);
    expect(out).toEqual(["▁the", "▁▁cat", "▁", "▁▁"]);
  });
});
