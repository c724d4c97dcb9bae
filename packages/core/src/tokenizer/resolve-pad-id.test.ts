import { describe, expect, test } from "vitest";
import { TokenizerError } from "../errors.js";
import { type PadRuleFamily, resolvePadId } from "./resolve-pad-id.js";

// The rules of docs/oml-reference.md §3, on a tokenizer with BOS 1 and EOS 2.
const noPad = { bosId: 1, eosId: 2 };

describe("resolvePadId", () => {
  test("the tokenizer's own pad token wins over every rule", () => {
    for (const family of [undefined, "llama", "mistral"] as const) {
      expect(resolvePadId({ ...noPad, padTokenId: 7 }, { family, paddingSide: "left" })).toBe(7);
    }
  });

  test.each([
    ["llama", 2],
    ["Eleuther", 2],
    ["gpt_neox", 2],
    ["mistral", 1],
    ["gemma", 1],
    ["microsoft", 1],
    ["phi3", 1],
  ] as const)("family %s → %i", (family: PadRuleFamily, id) => {
    // the padding side matters only for a local path
    expect(resolvePadId(noPad, { family, paddingSide: "left" })).toBe(id);
    expect(resolvePadId(noPad, { family, paddingSide: "right" })).toBe(id);
  });

  test("local path: EOS when padding right (the default), else BOS", () => {
    expect(resolvePadId(noPad)).toBe(2);
    expect(resolvePadId(noPad, { paddingSide: "right" })).toBe(2);
    expect(resolvePadId(noPad, { paddingSide: "left" })).toBe(1);
  });

  test("a missing token or an unknown family is a TokenizerError", () => {
    expect(() => resolvePadId({ bosId: 1 }, { family: "llama" })).toThrow(TokenizerError);
    expect(() => resolvePadId({ eosId: 2 }, { paddingSide: "left" })).toThrow(/set pad_token|no pad token/);
    expect(() => resolvePadId(noPad, { family: "bloom" as PadRuleFamily })).toThrow(/unknown model family "bloom"/);
  });
});
