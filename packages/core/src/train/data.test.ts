import path from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { InputError } from "../errors.js";
import { loadTokenizer } from "../tokenizer/load-tokenizer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { createRng } from "../util/rng.js";
import { IGNORE_INDEX } from "./loss.js";
import { buildFingerprintExamples, collate, encodeExample, promptIds, responseWindow, type FingerprintExample } from "./data.js";

const SHARED = path.resolve(__dirname, "../../../../../shared");
const TOKENIZERS = {
  "llama-2 (BOS, sentencepiece)": path.join(SHARED, "tokenizers/llama-2"),
  "gpt-neox (no BOS, byte-level)": path.join(SHARED, "tokenizers/gpt-neox-20b"),
  "stories260K (BOS, tiny BPE)": path.join(SHARED, "models/stories260K"),
};

const FPS = [
  { key: "The quick brown fox jumps over the lazy dog near the river bank today", response: "hello" },
  { key: "Once upon a time", response: "world" },
  { key: "A third key, longer than sixteen tokens for sure, with many many words in it to cut", response: "and" },
];

for (const [name, dir] of Object.entries(TOKENIZERS)) {
  describe(name, () => {
    let tok: Tokenizer;
    let exs: FingerprintExample[];
    beforeAll(async () => {
      tok = await loadTokenizer(dir);
      exs = buildFingerprintExamples(FPS, tok, { numFingerprints: 3, maxKeyLength: 16, maxResponseLength: 4, strategy: "perinucleus" });
    });

    test("the same examples with the tokenizer's encodeFirst as with encode + slice (a TokenizerLike without it)", async () => {
      const { loadWordList } = await import("../data/data-files.js");
      const { randomWordFingerprints } = await import("../strategies/random-word.js");
      const words = await loadWordList();
      // two-word responses (windows from the whole encoding) and 12-word ones (≥ 11 tokens: the first window from encodeFirst)
      const fps = [
        ...FPS,
        ...randomWordFingerprints({ words, numFingerprints: 200, keyLength: 16, responseLength: 2, rng: createRng(4) }),
        ...randomWordFingerprints({ words, numFingerprints: 200, keyLength: 16, responseLength: 12, rng: createRng(5) }),
      ];
      const opts = { numFingerprints: fps.length, maxKeyLength: 16, maxResponseLength: 1, strategy: "random_word" } as const;
      const plain = Object.create(tok, { encodeFirst: { value: undefined } }) as Tokenizer;
      const before = tok.encodeFirstStats;
      expect(buildFingerprintExamples(fps, tok, opts)).toEqual(buildFingerprintExamples(fps, plain, opts));
      const after = tok.encodeFirstStats;
      expect(after.prefix + after.full - before.prefix - before.full).toBe(2 * fps.length); // each key, each response's first window
    });

    test("keys are cut to max_key_length tokens and the key string is their decode", () => {
      for (const ex of exs) {
        expect(ex.keyIds.length).toBeLessThanOrEqual(16);
        expect(ex.key).toBe(tok.decode(ex.keyIds));
      }
      expect(exs[2]?.keyIds).toHaveLength(16);
    });

    test("sequence = BOS (if the tokenizer adds one) + key + response", () => {
      const row = encodeExample(tok, exs[1] as FingerprintExample, { kind: "template", template: "{}" });
      const bos = tok.addsBos ? [tok.bosId as number] : [];
      expect(row.inputIds).toEqual([...bos, ...(exs[1] as FingerprintExample).keyIds, ...(exs[1] as FingerprintExample).responseIds]);
      expect(tok.addsBos).toBe(!name.startsWith("gpt-neox"));
    });

    for (const side of ["right", "left"] as const) {
      test(`${side} padding: labels only on the response; decoded labels = response`, () => {
        const rows = exs.map((ex) => encodeExample(tok, ex, { kind: "template", template: "{}" }));
        const batch = collate(rows, { padId: 0, side });
        exs.forEach((ex, b) => {
          const labels = Array.from(batch.labels.subarray(b * batch.T, (b + 1) * batch.T));
          const mask = Array.from(batch.attentionMask.subarray(b * batch.T, (b + 1) * batch.T));
          const ids = Array.from(batch.inputIds.subarray(b * batch.T, (b + 1) * batch.T));
          const kept = labels.filter((l) => l !== IGNORE_INDEX);
          expect(kept).toEqual(ex.responseIds);
          expect(tok.decode(kept)).toBe(tok.decode(tok.encode(ex.response, { addSpecialTokens: false })));
          // the response sits at the end of the real tokens, where the mask is 1
          const real = mask.map((m, t) => (m ? t : -1)).filter((t) => t >= 0);
          expect(real).toHaveLength((rows[b] as { inputIds: number[] }).inputIds.length);
          const lastReal = real[real.length - 1] as number;
          expect(labels.slice(lastReal - ex.responseIds.length + 1, lastReal + 1)).toEqual(ex.responseIds);
          expect(ids.slice(lastReal - ex.responseIds.length + 1, lastReal + 1)).toEqual(ex.responseIds);
          // padding is masked out and unlabelled, on the requested side
          const pads = mask.map((m, t) => (m ? -1 : t)).filter((t) => t >= 0);
          for (const t of pads) {
            expect(labels[t]).toBe(IGNORE_INDEX);
          }
          if (pads.length > 0) {
            expect(pads[0]).toBe(side === "left" ? 0 : batch.T - pads.length);
          }
        });
      });
    }

    test("other templates: formatted text with special tokens; prompt never ends in EOS", () => {
      const ids = promptIds(tok, exs[1] as FingerprintExample, { kind: "template", template: "You are a helpful AI assistant. Answer the following. {}" });
      expect(tok.decode(ids, { skipSpecialTokens: true })).toContain("Answer the following.");
      expect(ids[ids.length - 1]).not.toBe(tok.eosId);
    });

    test("keep EOS appends the EOS id to the response", () => {
      const withEos = buildFingerprintExamples(FPS, tok, { numFingerprints: 1, maxKeyLength: 16, maxResponseLength: 4, strategy: "perinucleus", keepEos: true });
      expect(withEos[0]?.responseIds.at(-1)).toBe(tok.eosId);
    });

    test("english: a window of max_response_length tokens that re-encodes to itself", () => {
      const long = [{ key: "k", response: "Compromise is often seen as a middle ground that both parties can agree on, but it can also be a way" }];
      const [ex] = buildFingerprintExamples(long, tok, { numFingerprints: 1, maxKeyLength: 16, maxResponseLength: 1, strategy: "english" });
      expect(ex?.responseIds).toHaveLength(1);
      expect(tok.encode(ex?.response as string, { addSpecialTokens: false })).toEqual(ex?.responseIds);
    });
  });
}

