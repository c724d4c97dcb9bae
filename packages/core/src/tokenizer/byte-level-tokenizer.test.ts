import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BYTE_TOKEN_OFFSET, bytesToUnicode, createByteLevelTokenizer } from "./byte-level-tokenizer.js";
import { loadTokenizer } from "./load-tokenizer.js";
import type { Tokenizer } from "./tokenizer.js";

/** Id of a single byte token. */
const byte = (c: string): number => BYTE_TOKEN_OFFSET + c.charCodeAt(0);

describe("createByteLevelTokenizer", () => {
  let dir: string;
  let tok: Tokenizer;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "oml-bytetok-"));
    for (const [name, json] of Object.entries(createByteLevelTokenizer())) {
      await writeFile(path.join(dir, name), JSON.stringify(json, null, 2));
    }
    tok = await loadTokenizer(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("GPT-2's byte map: printable bytes are themselves, space is Ġ, newline Ċ", () => {
    const m = bytesToUnicode();
    expect(new Set(m).size).toBe(256);
    expect([m[0x41], m[0x20], m[0x0a], m[0x00], m[0xad]]).toEqual(["A", "Ġ", "Ċ", "Ā", "Ń"]);
  });

  test("loads from a directory with the documented ids", () => {
    expect(tok.source).toBe(dir);
    expect([tok.unkId, tok.bosId, tok.eosId, tok.padTokenId]).toEqual([0, 1, 2, 3]);
    expect(tok.vocabSize).toBe(320);
    expect(tok.eosIds).toEqual([2]);
    expect(tok.padId).toBe(3);
    expect(tok.addsBos).toBe(true);
    expect(tok.addsEos).toBe(false);
    expect(tok.convertIdsToTokens([4, 4 + 0x20, 4 + 0xff, 260, 319])).toEqual(["Ā", "Ġ", "ÿ", "Ġt", "ut"]);
  });

  test("encodes with the GPT-2 merges, worked out by hand", () => {
    // "the" → t,h,e → merge rank 2 "h e" → [t, he]; " the" → Ġ,t,h,e → rank 0 "Ġ t", rank 2
    // "h e", rank 6 "Ġt he" → [Ġthe]. Merge r has id 260 + r.
    expect(tok.encode("the the", { addSpecialTokens: false })).toEqual([byte("t"), 262, 266]);
    // "Hello": only rank 41 "l l" applies.
    expect(tok.encode("Hello")).toEqual([1, byte("H"), byte("e"), 301, byte("o")]);
    // "é" is two UTF-8 bytes C3 A9; "\n" one.
    expect(tok.encode("é\n", { addSpecialTokens: false })).toEqual([4 + 0xc3, 4 + 0xa9, 4 + 0x0a]);
    expect(tok.encode("")).toEqual([1]);
  });

  test("special tokens in text are matched; decode keeps or skips them", () => {
    expect(tok.encode("a</s>", { addSpecialTokens: false })).toEqual([byte("a"), 2]);
    expect(tok.decode([1, byte("a"), 2, 3])).toBe("<s>a</s><pad>");
    expect(tok.decode([1, byte("a"), 2, 3], { skipSpecialTokens: true })).toBe("a");
  });

  test("round-trips any well-formed unicode text exactly", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 64 }), fc.string({ unit: "grapheme", maxLength: 32 }), (a, b) => {
        const text = a + " " + b;
        expect(tok.decode(tok.encode(text, { addSpecialTokens: false }))).toBe(text);
        expect(tok.decode(tok.encode(text))).toBe("<s>" + text);
      }),
      { numRuns: 300 },
    );
  });

  test("chat template: plain-text role markers, BOS from the template, EOS after each turn", () => {
    const text = tok.applyChatTemplate(
      [
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Yo" },
      ],
      { addGenerationPrompt: false },
    );
    expect(text).toBe("<s><|user|>\nHi</s>\n<|assistant|>\nYo</s>\n");
    expect(tok.applyChatTemplate([{ role: "user", content: "Hi" }], { addGenerationPrompt: true })).toBe("<s><|user|>\nHi</s>\n<|assistant|>\n");
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids[0]).toBe(1);
    expect(ids.filter((i) => i === 1)).toHaveLength(1);
    expect(ids.filter((i) => i === 2)).toHaveLength(2);
  });

  test("returns fresh objects", () => {
    const a = createByteLevelTokenizer();
    (a["tokenizer_config.json"] as { bos_token: string }).bos_token = "x";
    expect(createByteLevelTokenizer()["tokenizer_config.json"]["bos_token"]).toBe("<s>");
  });
});
