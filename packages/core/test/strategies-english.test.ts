/**
 * english on stories260K (a base model): keys start with their drawn first word and continue
 * with model text; greedy runs equal the engine's own greedy continuation; same seed → same
 * fingerprints; a keys file → only responses are generated.
 */
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import type { CausalLm } from "../src/engines/causal-lm.js";
import { loadTfjsCausalLm } from "../src/engines/tfjs-causal-lm.js";
import { InputError } from "../src/errors.js";
import { createTinyModel } from "../src/model/create-tiny-model.js";
import { loadWordList } from "../src/data/data-files.js";
import { englishFingerprints, englishPrompt, looksInstructTuned, type EnglishParams } from "../src/strategies/english.js";
import { createRng, type Rng } from "../src/util/rng.js";

const DIR = path.resolve(__dirname, "../../../../shared/models/stories260K");

let lm: CausalLm;
let words: string[];
let before = 0;

beforeAll(async () => {
  await initBackend("wasm");
  before = tf.memory().numTensors;
  lm = await loadTfjsCausalLm(DIR);
  words = await loadWordList();
});
afterAll(async () => {
  await lm.dispose();
  expect(tf.memory().numTensors).toBe(before);
});

/** An rng that records the word indices it draws. */
function recording(seed: number, n: number): { rng: Rng; drawn: number[] } {
  const base = createRng(seed);
  const drawn: number[] = [];
  const rng: Rng = {
    ...base,
    int: (m) => {
      const v = base.int(m);
      if (m === n) {
        drawn.push(v);
      }
      return v;
    },
  };
  return { rng, drawn };
}

const params = (over: Partial<EnglishParams> = {}): EnglishParams => ({
  lm,
  words,
  rng: createRng(42),
  numFingerprints: 5,
  keyLength: 10,
  responseLength: 6,
  batchSize: 8,
  temperature: 0.5,
  firstTokenStrategy: "word",
  instruct: false,
  ...over,
});

describe("english on stories260K", () => {
  test("keys and responses start with their drawn word; same seed → same fingerprints", async () => {
    const { rng, drawn } = recording(42, words.length);
    const fps = await englishFingerprints(params({ rng }));
    expect(fps).toHaveLength(5);
    expect(drawn).toHaveLength(10); // 5 key words, then 5 response words (one batch)
    fps.forEach((fp, i) => {
      const kw = words[drawn[i] as number] as string;
      const rw = words[drawn[5 + i] as number] as string;
      expect(fp.key.startsWith(kw)).toBe(true);
      expect(fp.key.length).toBeGreaterThan(kw.length); // the model wrote something after it
      expect((fp.response as string).startsWith(rw)).toBe(true);
    });
    expect(await englishFingerprints(params())).toEqual(fps);
    expect(await englishFingerprints(params({ rng: createRng(43) }))).not.toEqual(fps);
    // the batch size changes the sampler's draws, not the validity
    const small = await englishFingerprints(params({ batchSize: 2 }));
    expect(small).toHaveLength(5);
  });

  test("temperature 0: the key is the word + the model's greedy continuation of it", async () => {
    const { rng, drawn } = recording(5, words.length);
    const fps = await englishFingerprints(params({ rng, temperature: 0, numFingerprints: 3 }));
    const tok = lm.tokenizer;
    for (let i = 0; i < 3; i++) {
      const word = words[drawn[i] as number] as string;
      const { prompt, keep } = englishPrompt(tok, word, false);
      expect(prompt).toEqual([1, ...tok.encode(word, { addSpecialTokens: false })]);
      const [gen] = await lm.generate([prompt], { maxNewTokens: 10, temperature: 0, seed: 0 });
      const ids = (gen ?? []).filter((id) => !lm.eosIds.includes(id));
      expect(fps[i]?.key).toBe(tok.decode([...keep, ...ids], { skipSpecialTokens: true }));
    }
  });

  test('first token "": prompt is BOS only (greedy: every key is the same story opening)', async () => {
    const fps = await englishFingerprints(params({ firstTokenStrategy: "", temperature: 0, numFingerprints: 3 }));
    const [gen] = await lm.generate([[1]], { maxNewTokens: 10, temperature: 0, seed: 0 });
    const expected = lm.tokenizer.decode(gen ?? [], { skipSpecialTokens: true });
    expect(fps.map((f) => f.key)).toEqual([expected, expected, expected]);
  });

  test("first token from the tokenizer: deterministic, non-empty", async () => {
    const a = await englishFingerprints(params({ firstTokenStrategy: "tokenizer" }));
    expect(await englishFingerprints(params({ firstTokenStrategy: "tokenizer" }))).toEqual(a);
    expect(a.every((f) => f.key.trim() !== "" && (f.response as string).trim() !== "")).toBe(true);
  });

  test("keys given: only responses generated", async () => {
    const keys = ["my first key", "another secret key", "third"];
    const fps = await englishFingerprints(params({ keys }));
    expect(fps.map((f) => f.key)).toEqual(keys);
    expect(fps.every((f) => typeof f.response === "string" && f.response.length > 0)).toBe(true);
  });

  test("instruct detection and errors: no chat template, context exceeded", async () => {
    expect(looksInstructTuned("meta-llama/Meta-Llama-3.1-8B-Instruct")).toBe(true);
    expect(looksInstructTuned("/models/stories260K")).toBe(false);
    await expect(englishFingerprints(params({ instruct: true }))).rejects.toThrow(/has no chat template/);
    await expect(englishFingerprints(params({ keyLength: 600 }))).rejects.toThrow(InputError);
    await expect(englishFingerprints(params({ keyLength: 600 }))).rejects.toThrow(/^--key-length 600: a prompt of \d+ tokens \+ 600 new tokens exceed the context/);
  });

  test("instruct: the instruction goes through the chat template, and only the generated text is kept", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "oml-english-"));
    const modelDir = path.join(dir, "tiny");
    await createTinyModel(modelDir, { seed: 3, hidden: 32, layers: 1, heads: 2, kvHeads: 1 });
    const tiny = await loadTfjsCausalLm(modelDir);
    try {
      const tok = tiny.tokenizer;
      const { prompt, keep } = englishPrompt(tok, "apple", true);
      expect(keep).toEqual([]);
      const text = tok.decode(prompt);
      expect(text).toBe(tok.applyChatTemplate([{ role: "user", content: "Generate a paragraph starting with the word - apple" }], { addGenerationPrompt: true }));
      const { rng, drawn } = recording(1, words.length);
      const fps = await englishFingerprints(params({ lm: tiny, rng, instruct: true, temperature: 0, numFingerprints: 2, keyLength: 8 }));
      for (let i = 0; i < 2; i++) {
        const p = englishPrompt(tok, words[drawn[i] as number] as string, true).prompt;
        const [gen] = await tiny.generate([p], { maxNewTokens: 8, temperature: 0, seed: 0 });
        const ids = (gen ?? []).filter((id) => !tiny.eosIds.includes(id));
        expect(fps[i]?.key).toBe(tok.decode(ids, { skipSpecialTokens: true }).trim());
        expect(fps[i]?.key).not.toContain("Generate a paragraph");
      }
    } finally {
      await tiny.dispose();
    }
  });
});