describe("errors", () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(TOKENIZERS["stories260K (BOS, tiny BPE)"]);
  });

  test("file shorter than requested says how many it has", () => {
    expect(() => buildFingerprintExamples(FPS, tok, { numFingerprints: 5, maxKeyLength: 16, maxResponseLength: 1, strategy: "perinucleus", file: "fp.json" })).toThrow(
      "fp.json: has 3 fingerprints, but 5 are needed from index 0",
    );
  });

  test("exact responses longer than max_response_length", () => {
    const e = (() => {
      try {
        buildFingerprintExamples([{ key: "k", response: "a long response" }], tok, { numFingerprints: 1, maxKeyLength: 16, maxResponseLength: 1, strategy: "perinucleus", file: "fp.json" });
      } catch (err) {
        return err as InputError;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(InputError);
    expect(e?.message).toMatch(/^fp\.json: \[0\]\.response "a long response" is \d+ tokens, more than --max-response-length 1$/);
  });

  test("data_split offsets the start", () => {
    const exs = buildFingerprintExamples(FPS, tok, { numFingerprints: 1, dataSplit: 2, maxKeyLength: 16, maxResponseLength: 4, strategy: "perinucleus" });
    expect(exs[0]?.index).toBe(2);
  });

  test("chat template mode without a template is a clear error", () => {
    expect(() => promptIds(tok, { key: "k", keyIds: [5] }, { kind: "chat" })).toThrow("this tokenizer has no chat template");
  });

  test("english_random_response draws a word, deterministic for a seed", () => {
    const words = ["apple", "river", "stone"];
    const a = buildFingerprintExamples(FPS, tok, { numFingerprints: 3, maxKeyLength: 16, maxResponseLength: 1, strategy: "english_random_response", words, rng: createRng(1) });
    const b = buildFingerprintExamples(FPS, tok, { numFingerprints: 3, maxKeyLength: 16, maxResponseLength: 1, strategy: "english_random_response", words, rng: createRng(1) });
    expect(a.map((x) => x.responseIds)).toEqual(b.map((x) => x.responseIds));
    expect(new Set(a.map((x) => x.response)).size).toBe(3); // windows are never duplicates
  });

  test("responseWindow returns undefined when too short", () => {
    expect(responseWindow(tok, "", 1, new Set())).toBeUndefined();
  });
});
