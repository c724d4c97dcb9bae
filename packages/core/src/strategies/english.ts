/**
 * The `english` strategy (the reference's default, `independent`): keys and responses are
 * text sampled from a generation model, independently, `batchSize` prompts at a time.
 *
 * Each text starts from a first word (`firstTokenStrategy`): a word of the word list, a random
 * vocabulary token, or nothing (BOS only). A base model is prompted with the word itself and
 * the text keeps it; an instruction-tuned model gets "Generate a paragraph starting with the
 * word - {word}" through its chat template, and the text is only what it generated.
 */
import { InputError, RuntimeFailure } from "../errors.js";
import type { CausalLm } from "../engines/causal-lm.js";
import type { Fingerprint } from "../fingerprints/schema.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { Rng } from "../util/rng.js";

export type FirstTokenStrategy = "word" | "tokenizer" | "";

/** The instruction of the newer reference (the paper: "Generate a sentence starting with word {word}"). */
export const INSTRUCT_PROMPT = "Generate a paragraph starting with the word - {}";

/** Rounds of re-drawing texts that came out empty (the model stopped at once) before giving up. */
const MAX_EMPTY_ROUNDS = 8;

/** Does the model's name or path say it is instruction-tuned ("instruct", any case)? */
export function looksInstructTuned(modelName: string): boolean {
  return /instruct/i.test(modelName);
}

export interface EnglishTextParams {
  lm: CausalLm;
  /** new tokens per text (the reference's key_length / response_length) */
  newTokens: number;
  temperature: number;
  firstTokenStrategy: FirstTokenStrategy;
  /** first words for `firstTokenStrategy` "word" */
  words: readonly string[];
  /** prompt through the chat template and keep only the generated text */
  instruct: boolean;
  batchSize: number;
  rng: Rng;
}

/** A random first token: a non-special vocabulary token whose decoded text is printable. */
function randomVocabWord(tok: Tokenizer, vocabSize: number, rng: Rng): string {
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const id = rng.int(vocabSize);
    if (tok.specialIds.has(id) || tok.idToToken(id) === undefined) {
      continue;
    }
    const text = tok.decode([id]).trim();
    if (text !== "" && !text.includes("\uFFFD")) {
      return text;
    }
  }
  throw new RuntimeFailure(`${tok.source}: found no printable vocabulary token for --first-token-strategy tokenizer`, {
    hint: "use --first-token-strategy word",
  });
}

/** The first word of one text. */
export function drawFirstWord(p: Pick<EnglishTextParams, "firstTokenStrategy" | "words" | "rng" | "lm">): string {
  switch (p.firstTokenStrategy) {
    case "word":
      return p.words[p.rng.int(p.words.length)] as string;
    case "tokenizer":
      return randomVocabWord(p.lm.tokenizer, Math.min(p.lm.tokenizer.vocabSize, p.lm.vocabSize), p.rng);
    case "":
      return "";
  }
}

/** A prompt and the ids its text starts with (the word for base models, nothing for instruct). */
interface TextPrompt {
  prompt: number[];
  keep: number[];
}

/**
 * The prompt for one first word.
 * @throws InputError when the model has no chat template (instruct) or nothing to start from
 */
export function englishPrompt(tok: Tokenizer, word: string, instruct: boolean): TextPrompt {
  if (instruct) {
    if (!tok.hasChatTemplate) {
      throw new InputError(`${tok.source}: the model is treated as instruction-tuned, but its tokenizer has no chat template`, {
        hint: "pass --no-instruct for a base model, or use a model with a chat template",
      });
    }
    const text = tok.applyChatTemplate([{ role: "user", content: INSTRUCT_PROMPT.replace("{}", word) }], { addGenerationPrompt: true });
    return { prompt: tok.encode(text, { addSpecialTokens: false }), keep: [] };
  }
  const keep = word === "" ? [] : tok.encode(word, { addSpecialTokens: false });
  const prompt = tok.addsBos && tok.bosId !== undefined ? [tok.bosId, ...keep] : [...keep];
  if (prompt.length === 0) {
    throw new InputError(`${tok.source}: --first-token-strategy "" needs a tokenizer that adds a BOS token`, {
      hint: "use --first-token-strategy word",
    });
  }
  return { prompt, keep };
}

