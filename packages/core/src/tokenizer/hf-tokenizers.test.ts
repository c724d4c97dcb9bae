/**
 * speedUpBpe must not change a single id: the library's own BPE (fastBpe: false) against the
 * sped-up one on real tokenizer.json files (byte-level and sentencepiece-style BPE), over
 * random-word keys, mixed scripts, digits and whitespace runs.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { createRng } from "../util/rng.js";
import { createHfTokenizer, speedUpBpe } from "./hf-tokenizers.js";

const shared = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../../shared");
const dirs = ["tokenizers/gpt2", "tokenizers/gpt-neox-20b", "tokenizers/llama-2", "tokenizers/mistral-7b-v0.1", "tokenizers/phi-3-vision", "models/stories260K"];

function texts(): string[] {
  const rng = createRng(5);
  const pieces = ["the", " quick", "brown", "fox", "über", "naïve", "日本語", "😀", "1234567", "  ", "\n\n", "don't", "e.g.", "Hello", "WORLD", "tab\there", "ünïcödé", "x"];
  const out: string[] = [];
  for (let i = 0; i < 200; i++) {
    const n = 1 + rng.int(24);
    out.push(Array.from({ length: n }, () => pieces[rng.int(pieces.length)]).join(rng.int(3) === 0 ? "" : " "));
  }
  return out;
}

describe("speedUpBpe gives the library's ids", () => {
  for (const dir of dirs) {
    test(dir, () => {
      const json = JSON.parse(readFileSync(path.join(shared, dir, "tokenizer.json"), "utf8")) as object;
      const stock = createHfTokenizer(json, {}, { fastBpe: false });
      const fast = createHfTokenizer(json, {}, { fastBpe: false });
      expect(speedUpBpe(fast)).toBe(true);
      for (const t of texts()) {
        expect(fast.encode(t, { add_special_tokens: false }).ids, t).toEqual(stock.encode(t, { add_special_tokens: false }).ids);
      }
    });
  }
});
