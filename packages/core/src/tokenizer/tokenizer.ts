/**
 * A Hugging Face tokenizer: @huggingface/tokenizers (the tokenizer code of transformers.js v4)
 * for encode/decode, wired to tokenizer_config.json the way transformers does (special tokens,
 * add_bos_token/add_eos_token for Llama-class tokenizers, pad rules, chat templates), and
 * generation_config.json for the stop ids.
 *
 * Ids are plain `number[]`; encode never pads or truncates (the training code does that).
 */
import { TokenizerError } from "../errors.js";
import { type ApplyChatTemplateOptions, type ChatMessage, ChatTemplates } from "./chat-template.js";
import { type EncodeFirstStats, PrefixEncoder, type PrefixLocalKind } from "./encode-first.js";
import { type HfTokenizer, bpeWordSplitMarker, createHfTokenizer, createTemplateProcessing } from "./hf-tokenizers.js";
import { llamaTemplate, rebuildsPostProcessor } from "./llama-post-processor.js";
import { type PaddingSide, pickPadId } from "./resolve-pad-id.js";
import { type TokenizerSources, checkTokenizerSources } from "./tokenizer-sources.js";

export interface EncodeOptions {
  /** Add the special tokens of the post-processor (e.g. BOS for Llama). Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, pad, additional special tokens). Default false. */
  skipSpecialTokens?: boolean;
  /**
   * transformers' `clean_up_tokenization_spaces` (" ." → ".", " n't" → "n't", …). Default: the
   * value in tokenizer_config.json, else false (transformers ≥ 4.45). Rust tokenizers never does it.
   */
  cleanUpTokenizationSpaces?: boolean;
}

/** The text the probe for added special tokens encodes: any text gives at least one token. */
const PROBE = "a";

function startIndexOf(haystack: readonly number[], needle: readonly number[]): number {
  for (let i = 0; i + needle.length <= haystack.length; i++) {
    if (needle.every((v, j) => haystack[i + j] === v)) {
      return i;
    }
  }
  return -1;
}

export class Tokenizer {
  /** Where the tokenizer was loaded from (a directory), for messages. */
  readonly source: string;
  readonly bosToken?: string;
  readonly eosToken?: string;
  readonly unkToken?: string;
  /** The tokenizer's own pad token (tokenizer_config.json / special_tokens_map.json), if any. */
  readonly padToken?: string;
  readonly bosId?: number;
  readonly eosId?: number;
  readonly unkId?: number;
  /** Id of `padToken`, if the tokenizer has one. See `padId` for the pad rules. */
  readonly padTokenId?: number;
  /**
   * Every id that ends generation: the tokenizer's EOS, then generation_config.json's
   * `eos_token_id` (else config.json's), without repeats. stories260K: [2, 1].
   */
  readonly eosIds: readonly number[];
  /** Does `encode` with special tokens put BOS first? */
  readonly addsBos: boolean;
  /** Does `encode` with special tokens put EOS last? */
  readonly addsEos: boolean;
  /** Number of ids (largest id + 1), added tokens included. */
  readonly vocabSize: number;
  /** tokenizer_config.json's padding_side, else transformers' class default ("left" for Llama/Gemma, else "right"). */
  readonly paddingSide: PaddingSide;
  /** Ids of the special tokens (those `skipSpecialTokens` drops). */
  readonly specialIds: ReadonlySet<number>;

  private readonly inner: HfTokenizer;
  private readonly chat: ChatTemplates;
  private readonly cleanUp: boolean;
  private readonly prefixEncoder: PrefixEncoder | undefined;
  /** encodeFirst calls when there is no prefixEncoder. */
  private fullEncodeFirsts = 0;

