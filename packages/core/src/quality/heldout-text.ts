/**
 * Held-out text for measuring what fine-tuning costs a model, with no external data set:
 * samples the base model writes itself before training (seeded, temperature 1, from BOS, or
 * from a few neutral prompts when the tokenizer has no BOS), plus an optional user file
 * (plain text, split into paragraphs at blank lines, or JSONL lines `{"text": …}`).
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { InputError } from "../errors.js";
import { generate } from "../model/generate.js";
import type { Model } from "../model/load-model.js";
import type { TokenizerLike } from "../train/data.js";

/** Prompts used when the tokenizer has no BOS to start from. */
export const NEUTRAL_PROMPTS = ["The", "In the", "Once", "It was", "A", "When", "There is", "We"] as const;

export interface SampleHeldoutParams {
  /** Number of samples (0 → none). */
  samples: number;
  /** New tokens per sample at most (a sample that emits EOS stops there). */
  tokens: number;
  /** Sampling seed. */
  seed: number;
  /** Default 1: the model's own distribution. */
  temperature?: number;
  /** Fills the left padding of the prompts. */
  padId: number;
}

/** The start of every sample: [BOS] when the tokenizer adds one, else the neutral prompts in turn. */
function heldoutPrompts(tok: TokenizerLike, n: number): number[][] {
  if (tok.addsBos && tok.bosId !== undefined) {
    return Array.from({ length: n }, () => [tok.bosId as number]);
  }
  return Array.from({ length: n }, (_, i) => tok.encode(NEUTRAL_PROMPTS[i % NEUTRAL_PROMPTS.length] as string, { addSpecialTokens: false }));
}

/**
 * Text the model writes itself: `samples` sequences (prompt + sampled tokens) in one batch.
 * @returns token ids per sample, prompt included; samples of fewer than 2 tokens are dropped
 */
export async function sampleHeldoutText(model: Model, tok: TokenizerLike, p: SampleHeldoutParams): Promise<number[][]> {
  if (p.samples === 0) {
    return [];
  }
  const prompts = heldoutPrompts(tok, p.samples);
  const outs = await generate(model, prompts, { maxNewTokens: p.tokens, temperature: p.temperature ?? 1, seed: p.seed, padId: p.padId });
  return prompts.map((pr, i) => [...pr, ...(outs[i] ?? [])]).filter((s) => s.length >= 2);
}

const EvalLineSchema = z.object({ text: z.string({ error: "expected a string" }) }, { error: 'expected an object {"text": …}' });

/**
 * Read an evaluation text file into token sequences: JSONL (`.jsonl`, or every non-blank
 * line starting with "{") with one `{"text": …}` per line, or plain text split at blank
 * lines. Each text is encoded with the tokenizer's special tokens (BOS) and cut into windows
 * of at most `maxLength` tokens.
 * @returns sequences of ≥ 2 tokens; an InputError when the file yields none
 */
export async function readEvalText(file: string, tok: TokenizerLike, opts: { maxLength: number }): Promise<number[][]> {
  let raw: string;
  try {
    raw = await readFile(file, "utf8");
  } catch (err) {
    throw new InputError(`${file}: cannot read the evaluation text (${(err as NodeJS.ErrnoException).code ?? String(err)})`, {
      code: "INVALID_FILE",
      hint: "pass a plain-text file or JSONL lines {\"text\": …} to --eval-text",
      cause: err,
    });
  }
  const lines = raw.split(/\r?\n/);
  const nonBlank = lines.map((l, i) => ({ l: l.trim(), i })).filter((x) => x.l !== "");
  const jsonl = file.endsWith(".jsonl") || (nonBlank.length > 0 && nonBlank.every((x) => x.l.startsWith("{")));
  let texts: string[];
  if (jsonl) {
    texts = nonBlank.map(({ l, i }) => {
      let value: unknown;
      try {
        value = JSON.parse(l);
      } catch {
        throw new InputError(`${file}:${i + 1}: not valid JSON`, { code: "INVALID_FILE", hint: 'write one {"text": …} object per line' });
      }
      const parsed = EvalLineSchema.safeParse(value);
      if (!parsed.success) {
        throw new InputError(`${file}:${i + 1}: ${parsed.error.issues[0]?.path.join(".") || "line"}: ${parsed.error.issues[0]?.message ?? "invalid"}`, {
          code: "INVALID_FILE",
          hint: 'write one {"text": …} object per line',
        });
      }
      return parsed.data.text;
    });
  } else {
    texts = raw.split(/\r?\n\s*\r?\n/).map((t) => t.trim());
  }
  const out: number[][] = [];
  for (const text of texts.filter((t) => t !== "")) {
    const ids = tok.encode(text, { addSpecialTokens: true });
    for (let s = 0; s < ids.length; s += opts.maxLength) {
      const w = ids.slice(s, s + opts.maxLength);
      if (w.length >= 2) {
        out.push(w);
      }
    }
  }
  if (out.length === 0) {
    throw new InputError(`${file}: no text of 2 tokens or more to evaluate on`, { code: "INVALID_FILE", hint: "pass a file with some text in it" });
  }
  return out;
}
