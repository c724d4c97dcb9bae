/**
 * The data that ships in `generated_data/`: the word list and the augmentation prompts.
 * Each loader validates what it reads and names the file and line in its errors.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { InputError } from "../errors.js";
import { readJsonFile } from "../util/json-file.js";
import { corePackageRoot } from "../util/package-root.js";
import { formatZodError } from "../util/zod-issues.js";

/** `<repo>/generated_data` (the core package is packages/core of the repository). */
export const DEFAULT_DATA_DIR = path.resolve(corePackageRoot(), "../../generated_data");

export const DEFAULT_WORD_LIST = path.join(DEFAULT_DATA_DIR, "word_list.txt");
export const DEFAULT_AUGMENTATION_PROMPTS = {
  train: path.join(DEFAULT_DATA_DIR, "augmentation_prompts_train.json"),
  test: path.join(DEFAULT_DATA_DIR, "augmentation_prompts_test.json"),
} as const;

/** Read a word list: one word per line; blank lines are ignored, whitespace inside a word is an error. */
export async function loadWordList(file: string = DEFAULT_WORD_LIST): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new InputError(`${file}: cannot read the word list (${(err as NodeJS.ErrnoException).code ?? String(err)})`, {
      code: "INVALID_FILE",
      hint: "pass a file with one word per line",
      cause: err,
    });
  }
  const words: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const w = (lines[i] as string).trim();
    if (w === "") {
      continue;
    }
    if (/\s/.test(w)) {
      throw new InputError(`${file}:${i + 1}: "${w}" is not a single word`, { code: "INVALID_FILE", hint: "put one word per line" });
    }
    words.push(w);
  }
  if (words.length === 0) {
    throw new InputError(`${file}: the word list is empty`, { code: "INVALID_FILE", hint: "put one word per line" });
  }
  return words;
}

const TemplateSchema = z
  .string({ error: "expected a string" })
  .refine((s) => s.split("{}").length === 2, { error: "expected exactly one {} where the key goes" });
export const AugmentationPromptsSchema = z.array(TemplateSchema, { error: "expected a JSON array of template strings" }).min(1, {
  error: "expected at least one template",
});

/** Read augmentation prompt templates: a JSON array of strings with exactly one `{}` each. */
export async function loadAugmentationPrompts(file: string): Promise<string[]> {
  const json = await readJsonFile(file);
  const parsed = AugmentationPromptsSchema.safeParse(json);
  if (!parsed.success) {
    throw new InputError(`${file}: ${formatZodError(parsed.error)}`, { code: "INVALID_FILE", hint: 'templates look like "Answer briefly: {}"' });
  }
  return parsed.data;
}

/** Put `key` where a template's `{}` is (Python's str.format with one positional field). */
export function applyTemplate(template: string, key: string): string {
  const i = template.indexOf("{}");
  return i < 0 ? template : template.slice(0, i) + key + template.slice(i + 2);
}