  /**
   * Build a tokenizer from the parsed files; `loadTokenizer(dir)` reads them for you.
   * @throws TokenizerError naming the file when a file is malformed or the library rejects it
   */
  constructor(sources: TokenizerSources) {
    const s = checkTokenizerSources(sources);
    this.source = s.source;
    const file = (name: string): string => (s.source === "" ? name : `${s.source}/${name}`);
    try {
      this.inner = createHfTokenizer(s.tokenizerJson, s.config);
    } catch (cause) {
      throw new TokenizerError(`${file("tokenizer.json")}: @huggingface/tokenizers cannot build this tokenizer: ${(cause as Error).message}`, {
        cause,
        hint: "the file may be damaged or use a component the library does not support; re-save it with a recent transformers",
      });
    }
    const id = (t: string | undefined): number | undefined => (t === undefined ? undefined : this.inner.token_to_id(t));
    this.bosToken = s.bosToken;
    this.eosToken = s.eosToken;
    this.unkToken = s.unkToken;
    this.padToken = s.padToken;
    this.bosId = id(s.bosToken);
    this.eosId = id(s.eosToken);
    this.unkId = id(s.unkToken);
    this.padTokenId = id(s.padToken);
    for (const [key, tok, tid] of [["eos_token", s.eosToken, this.eosId], ["pad_token", s.padToken, this.padTokenId]] as const) {
      if (tok !== undefined && tid === undefined) {
        throw new TokenizerError(`${file("tokenizer_config.json")}: ${key} "${tok}" is not a token of tokenizer.json`, {
          hint: `set ${key} to a token of the vocabulary`,
        });
      }
    }

    const rebuilds = rebuildsPostProcessor(s.config.tokenizer_class);
    if (rebuilds) {
      const template = llamaTemplate(
        s.config.add_bos_token ?? true,
        s.config.add_eos_token ?? false,
        s.bosToken === undefined ? undefined : { content: s.bosToken, id: this.bosId },
        s.eosToken === undefined ? undefined : { content: s.eosToken, id: this.eosId },
        file("tokenizer_config.json"),
      );
      this.inner.post_processor = createTemplateProcessing(template);
    }
    this.prefixEncoder = PrefixEncoder.create(s.tokenizerJson, this.inner, bpeWordSplitMarker(this.inner), (text) => this.encode(text, { addSpecialTokens: false }));
    this.paddingSide = s.config.padding_side ?? (rebuilds ? "left" : "right");
    this.cleanUp = s.config.clean_up_tokenization_spaces ?? false;

    const eosIds = [...(this.eosId === undefined ? [] : [this.eosId]), ...s.extraEosIds];
    this.eosIds = [...new Set(eosIds)];

    let maxId = -1;
    for (const v of this.inner.get_vocab(true).values()) {
      maxId = Math.max(maxId, v);
    }
    this.vocabSize = maxId + 1;
    this.specialIds = new Set([...this.inner.get_added_tokens_decoder().values()].filter((t) => t.special).map((t) => t.id));

    // What the post-processor adds around a text: compare the probe with and without.
    const withSpecial = this.inner.encode(PROBE, { add_special_tokens: true }).ids;
    const plain = this.inner.encode(PROBE, { add_special_tokens: false }).ids;
    const at = startIndexOf(withSpecial, plain);
    const prefix = at < 0 ? [] : withSpecial.slice(0, at);
    const suffix = at < 0 ? [] : withSpecial.slice(at + plain.length);
    this.addsBos = this.bosId !== undefined && prefix[0] === this.bosId;
    this.addsEos = this.eosId !== undefined && suffix[suffix.length - 1] === this.eosId;

    const specials: Record<string, string> = {};
    for (const key of ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"] as const) {
      const v = s.config[key];
      const text = typeof v === "string" ? v : v !== null && typeof v === "object" && "content" in v && typeof v.content === "string" ? v.content : undefined;
      if (text !== undefined) {
        specials[key] = text;
      }
    }
    this.chat = new ChatTemplates(s.chatTemplates, specials, file("tokenizer_config.json"));
  }

  /**
   * The pad id by the reference's rules for a local model path: the tokenizer's pad token,
   * else EOS when `paddingSide` is "right", else BOS; undefined if that token does not exist.
   * For a model family use `resolvePadId(tokenizer, { family })`.
   */
  get padId(): number | undefined {
    return pickPadId(this, { paddingSide: this.paddingSide });
  }

  /** Does the tokenizer have a chat template? */
  get hasChatTemplate(): boolean {
    return this.chat.hasTemplate;
  }

  /** Names of the chat templates ("default" for a single template). */
  get chatTemplateNames(): string[] {
    return Object.keys(this.chat.templates);
  }

  /** Text → ids. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.inner.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /**
   * The first `n` ids of the text without special tokens: `encode(text, { addSpecialTokens:
   * false }).slice(0, n)`, computed from a prefix of the text cut at a word boundary when the
   * tokenizer is prefix-local and the text has no added token (encode-first.ts).
   */
  encodeFirst(text: string, n: number): number[] {
    if (this.prefixEncoder === undefined) {
      this.fullEncodeFirsts++;
      return this.encode(text, { addSpecialTokens: false }).slice(0, n);
    }
    return this.prefixEncoder.encodeFirst(text, n);
  }

  /**
   * Can encodeFirst encode a prefix instead of the text ("sentencepiece" / "byte-level"), or
   * must it always encode the whole text (undefined)? See encode-first.ts.
   */
  get prefixLocal(): PrefixLocalKind | undefined {
    return this.prefixEncoder?.kind;
  }

  /** How encodeFirst calls went so far (diagnostics). */
  get encodeFirstStats(): EncodeFirstStats {
    return { ...(this.prefixEncoder?.stats ?? { prefix: 0, retries: 0, full: this.fullEncodeFirsts }) };
  }

  /**
   * Ids → text. An empty list decodes to "".
   * @throws TokenizerError for an id that is not an integer in [0, vocabSize)
   */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) {
      return "";
    }
    for (const i of ids) {
      if (this.idToToken(i) === undefined) {
        throw new TokenizerError(`${this.source}: cannot decode token id ${i}: not an id of this tokenizer (vocabulary size ${this.vocabSize})`, {
          hint: "the ids come from a different tokenizer or model",
        });
      }
    }
    return this.inner.decode([...ids], {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: opts.cleanUpTokenizationSpaces ?? this.cleanUp,
    });
  }

  /**
   * Render a conversation with the tokenizer's chat template (to text; encode it with
   * `addSpecialTokens: false`, as transformers does, since templates write BOS themselves).
   * @throws TokenizerError when there is no template, or the template rejects the messages
   */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ApplyChatTemplateOptions = {}): string {
    return this.chat.apply(messages, opts);
  }

  /** The id of a token string (added tokens included), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  /** The token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize ? this.inner.id_to_token(id) : undefined;
  }

  /**
   * Token strings of ids (e.g. "▁Hello", "Ġworld", "<0x0A>").
   * @throws TokenizerError for an unknown id
   */
  convertIdsToTokens(ids: readonly number[]): string[] {
    return ids.map((i) => {
      const t = this.idToToken(i);
      if (t === undefined) {
        throw new TokenizerError(`${this.source}: unknown token id ${i} (vocabulary size ${this.vocabSize})`);
      }
      return t;
    });
  }
}
