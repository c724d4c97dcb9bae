/**
 * Typed access to @huggingface/tokenizers 0.2.0. Its .d.ts files re-export with extensionless
 * relative paths (`export * from "./post-processors"`), which TypeScript's NodeNext resolution
 * cannot follow in an ESM package, so under our tsconfig every export is `any`. This file
 * declares the part of the API we use (checked against the package's types/core/Tokenizer.d.ts).
 */
import * as hf from "@huggingface/tokenizers";

export interface HfEncoding {
  ids: number[];
  tokens: string[];
}

export interface HfAddedToken {
  id: number;
  content: string;
  special: boolean;
}

/** The library's post-processor objects (opaque to us). */
export type HfPostProcessor = object;

export interface HfTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): HfEncoding;
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean | null }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_added_tokens_decoder(): Map<number, HfAddedToken>;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
  post_processor: HfPostProcessor | null;
}

const lib = hf as unknown as {
  Tokenizer: new (tokenizerJson: object, tokenizerConfig: object) => HfTokenizer;
  TemplateProcessingPostProcessor: new (config: object) => HfPostProcessor;
};

/** `new Tokenizer(tokenizerJson, tokenizerConfig)` of the library. */
export function createHfTokenizer(tokenizerJson: object, tokenizerConfig: object): HfTokenizer {
  return new lib.Tokenizer(tokenizerJson, tokenizerConfig);
}

/** The library's TemplateProcessing post-processor for a tokenizer.json `post_processor` object. */
export function createTemplateProcessing(config: object): HfPostProcessor {
  return new lib.TemplateProcessingPostProcessor(config);
}
