// Checks the data committed in generated_data/ (made by scripts/make-word-list.mjs and by hand):
// the word list's shape and cleanliness, and the two augmentation prompt sets.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const dataDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../generated_data");
const require = createRequire(import.meta.url);

function readPrompts(name: string): unknown {
  return JSON.parse(readFileSync(path.join(dataDir, name), "utf8"));
}

describe("generated_data/word_list.txt", () => {
  const text = readFileSync(path.join(dataDir, "word_list.txt"), "utf8");
  const words = text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n");

  it("has one word per line and ends with a newline", () => {
    expect(text.endsWith("\n")).toBe(true);
    expect(text.includes("\r")).toBe(false);
  });

  it("holds 5,000 to 10,000 words", () => {
    expect(words.length).toBeGreaterThanOrEqual(5_000);
    expect(words.length).toBeLessThanOrEqual(10_000);
  });

  it("has only lowercase a-z words of 2+ letters", () => {
    expect(words.filter((w) => !/^[a-z]{2,}$/.test(w))).toEqual([]);
  });

  it("has no duplicates", () => {
    expect(new Set(words).size).toBe(words.length);
  });

  it("has no word of naughty-words' English list", () => {
    const naughty = new Set((require("naughty-words/en.json") as string[]).map((w) => w.toLowerCase()));
    expect(naughty.size).toBeGreaterThan(300); // the list really loaded
    expect(words.filter((w) => naughty.has(w))).toEqual([]);
  });

  it("keeps the most common words and drops the ones we deny", () => {
    const set = new Set(words);
    for (const w of ["the", "and", "of", "house", "water", "garden"]) {
      expect(set.has(w), w).toBe(true);
    }
    for (const w of ["sexy", "damn", "hes", "french"]) {
      expect(set.has(w), w).toBe(false);
    }
  });
});

describe("generated_data/augmentation_prompts_*.json", () => {
  const sets = {
    train: readPrompts("augmentation_prompts_train.json"),
    test: readPrompts("augmentation_prompts_test.json"),
  };

  for (const [name, prompts] of Object.entries(sets)) {
    it(`${name}: is an array of distinct strings, each with exactly one {} and no other brace`, () => {
      expect(Array.isArray(prompts)).toBe(true);
      const list = prompts as unknown[];
      expect(list.filter((p) => typeof p !== "string")).toEqual([]);
      const strings = list as string[];
      expect(strings.filter((p) => p.split("{}").length !== 2 || /[{}]/.test(p.replace("{}", "")))).toEqual([]);
      expect(new Set(strings).size).toBe(strings.length);
    });

    it(`${name}: puts the key at the start, in the middle and at the end`, () => {
      const strings = prompts as string[];
      expect(strings.some((p) => p.startsWith("{}"))).toBe(true);
      expect(strings.some((p) => p.endsWith("{}"))).toBe(true);
      expect(strings.some((p) => !p.startsWith("{}") && !p.endsWith("{}"))).toBe(true);
    });
  }

  it("has about 50 train and about 20 test templates", () => {
    expect((sets.train as string[]).length).toBeGreaterThanOrEqual(45);
    expect((sets.train as string[]).length).toBeLessThanOrEqual(60);
    expect((sets.test as string[]).length).toBeGreaterThanOrEqual(15);
    expect((sets.test as string[]).length).toBeLessThanOrEqual(25);
  });

  it("keeps test templates out of the train set", () => {
    const train = new Set(sets.train as string[]);
    expect((sets.test as string[]).filter((p) => train.has(p))).toEqual([]);
  });
});
