/**
 * The JSON files a Hugging Face tokenizer is made of, checked and normalised once, so that
 * `Tokenizer` reads plain typed values. Mirrors what transformers (Python) and transformers.js
 * take from each file:
 *
 * - `tokenizer.json`: the pipeline (normalizer, pre_tokenizer, model, post_processor, decoder)
 *   and `added_tokens`. Merges may be `"a b"` strings or `["a", "b"]` pairs: the library's BPE
 *   accepts both (it checks `Array.isArray(merges[0])`).
 * - `tokenizer_config.json`: special tokens (`"<s>"`, `{"__type": "AddedToken", "content": …}`
 *   or `{"content": …}`), `add_bos_token`/`add_eos_token`, `chat_template`, `padding_side`,
 *   `clean_up_tokenization_spaces`, `tokenizer_class`.
 * - `special_tokens_map.json`: overrides the special tokens of tokenizer_config.json, as
 *   transformers' `from_pretrained` does.
 * - `generation_config.json`, else `config.json`: `eos_token_id` (a number or a list), the extra
 *   stop ids of generation (stories260K lists [2, 1]).
 * - `chat_template.jinja`: where newer transformers saves the chat template.
 */
import { z } from "zod";
import { TokenizerError } from "../errors.js";
import { formatZodError } from "../util/zod-issues.js";

/** The raw contents of a tokenizer's files, as parsed JSON (or text for the jinja file). */
export interface TokenizerSources {
  /** Parsed `tokenizer.json` (required). */
  tokenizerJson: unknown;
  /** Parsed `tokenizer_config.json` (required). */
  tokenizerConfig: unknown;
  /** Parsed `special_tokens_map.json`, if the directory has one. */
  specialTokensMap?: unknown;
  /** Parsed `generation_config.json`, if the directory has one. */
  generationConfig?: unknown;
  /** Parsed `config.json` (the model config), if the directory has one. */
  modelConfig?: unknown;
  /** Text of `chat_template.jinja`, if the directory has one. */
  chatTemplateJinja?: string;
  /** Where the files come from (a directory), used to name files in error messages. */
  source?: string;
}

/** A special-token value in tokenizer_config.json / special_tokens_map.json. */
const TokenValueSchema = z.union([z.string(), z.looseObject({ content: z.string() }), z.null()], {
  error: 'expected a token string or an object with a "content" string',
});

const NamedTemplateSchema = z.object({ name: z.string(), template: z.string() });

/** The fields of tokenizer_config.json we read; everything else is kept and passed through. */
export const TokenizerConfigSchema = z.looseObject({
  tokenizer_class: z.string().nullish(),
  bos_token: TokenValueSchema.optional(),
  eos_token: TokenValueSchema.optional(),
  unk_token: TokenValueSchema.optional(),
  pad_token: TokenValueSchema.optional(),
  additional_special_tokens: z.array(TokenValueSchema).nullish(),
  add_bos_token: z.boolean().nullish(),
  add_eos_token: z.boolean().nullish(),
  clean_up_tokenization_spaces: z.boolean().nullish(),
  padding_side: z.enum(["left", "right"]).nullish(),
  chat_template: z
    .union([z.string(), z.array(NamedTemplateSchema), z.record(z.string(), z.string())], {
      error: 'expected a template string or a list of {"name", "template"} objects',
    })
    .nullish(),
});
export type TokenizerConfig = z.infer<typeof TokenizerConfigSchema>;

const SpecialTokensMapSchema = z.looseObject({
  bos_token: TokenValueSchema.optional(),
  eos_token: TokenValueSchema.optional(),
  unk_token: TokenValueSchema.optional(),
  pad_token: TokenValueSchema.optional(),
  additional_special_tokens: z.array(TokenValueSchema).nullish(),
});

const IdsSchema = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative()), z.null()], {
  error: "expected a token id or a list of token ids",
});
const EosConfigSchema = z.looseObject({ eos_token_id: IdsSchema.optional() });

const AddedTokenSchema = z.looseObject({ id: z.number().int().nonnegative(), content: z.string() });

/** The parts of tokenizer.json we check before handing it to the library. */
const TokenizerJsonSchema = z.looseObject({
  added_tokens: z.array(AddedTokenSchema).nullish(),
  model: z.looseObject({ type: z.string().optional(), vocab: z.unknown() }, { error: 'expected a "model" object with a "vocab"' }),
});