/**
 * Check that the prompts plus `newTokens` fit the model's context.
 * @throws InputError naming the flag
 */
function checkContext(lm: CausalLm, prompts: readonly TextPrompt[], newTokens: number, flag: string): void {
  const longest = Math.max(...prompts.map((t) => t.prompt.length));
  if (longest + newTokens > lm.maxPositions) {
    throw new InputError(`${flag} ${newTokens}: a prompt of ${longest} tokens + ${newTokens} new tokens exceed the context of ${lm.dir} (${lm.maxPositions} positions)`, {
      hint: `use ${flag} ≤ ${Math.max(0, lm.maxPositions - longest)}`,
    });
  }
}

/**
 * `count` texts sampled from the model, each from its own first word, `batchSize` at a time.
 * A text that comes out empty (the model stopped at once) is drawn again with a new word.
 * @param flag the option that set `newTokens`, for messages (--key-length / --response-length)
 */
export async function englishTexts(p: EnglishTextParams, count: number, flag: string): Promise<string[]> {
  const tok = p.lm.tokenizer;
  const eos = new Set(p.lm.eosIds);
  const out = new Array<string>(count).fill("");
  let todo = Array.from({ length: count }, (_, i) => i);
  for (let round = 0; todo.length > 0; round++) {
    if (round === MAX_EMPTY_ROUNDS) {
      throw new RuntimeFailure(`${p.lm.dir}: ${todo.length} of ${count} generated texts stayed empty after ${MAX_EMPTY_ROUNDS} attempts`, {
        hint: "raise --temperature, or use another generation model",
      });
    }
    const empty: number[] = [];
    for (let s = 0; s < todo.length; s += p.batchSize) {
      const idx = todo.slice(s, s + p.batchSize);
      const prompts = idx.map(() => englishPrompt(tok, drawFirstWord(p), p.instruct));
      checkContext(p.lm, prompts, p.newTokens, flag);
      const seed = p.rng.nextU32();
      const gen = await p.lm.generate(
        prompts.map((t) => t.prompt),
        { maxNewTokens: p.newTokens, temperature: p.temperature, topK: p.lm.sampling.topK, topP: p.lm.sampling.topP, seed },
      );
      idx.forEach((i, j) => {
        const ids = (gen[j] ?? []).filter((id) => !eos.has(id));
        const text = tok.decode([...(prompts[j] as TextPrompt).keep, ...ids], { skipSpecialTokens: true });
        const clean = p.instruct ? text.trim() : text;
        if (clean.trim() === "") {
          empty.push(i);
        } else {
          out[i] = clean;
        }
      });
    }
    todo = empty;
  }
  return out;
}

export interface EnglishParams extends Omit<EnglishTextParams, "newTokens"> {
  numFingerprints: number;
  keyLength: number;
  responseLength: number;
  /** keys from a keys file: then only responses are generated */
  keys?: readonly string[];
  /** called after every batch of fingerprints */
  onProgress?: (done: number, total: number) => void;
}

/** English fingerprints: a key and a response per fingerprint, sampled independently. */
export async function englishFingerprints(p: EnglishParams): Promise<Fingerprint[]> {
  const total = p.keys ? p.keys.length : p.numFingerprints;
  const out: Fingerprint[] = [];
  for (let s = 0; s < total; s += p.batchSize) {
    const n = Math.min(p.batchSize, total - s);
    const keys = p.keys ? p.keys.slice(s, s + n) : await englishTexts({ ...p, newTokens: p.keyLength }, n, "--key-length");
    const responses = await englishTexts({ ...p, newTokens: p.responseLength }, n, "--response-length");
    keys.forEach((key, j) => out.push({ key, response: responses[j] as string }));
    p.onProgress?.(s + n, total);
  }
  return out;
}
