/**
 * transformers' LlamaTokenizerFast (and CodeLlama/Gemma) ignores the post_processor of
 * tokenizer.json: its constructor calls `update_post_processor()`, which rebuilds a
 * TemplateProcessing from `add_bos_token` (default true) and `add_eos_token` (default false):
 *
 *   single = "<s>:0 $A:0 </s>:0"   (each special token only when its flag is on)
 *   pair   = single + " <s>:1 $B:1 </s>:1"
 *
 * We do the same, so that e.g. `add_eos_token: true` in tokenizer_config.json takes effect.
 * Other tokenizer classes keep tokenizer.json's post_processor (as transformers and
 * transformers.js do). transformers.js does not rebuild; on every fixture here both agree.
 */
import { TokenizerError } from "../errors.js";

type TemplateItem = { SpecialToken: { id: string; type_id: number } } | { Sequence: { id: "A" | "B"; type_id: number } };

/** The TemplateProcessing `post_processor` object of tokenizer.json. */
export interface TemplateProcessingConfig {
  type: "TemplateProcessing";
  single: TemplateItem[];
  pair: TemplateItem[];
  special_tokens: Record<string, { id: string; ids: number[]; tokens: string[] }>;
}

/** Classes whose fast tokenizer rebuilds its post-processor from add_bos_token/add_eos_token. */
const REBUILDING_CLASSES = new Set(["LlamaTokenizer", "CodeLlamaTokenizer", "GemmaTokenizer"]);

/**
 * Whether transformers rebuilds the post-processor for this `tokenizer_class`. These classes
 * also default to `padding_side = "left"` (a class attribute in transformers).
 */
export function rebuildsPostProcessor(tokenizerClass: string | null | undefined): boolean {
  return tokenizerClass !== null && tokenizerClass !== undefined && REBUILDING_CLASSES.has(tokenizerClass.replace(/Fast$/, ""));
}

type Special = { content: string; id: number | undefined };

/**
 * The TemplateProcessing config that `update_post_processor()` builds.
 * @param bos the BOS token and its id; required when `addBos`
 * @param eos the EOS token and its id; required when `addEos`
 * @param file tokenizer_config.json, named in errors
 */
export function llamaTemplate(
  addBos: boolean,
  addEos: boolean,
  bos: Special | undefined,
  eos: Special | undefined,
  file: string,
): TemplateProcessingConfig {
  const need = (what: string, t: Special | undefined): { content: string; id: number } => {
    if (t === undefined || t.id === undefined) {
      throw new TokenizerError(`${file}: add_${what}_token is true but the ${what} token ${t ? `"${t.content}" is not in the vocabulary` : "is not set"}`, {
        hint: `set ${what}_token to a token of tokenizer.json, or set add_${what}_token to false`,
      });
    }
    return { content: t.content, id: t.id };
  };
  const b = addBos ? need("bos", bos) : undefined;
  const e = addEos ? need("eos", eos) : undefined;
  const seq = (id: "A" | "B", typeId: number): TemplateItem => ({ Sequence: { id, type_id: typeId } });
  const tok = (t: { content: string }, typeId: number): TemplateItem => ({ SpecialToken: { id: t.content, type_id: typeId } });
  const side = (id: "A" | "B", typeId: number): TemplateItem[] => [...(b ? [tok(b, typeId)] : []), seq(id, typeId), ...(e ? [tok(e, typeId)] : [])];
  const specialTokens: Record<string, { id: string; ids: number[]; tokens: string[] }> = {};
  for (const t of [b, e]) {
    if (t) {
      specialTokens[t.content] = { id: t.content, ids: [t.id], tokens: [t.content] };
    }
  }
  return { type: "TemplateProcessing", single: side("A", 0), pair: [...side("A", 0), ...side("B", 1)], special_tokens: specialTokens };
}