/** What `Tokenizer` is built from: validated, with the special tokens resolved to strings. */
export interface CheckedSources {
  /** tokenizer.json with the five pipeline keys present (null when absent) and `added_tokens` an array. */
  tokenizerJson: Record<string, unknown> & { added_tokens: Array<z.infer<typeof AddedTokenSchema>> };
  /** tokenizer_config.json with special_tokens_map.json applied; token values are strings. */
  config: TokenizerConfig & Record<string, unknown>;
  bosToken?: string;
  eosToken?: string;
  unkToken?: string;
  padToken?: string;
  /** eos_token_id of generation_config.json (else config.json), as a list. */
  extraEosIds: number[];
  /** The chat templates by name (a single template is named "default"). */
  chatTemplates: Record<string, string>;
  /** The source, for messages. */
  source: string;
}

function fileOf(source: string, name: string): string {
  return source === "" ? name : `${source}/${name}`;
}

function check<T>(schema: z.ZodType<T>, value: unknown, file: string, hint: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new TokenizerError(`${file}: ${formatZodError(r.error)}`, { hint });
  }
  return r.data;
}

/** The text of a token value: `"<s>"`, `{content: "<s>"}` → `"<s>"`; null/absent → undefined. */
export function tokenContent(value: z.infer<typeof TokenValueSchema> | undefined): string | undefined {
  if (value === null || value === undefined) {
    return undefined;
  }
  return typeof value === "string" ? value : value.content;
}

function toIdList(ids: number | number[] | null | undefined): number[] {
  if (ids === null || ids === undefined) {
    return [];
  }
  return typeof ids === "number" ? [ids] : ids;
}

/**
 * Validate the files and resolve what transformers resolves at load time.
 * Throws TokenizerError naming the file and field.
 */
export function checkTokenizerSources(sources: TokenizerSources): CheckedSources {
  const source = sources.source ?? "";
  const regen = "re-save the tokenizer with transformers (`AutoTokenizer.from_pretrained(dir).save_pretrained(dir)`)";

  const json = check(TokenizerJsonSchema, sources.tokenizerJson, fileOf(source, "tokenizer.json"), regen);
  const tokenizerJson = {
    ...json,
    normalizer: json["normalizer"] ?? null,
    pre_tokenizer: json["pre_tokenizer"] ?? null,
    post_processor: json["post_processor"] ?? null,
    decoder: json["decoder"] ?? null,
    added_tokens: json.added_tokens ?? [],
  };

  const rawConfig = check(TokenizerConfigSchema, sources.tokenizerConfig, fileOf(source, "tokenizer_config.json"), `fix the field, or ${regen}`);
  const map =
    sources.specialTokensMap === undefined
      ? {}
      : check(SpecialTokensMapSchema, sources.specialTokensMap, fileOf(source, "special_tokens_map.json"), `fix the field, or ${regen}`);

  // special_tokens_map.json wins over tokenizer_config.json (transformers' from_pretrained).
  const pick = (key: "bos_token" | "eos_token" | "unk_token" | "pad_token"): string | undefined =>
    map[key] !== undefined ? tokenContent(map[key]) : tokenContent(rawConfig[key]);
  const bosToken = pick("bos_token");
  const eosToken = pick("eos_token");
  const unkToken = pick("unk_token");
  const padToken = pick("pad_token");
  const additional = (map.additional_special_tokens ?? rawConfig.additional_special_tokens ?? [])
    .map((t) => tokenContent(t))
    .filter((t): t is string => t !== undefined);

  const config = {
    ...rawConfig,
    bos_token: bosToken ?? null,
    eos_token: eosToken ?? null,
    unk_token: unkToken ?? null,
    pad_token: padToken ?? null,
    additional_special_tokens: additional,
  };

  let extraEosIds: number[] = [];
  if (sources.generationConfig !== undefined) {
    const g = check(EosConfigSchema, sources.generationConfig, fileOf(source, "generation_config.json"), "fix eos_token_id (a token id or a list of ids)");
    extraEosIds = toIdList(g.eos_token_id);
  } else if (sources.modelConfig !== undefined) {
    const c = check(EosConfigSchema, sources.modelConfig, fileOf(source, "config.json"), "fix eos_token_id (a token id or a list of ids)");
    extraEosIds = toIdList(c.eos_token_id);
  }

  const chatTemplates: Record<string, string> = Object.create(null) as Record<string, string>;
  const t = rawConfig.chat_template ?? sources.chatTemplateJinja;
  if (typeof t === "string") {
    chatTemplates["default"] = t;
  } else if (Array.isArray(t)) {
    for (const { name, template } of t) {
      chatTemplates[name] = template;
    }
  } else if (t) {
    Object.assign(chatTemplates, t);
  }

  return { tokenizerJson, config, bosToken, eosToken, unkToken, padToken, extraEosIds, chatTemplates, source };
}
