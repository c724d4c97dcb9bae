/**
 * Load a tokenizer from a local model directory. The directory is resolved to an absolute path
 * first (never looked up as a hub id, unlike transformers.js' `from_pretrained`).
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { CoreError, TokenizerError } from "../errors.js";
import { parseJson } from "../util/json-file.js";
import { Tokenizer } from "./tokenizer.js";
import type { TokenizerSources } from "./tokenizer-sources.js";

const RESAVE = "re-save it with Python transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(dir)";

/** Read a file of the model directory; undefined when it does not exist and is optional. */
async function readText(file: string, required: boolean, hint: string): Promise<string | undefined> {
  try {
    return (await readFile(file, "utf8")).replace(/^\uFEFF/, "");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !required) {
      return undefined;
    }
    const what = code === "ENOENT" ? "not found" : code === "EISDIR" ? "is a directory" : `cannot be read (${(err as Error).message})`;
    throw new TokenizerError(`${file}: ${what}`, { hint, cause: err });
  }
}

async function readJson(file: string, required: boolean, hint: string): Promise<unknown> {
  const text = await readText(file, required, hint);
  if (text === undefined) {
    return undefined;
  }
  try {
    return parseJson(text, file);
  } catch (err) {
    if (err instanceof CoreError) {
      throw new TokenizerError(err.message, { hint: `fix the JSON, or ${RESAVE}`, cause: err });
    }
    throw err;
  }
}

/**
 * Load the tokenizer of a model directory: `tokenizer.json` and `tokenizer_config.json`
 * (required), `special_tokens_map.json`, `generation_config.json`, `config.json` and
 * `chat_template.jinja` (when present).
 * @param dir the model directory (relative paths are resolved against the current directory)
 * @throws TokenizerError naming the missing or malformed file and how to fix it
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const root = path.resolve(dir);
  const info = await stat(root).catch((cause: unknown) => {
    throw new TokenizerError(`${root}: model directory not found`, { hint: "check the path", cause });
  });
  if (!info.isDirectory()) {
    throw new TokenizerError(`${root}: not a directory`, { hint: "pass the model directory, not a file in it" });
  }
  const f = (name: string): string => path.join(root, name);
  const [tokenizerJson, tokenizerConfig, specialTokensMap, generationConfig, modelConfig, chatTemplateJinja] = await Promise.all([
    readJson(f("tokenizer.json"), true, `the model directory needs a Hugging Face "fast" tokenizer.json; if it only has tokenizer.model or vocab files, ${RESAVE}`),
    readJson(f("tokenizer_config.json"), true, `the model directory needs tokenizer_config.json (special tokens, chat template); ${RESAVE}`),
    readJson(f("special_tokens_map.json"), false, RESAVE),
    readJson(f("generation_config.json"), false, "fix or delete generation_config.json"),
    readJson(f("config.json"), false, "fix config.json"),
    readText(f("chat_template.jinja"), false, "fix or delete chat_template.jinja"),
  ]);
  const sources: TokenizerSources = { tokenizerJson, tokenizerConfig, source: root };
  if (specialTokensMap !== undefined) {
    sources.specialTokensMap = specialTokensMap;
  }
  if (generationConfig !== undefined) {
    sources.generationConfig = generationConfig;
  }
  if (modelConfig !== undefined) {
    sources.modelConfig = modelConfig;
  }
  if (chatTemplateJinja !== undefined) {
    sources.chatTemplateJinja = chatTemplateJinja;
  }
  return new Tokenizer(sources);
}
